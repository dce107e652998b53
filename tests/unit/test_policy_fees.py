"""Fee sharing (spec/policies.md, software-mor): a payment's fee shared over its items by the
largest-remainder method, and the fee kept over all refunds of an item (so of a payment) never
above its share, whatever sequence of partial refunds comes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.policy import Order, OrderItem, RefundRequest, evaluate, parse_policy
from bridge.policy.fees import fee_to_keep, share_fee

PAID = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)

# A policy whose only row refunds the amount less a money fact: any partial refund base.
PARTIAL = parse_policy(b'''
id = "partial"
version = "1"
effective_date = 2026-01-01
[sections.1]
title = "Refunds"
text = "The price less what was delivered; the processing fee is not refunded."
[fees]
deduct = "proportional"
cite = ["1"]
[categories.work]
billing = ["one_time"]
cite = ["1"]
[[categories.work.rows]]
when = { known = ["delivered_milestones_amount"] }
outcome = "approved"
amount = "amount_minus"
minus = ["delivered_milestones_amount"]
[[categories.work.rows]]
outcome = "approved"
amount = "full"
''', "partial.toml")


@pytest.mark.parametrize("fee,amounts,shares", [
    (100, [3333, 3333, 3334], [33, 33, 34]),          # the example of policies.md (not 34/34/34)
    (172, [4900], [172]),
    (500, [4000, 1000], [400, 100]),
    (1, [1, 1, 1], [1, 0, 0]),                        # ties: the earlier item
    (2, [1, 1, 1], [1, 1, 0]),
    (0, [10, 20], [0, 0]),
    (7, [0, 0], [0, 0]),                              # nothing paid: nothing to share in proportion to
    (10, [0, 5], [0, 10]),
    (99, [1, 98], [1, 98]),
])
def test_share_fee_examples(fee, amounts, shares):
    assert share_fee(fee, amounts) == shares


@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**7), min_size=1, max_size=12))
def test_shares_add_up_to_the_fee_and_stay_within_one_unit_of_proportion(fee, amounts):
    shares = share_fee(fee, amounts)
    total = sum(amounts)
    if total == 0:
        assert shares == [0] * len(amounts)
        return
    assert sum(shares) == fee
    for share, amount in zip(shares, amounts):
        exact_floor = fee * amount // total
        assert exact_floor <= share <= exact_floor + 1


def test_fee_to_keep_caps_at_the_rest_of_the_share():
    assert fee_to_keep(172, 4900, 4900) == 172
    assert fee_to_keep(172, 4900, 1000) == 36              # ceil(35.1)
    assert fee_to_keep(172, 4900, 3900, kept=36) == 136     # ceil(136.9) = 137, capped at 172 - 36
    assert fee_to_keep(172, 4900, 3900, kept=172) == 0
    assert fee_to_keep(172, 4900, 5) == 1 and fee_to_keep(50, 100, 3) == 2
    assert fee_to_keep(500, 100, 30) == 30                  # never more than the refund base


def _item(amount: int, share: int, refunded: int, kept: int, delivered) -> OrderItem:
    facts = {} if delivered is None else {"delivered_milestones_amount": delivered}
    return OrderItem(item_id="li", category="work", amount=amount, paid_at=PAID, fee=share,
                     already_refunded=refunded, fee_kept=kept, facts=facts)


def test_engine_example_two_partial_refunds_keep_at_most_the_share():
    # 10000 with a share of 33: a first refund of 3333 keeps ceil(10.9989) = 11; the rest (6667)
    # would keep ceil(22.0011) = 23, 34 in all: capped at 33 - 11 = 22.
    request = RefundRequest(reason="other", requested_at=PAID + timedelta(days=1))
    first = evaluate(PARTIAL, Order("USD", (_item(10000, 33, 0, 0, 6667),)), request, NOW)
    assert (first.refund_amount, first.fee_deducted) == (3322, 11)
    second = evaluate(PARTIAL, Order("USD", (_item(10000, 33, 3333, 11, None),)), request, NOW)
    assert (second.refund_amount, second.fee_deducted) == (6667 - 22, 22)


def test_an_order_of_three_items_keeps_exactly_the_fee():
    shares = share_fee(100, [3333, 3333, 3334])
    items = tuple(OrderItem(item_id=f"li_{i}", category="work", amount=a, paid_at=PAID, fee=s)
                  for i, (a, s) in enumerate(zip([3333, 3333, 3334], shares)))
    d = evaluate(PARTIAL, Order("USD", items), RefundRequest("other", PAID + timedelta(days=1)), NOW)
    assert d.fee_deducted == 100 and d.refund_amount == 10000 - 100
    assert [i.fee_deducted for i in d.items] == [33, 33, 34]


@settings(max_examples=300, deadline=None)
@given(fee=st.integers(0, 50_000),
       amounts=st.lists(st.integers(1, 200_000), min_size=1, max_size=5),
       steps=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 200_000), st.booleans()), max_size=12))
def test_any_split_and_any_sequence_of_partial_refunds_keeps_at_most_the_fee(fee, amounts, steps):
    """Each step refunds part of one item through the engine (``delivered`` leaves a random
    part unrefunded; or the whole rest), with what earlier steps settled and kept as input."""
    shares = share_fee(fee, amounts)
    refunded = [0] * len(amounts)
    kept = [0] * len(amounts)
    request = RefundRequest(reason="other", requested_at=PAID + timedelta(days=2))
    for index, delivered, whole in steps:
        i = index % len(amounts)
        item = _item(amounts[i], shares[i], refunded[i], kept[i], None if whole else delivered)
        d = evaluate(PARTIAL, Order("USD", (item,)), request, NOW)
        [it] = d.items
        assert 0 <= it.refund_amount <= amounts[i] - refunded[i]
        assert it.refund_amount + it.fee_deducted <= amounts[i] - refunded[i]
        assert it.fee_deducted >= 0
        if it.outcome == "approved":
            refunded[i] += it.refund_amount + it.fee_deducted
            kept[i] += it.fee_deducted
        assert kept[i] <= shares[i]
        assert sum(kept) <= fee
    assert sum(kept) <= fee
