"""Delivery of license notices (issue 5): the merchant's app down for a while (503), or losing its
answers (it got the message, the bridge never heard back), then up again: every notice arrives,
none is lost, the first arrival of each respects the order per license, and duplicates carry
the same ``webhook-id`` and body so the merchant dedupes them."""
from __future__ import annotations

import time

from sqlalchemy import func, select

from bridge.ledger.inbox import PROCESS_EVENT

from bridge.ledger.models import Job
from tests.conftest import test_settings
from tests.e2e.test_licenses import (DAY, T0, assert_notices_consistent, close_shop, delivered, lic_item, licenses,
                                     outbox, register, s_dispute, s_pay, settle)
from tests.e2e.test_licenses import merchant, shop  # noqa: F401  (fixtures)
from tests.support.harness import Shop


def run_for(shop, seconds: float) -> None:
    """Let the worker apply every stored event, then run (and retry notices) for a while. The
    events come first: on a loaded machine a fixed time alone may not cover them."""
    def events_pending() -> int:
        with shop.rt.reads() as s:
            return s.scalar(select(func.count()).select_from(Job).where(
                Job.kind == PROCESS_EVENT, Job.state.in_(("ready", "running"))))
    shop.drain(until=lambda: events_pending() == 0, timeout=60)
    end = time.monotonic() + seconds
    shop.drain(until=lambda: time.monotonic() >= end, timeout=seconds + 30)


def story(shop):
    """Three orders, eight license changes over five licenses."""
    register(shop, "ord_1", "micromastery", [lic_item("li_1", "training"), lic_item("li_2", "training", amount=1000)],
             customer="cus_1")
    register(shop, "ord_2", "micromastery", [lic_item("li_1", "training")], customer="cus_2")
    register(shop, "ord_3", "software-mor", [lic_item("li_1"), lic_item("li_2", "store_addon", amount=1000)],
             customer="cus_3")
    for o, c, amount in (("ord_1", "cus_1", 5900), ("ord_2", "cus_2", 4900), ("ord_3", "cus_3", 5900)):
        shop.stripe(s_pay(o, customer=c, amount=amount))
    shop.stripe(s_dispute("ord_1", "charge.dispute.created", "needs_response", T0 + DAY, amount=5900))
    shop.stripe(s_dispute("ord_1", "charge.dispute.closed", "won", T0 + 10 * DAY, amount=5900))
    shop.stripe(s_dispute("ord_2", "charge.dispute.created", "needs_response", T0 + DAY))
    shop.stripe(s_dispute("ord_2", "charge.dispute.closed", "lost", T0 + 12 * DAY))
    shop.stripe(s_dispute("ord_3", "charge.dispute.created", "needs_response", T0 + 2 * DAY, amount=5900))
    return ["ord_1", "ord_2", "ord_3"]


EXPECTED = {("ord_1", "li_1"): "active", ("ord_1", "li_2"): "active", ("ord_2", "li_1"): "revoked",
            ("ord_3", "li_1"): "suspended", ("ord_3", "li_2"): "suspended"}


def states(shop, orders):
    return {(o, i): lic["status"] for o in orders for i, lic in licenses(shop, o).items()}


def check_raw_order(shop, merchant):
    """Every delivery (duplicates included) of a license's notices comes after the first
    arrival of each earlier one, and a duplicate is byte-for-byte the same message."""
    rows = outbox(shop)
    seq = {m.id: (m.license_id, m.seq) for m in rows}
    first: dict[str, dict] = {}
    highest: dict[str, int] = {}
    for d in merchant.deliveries:
        lid, n = seq[d["id"]]
        if d["id"] in first:
            assert d == first[d["id"]], "a duplicate differs from the first delivery"
            continue
        first[d["id"]] = d
        assert n == highest.get(lid, 0) + 1, f"notice {n} of {lid} arrived before notice {highest.get(lid, 0) + 1}"
        highest[lid] = n


