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
