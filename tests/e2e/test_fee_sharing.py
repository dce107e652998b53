"""Fee sharing end to end (issue 11 item 8): a Paddle payment of three lines shares its fee
by largest remainder, and partial refunds of one item never keep more than its share."""
from tests.e2e.test_refund_flow import fakes, pay_paddle, register, request_refund, shop  # noqa: F401

ITEMS = [{"item_id": f"li_{n}", "category": "store_addon", "billing": "one_time", "amount": a, "price_id": f"pri_{n}"}
         for n, a in ((1, 3333), (2, 3333), (3, 3334))]


def test_a_fee_of_100_over_3333_3333_3334_keeps_100(shop, fakes):  # noqa: F811
    _, paddle = fakes
    register(shop, "ord_fee", "software-mor", ITEMS)
    pay_paddle(shop, paddle, "ord_fee", [("pri_1", 3333), ("pri_2", 3333), ("pri_3", 3334)], fee=100)
    rr = request_refund(shop, "ord_fee", at="2026-03-03T10:00:00Z")
    d = rr["decision"]
    assert (d["outcome"], d["fee_deducted"], d["refund_amount"]) == ("approved", 100, 10000 - 100)
    assert [i["fee_deducted"] for i in d["items"]] == [33, 33, 34]


def test_item_by_item_refunds_keep_the_shares(shop, fakes):  # noqa: F811
    _, paddle = fakes
    register(shop, "ord_fee2", "software-mor", ITEMS)
    pay_paddle(shop, paddle, "ord_fee2", [("pri_1", 3333), ("pri_2", 3333), ("pri_3", 3334)], fee=100)
    kept = [request_refund(shop, "ord_fee2", items=[f"li_{n}"], at=f"2026-03-0{n + 1}T10:00:00Z")["decision"]["fee_deducted"]
            for n in (1, 2, 3)]
    assert kept == [33, 33, 34] and sum(kept) == 100


def test_two_partial_refunds_of_one_item_keep_at_most_its_share(shop, fakes):  # noqa: F811
    _, paddle = fakes
    register(shop, "ord_fee3", "software-mor", [{"item_id": "li_w", "category": "custom_development",
                                                  "billing": "one_time", "amount": 10000, "price_id": "pri_w"}])
    pay_paddle(shop, paddle, "ord_fee3", [("pri_w", 10000)], fee=33)
    facts = {"work_started": True, "delivered_milestones_amount": 6667, "documented_effort_amount": 0}
    first = request_refund(shop, "ord_fee3", at="2026-03-03T10:00:00Z", facts=facts)["decision"]
    assert (first["refund_amount"], first["fee_deducted"]) == (3322, 11)     # ceil(10.9989)
    facts = {"work_started": False}
    second = request_refund(shop, "ord_fee3", at="2026-03-04T10:00:00Z", facts=facts)["decision"]
    # the rest, 6667, would keep ceil(22.0011) = 23 (34 in all): capped at 33 - 11
    assert (second["refund_amount"], second["fee_deducted"]) == (6667 - 22, 22)