def test_receiver_down_then_up_delivers_everything_in_order(shop, merchant):
    merchant.down = True
    orders = story(shop)
    run_for(shop, 2.0)  # events processed; notices tried and refused (``drain`` would wait for them to die)
    assert merchant.deliveries == []
    assert states(shop, orders) == EXPECTED  # the bridge's state does not wait for the merchant
    rows = outbox(shop)
    assert len(rows) == 8
    assert all(m.delivered_at is None for m in rows)
    heads = [m for m in rows if m.seq == 1]
    assert all(m.attempts >= 2 and m.last_error == "HTTP 503" for m in heads), [(m.attempts, m.last_error) for m in heads]
    assert all(m.attempts == 0 for m in rows if m.seq > 1)  # they wait for the first: no calls
    with shop.rt.reads() as s:
        assert set(s.scalars(select(Job.state).where(Job.kind == "deliver_notice"))) == {"ready"}  # none dead

    merchant.down = False
    settle(shop)
    assert len(merchant.messages()) == 8
    assert_notices_consistent(shop, merchant, *orders)
    check_raw_order(shop, merchant)
    assert all(m.delivered_at is not None and m.last_error is None for m in outbox(shop))


def test_lost_answers_mean_duplicates_deduplicated_by_webhook_id(shop, merchant):
    merchant.lose = True  # it records each message and then answers 503
    orders = story(shop)
    run_for(shop, 2.0)
    heads = {m.id for m in outbox(shop) if m.seq == 1}
    assert {d["id"] for d in merchant.deliveries} == heads  # only the first of each license, again and again
    assert len(merchant.deliveries) > len(heads)
    merchant.lose = False
    settle(shop)
    assert len(merchant.deliveries) > len(merchant.messages()) == 8
    assert_notices_consistent(shop, merchant, *orders)
    check_raw_order(shop, merchant)


def test_down_in_the_middle_of_a_story(shop, merchant):
    """Notices written while earlier ones of the same license are still failing queue behind
    them; the merchant, once up, gets them all in the order they were written."""
    register(shop, "ord_m", "software-mor", [lic_item("li_1")], customer="cus_m")
    register(shop, "ord_n", "software-mor", [lic_item("li_1", amount=2000)], customer="cus_m")
    shop.stripe(s_pay("ord_m", customer="cus_m"))
    shop.stripe(s_pay("ord_n", customer="cus_m", amount=2000, created=T0 + 60))
    shop.stripe(s_dispute("ord_m", "charge.dispute.created", "needs_response", T0 + DAY))
    settle(shop)
    merchant.down = True
    shop.stripe(s_dispute("ord_m", "charge.dispute.closed", "won", T0 + 5 * DAY))
    shop.stripe(s_dispute("ord_n", "charge.dispute.created", "warning_needs_response", T0 + 6 * DAY, amount=2000))
    shop.stripe(s_dispute("ord_n", "charge.dispute.closed", "lost", T0 + 9 * DAY, amount=2000))
    run_for(shop, 1.5)
    merchant.down = False
    settle(shop)
    m, n = licenses(shop, "ord_m")["li_1"], licenses(shop, "ord_n")["li_1"]
    # software-mor restricts the account while a dispute is open; a lost one revokes its own order only.
    assert (m["status"], m["reason"], n["status"]) == ("active", "dispute lost", "revoked")
    assert merchant.types(m["license_id"]) == ["license.suspended", "license.reinstated", "license.suspended",
                                               "license.reinstated"]
    assert merchant.types(n["license_id"]) == ["license.suspended", "license.reinstated", "license.suspended",
                                               "license.revoked"]
    assert_notices_consistent(shop, merchant, "ord_m", "ord_n")
    check_raw_order(shop, merchant)


