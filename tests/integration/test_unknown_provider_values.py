"""Unknown values of provider enums (issue 11 item 11), ledger side: a dispute or refund status
the bridge cannot map leaves the case's state where it was, its money is still booked, and the
raw value is reported to finance; never a parse failure that blocks every later event."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from bridge.domain.events import DisputeUpdated, PaymentSucceeded, RefundUpdated
from bridge.ledger import disputes, payments, refunds
from bridge.ledger.models import Dispute, LedgerEntry, Refund

T = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)


def _paid(s):
    ev = PaymentSucceeded(provider="stripe", occurred_at=T, amount=4900, currency="USD", paid_at=T,
                          charge_id="ch_u", payment_intent_id="pi_u")
    p = payments.upsert_payment(s, ev, T)
    payments.post_money(s, p, T)
    return p


def _dispute(status, at, provider_status, withdrawn=None, fee=None):
    return DisputeUpdated(provider="stripe", occurred_at=at, provider_dispute_id="dp_u", amount=4900, currency="USD",
                          status=status, charge_id="ch_u", payment_intent_id="pi_u", provider_status=provider_status,
                          funds_withdrawn=withdrawn, fee=fee)


def _kinds(s):
    return sorted((e.kind, e.amount) for e in s.execute(select(LedgerEntry)).scalars())


def test_an_unknown_dispute_status_keeps_the_state_and_books_the_money(runtime):
    with runtime.sessions.begin() as s:
        _paid(s)
        disputes.apply_dispute(s, _dispute("open", T + timedelta(days=1), "needs_response"), T)
        row, before = disputes.apply_dispute(s, _dispute(None, T + timedelta(days=2), "prevented", 4900, 1500), T)
        assert (before, row.status, row.provider_status) == ("open", "open", "needs_response")
        assert ("chargeback", -4900) in _kinds(s) and ("chargeback_fee", -1500) in _kinds(s)
        # A later known status still moves it on.
        row, _ = disputes.apply_dispute(s, _dispute("lost", T + timedelta(days=3), "lost"), T)
        assert row.status == "lost"


def test_a_case_first_seen_with_an_unknown_status_is_overridden_by_any_known_one(runtime):
    """Order-independent: the known status dated before the unknown one still applies."""
    with runtime.sessions.begin() as s:
        _paid(s)
        row, _ = disputes.apply_dispute(s, _dispute(None, T + timedelta(days=2), "prevented"), T)
        assert row.status == "warning"
        row, _ = disputes.apply_dispute(s, _dispute("open", T + timedelta(days=1), "needs_response"), T)
        assert (row.status, row.provider_status) == ("open", "needs_response")


def test_an_unknown_refund_status_leaves_the_refund_where_it_was(runtime):
    def ev(status, days):
        return RefundUpdated(provider="stripe", occurred_at=T + timedelta(days=days), provider_refund_id="re_u",
                             amount=1000, currency="USD", status=status, charge_id="ch_u", payment_intent_id="pi_u")
    with runtime.sessions.begin() as s:
        _paid(s)
        row = refunds.apply_refund(s, ev(None, 1), T)
        assert row.status == "pending" and ("refund", -1000) not in _kinds(s)
        row = refunds.apply_refund(s, ev("succeeded", 2), T)
        row = refunds.apply_refund(s, ev(None, 3), T)
        assert row.status == "succeeded" and ("refund", -1000) in _kinds(s)
        assert s.execute(select(Refund.status)).scalar_one() == "succeeded"
        assert s.execute(select(Dispute)).first() is None


# --- end to end: signed webhooks through the worker ---------------------------------------------------

import json  # noqa: E402

from bridge.ledger import reconciliation  # noqa: E402
from bridge.ledger.models import WebhookEvent  # noqa: E402
from tests.conftest import PADDLE_SECRET, STRIPE_SECRET  # noqa: E402
from tests.fixtures import paddle_payloads as pp, stripe_payloads as sp  # noqa: E402
from tests.support.signing import paddle_headers, stripe_headers  # noqa: E402

T0 = 1_772_359_200


def _send(client, provider, payload):
    body = json.dumps(payload).encode()
    headers = stripe_headers(body, STRIPE_SECRET) if provider == "stripe" else paddle_headers(body, PADDLE_SECRET)
    assert client.post(f"/webhooks/{provider}", data=body, headers=headers).status_code == 200


def _report(runtime):
    period = reconciliation.Period(datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc))
    with runtime.reads() as s:
        return reconciliation.discrepancies(s, period, datetime(2026, 6, 1, tzinfo=timezone.utc))


def test_a_stripe_dispute_with_an_unknown_status_books_its_money_and_is_reported(client, runtime, worker):
    """Before: the event failed permanently (unknown dispute status), so the dispute's money was
    never booked and every later event of it was stuck behind it."""
    _send(client, "stripe", sp.charge_succeeded(event_id="evt_c", charge_id="ch_x", payment_intent_id="pi_x",
                                                amount=4900, metadata={}, balance_transaction=None, created=T0))
    d = dict(dispute_id="dp_x", charge_id="ch_x", payment_intent_id="pi_x", amount=4900, created=T0 + 86_400)
    odd = sp.dispute_event("charge.dispute.created", event_id="evt_odd", status="needs_response", **d)
    odd["data"]["object"]["status"] = "pre_arbitration"
    _send(client, "stripe", odd)
    worker.drain()
    with runtime.reads() as s:
        ev = s.execute(select(WebhookEvent).where(WebhookEvent.provider_event_id == "evt_odd")).scalar_one()
        assert ev.status == "processed" and "pre_arbitration" in ev.error
        assert sorted(_kinds(s)) == [("chargeback", -4900), ("chargeback_fee", -1500), ("sale", 4900)]
        assert s.execute(select(Dispute.status)).scalar_one() == "open"  # the least it can be, with money out
    assert any(x["kind"] == "unknown_provider_value" and "pre_arbitration" in x["detail"] for x in _report(runtime))
    _send(client, "stripe", sp.dispute_event("charge.dispute.closed", event_id="evt_lost", status="lost",
                                             **{**d, "created": T0 + 86_400}))
    worker.drain()
    with runtime.reads() as s:
        assert s.execute(select(Dispute.status)).scalar_one() == "lost"
        assert sorted(_kinds(s)) == [("chargeback", -4900), ("chargeback_fee", -1500), ("sale", 4900)]


def test_a_stripe_dispute_closed_books_its_money_without_funds_events(client, runtime, worker):
    """Before: only funds_withdrawn/funds_reinstated booked money; a dispute whose funds_*
    events never came showed lost with nothing withdrawn."""
    _send(client, "stripe", sp.charge_succeeded(event_id="evt_c2", charge_id="ch_y", payment_intent_id="pi_y",
                                                amount=4900, metadata={}, balance_transaction=None, created=T0))
    _send(client, "stripe", sp.dispute_event("charge.dispute.closed", event_id="evt_cl", status="lost",
                                             dispute_id="dp_y", charge_id="ch_y", payment_intent_id="pi_y",
                                             amount=4900, created=T0 + 86_400))
    worker.drain()
    with runtime.reads() as s:
        assert sorted(_kinds(s)) == [("chargeback", -4900), ("chargeback_fee", -1500), ("sale", 4900)]


def test_a_new_paddle_adjustment_action_is_reported_not_failed(client, runtime, worker):
    _send(client, "paddle", pp.adjustment_event(event_id="evt_gift", action="gift_card"))
    worker.drain()
    with runtime.reads() as s:
        ev = s.execute(select(WebhookEvent).where(WebhookEvent.provider_event_id == "evt_gift")).scalar_one()
        assert ev.status == "ignored" and "gift_card" in ev.error
    assert any(x["kind"] == "unknown_provider_value" and "gift_card" in x["detail"] for x in _report(runtime))