def test_notices_kept_while_no_url_is_set_go_out_first_once_it_is(db_url, tmp_path, merchant):
    """A notice written while LICENSE_WEBHOOK_URL was unset is kept in the outbox; the next
    notice of its license, once the URL is set, sends it first instead of waiting for ever."""
    first = Shop(test_settings(db_url, tmp_path))  # no URL
    try:
        register(first, "ord_k", "micromastery", [lic_item("li_1", "training")])
        first.stripe(s_pay("ord_k"))
        first.stripe(s_dispute("ord_k", "charge.dispute.created", "needs_response", T0 + DAY))
        first.drain()
        rows = outbox(first)
        assert [(m.type, m.delivered_at) for m in rows] == [("license.suspended", None)]
    finally:
        close_shop(first)
    second = Shop(test_settings(db_url, tmp_path, license_webhook_url=merchant.url))
    try:
        second.stripe(s_dispute("ord_k", "charge.dispute.closed", "won", T0 + 10 * DAY))
        second.drain(timeout=20)
        second.drain(until=lambda: delivered(second), timeout=20)
        lic = licenses(second, "ord_k")["li_1"]
        assert merchant.types(lic["license_id"]) == ["license.suspended", "license.reinstated"]
        assert_notices_consistent(second, merchant, "ord_k")
    finally:
        close_shop(second)


def test_resend_gives_ended_notices_a_new_delivery(db_url, tmp_path, merchant):
    """``bridge notices resend``: notices whose delivery job ended without delivering them (no
    URL was set; or the merchant was down past the last attempt, the job ``dead``) go out, in
    order, without waiting for a later change of their license."""
    from bridge.services.notices import resend_undelivered
    first = Shop(test_settings(db_url, tmp_path))  # no URL
    try:
        register(first, "ord_r", "micromastery", [lic_item("li_1", "training")])
        first.stripe(s_pay("ord_r"))
        first.stripe(s_dispute("ord_r", "charge.dispute.created", "needs_response", T0 + DAY))
        first.stripe(s_dispute("ord_r", "charge.dispute.closed", "lost", T0 + 9 * DAY))
        first.drain()
        assert [(m.type, m.delivered_at) for m in outbox(first)] == [("license.suspended", None),
                                                                     ("license.revoked", None)]
    finally:
        close_shop(first)
    second = Shop(test_settings(db_url, tmp_path, license_webhook_url=merchant.url))
    try:
        with second.rt.sessions.begin() as s:  # the second one's job ran out of attempts
            s.execute(Job.__table__.update().where(Job.kind == "deliver_notice", Job.ref_id == outbox(second)[1].id)
                      .values(state="dead", attempts=40, last_error="HTTP 503"))
        second.drain()
        assert merchant.deliveries == []  # nothing would ever send them
        with second.rt.sessions.begin() as s:
            assert resend_undelivered(s, second.rt.clock(), license_id="lic_other") == 0
            assert resend_undelivered(s, second.rt.clock()) == 2
        second.drain(until=lambda: delivered(second), timeout=20)
        lic = licenses(second, "ord_r")["li_1"]
        assert merchant.types(lic["license_id"]) == ["license.suspended", "license.revoked"]
        assert_notices_consistent(second, merchant, "ord_r")
        with second.rt.sessions.begin() as s:  # nothing left to resend
            assert resend_undelivered(s, second.rt.clock()) == 0
    finally:
        close_shop(second)


def test_resend_command(db_url, tmp_path, merchant, monkeypatch):
    """``bridge notices resend`` through the CLI: refuses without a URL, queues otherwise."""
    from bridge.cli import main
    from tests.support.servers import bridge_env
    first = Shop(test_settings(db_url, tmp_path))  # no URL: the notice stays in the outbox
    try:
        register(first, "ord_c", "micromastery", [lic_item("li_1", "training")])
        first.stripe(s_pay("ord_c"))
        first.stripe(s_dispute("ord_c", "charge.dispute.created", "needs_response", T0 + DAY))
        first.drain()
        for key, value in bridge_env(first.rt.settings).items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("LICENSE_WEBHOOK_URL", raising=False)
        assert main(["notices", "resend"]) == 2
        monkeypatch.setenv("LICENSE_WEBHOOK_URL", merchant.url)
        monkeypatch.setenv("LICENSE_WEBHOOK_SECRET", first.rt.settings.license_webhook_secret or merchant.secret)
        assert main(["notices", "resend"]) == 0
        with first.rt.reads() as s:
            assert s.scalar(select(Job.state).where(Job.kind == "deliver_notice")) == "ready"
    finally:
        close_shop(first)
