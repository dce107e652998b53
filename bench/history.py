"""A merchant's past, written straight into the tables before a bench run: so a look-up that
scans a table instead of using an index shows as a cost that grows with history.

``fill(engine, n)`` writes n past orders of their own customers, each with a payment (both
providers' id columns filled, as the providers' own rows are), its items, a sale and a fee
entry, a processed webhook event and its done job; one in 25 with a refund, one in 50 with a
dispute and its entries, one in 40 with a correcting fee entry. Every row is dated
``HISTORY_AT``, long before anything a bench event writes, so ``state_of`` leaves them out
(``since``). Nothing is written through the bridge's code: it is the state, not the work.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from sqlalchemy import insert, select, text

HISTORY_AT = datetime(2001, 1, 1, tzinfo=timezone.utc)
# Rows dated after this are the run's own.
SINCE = datetime(2002, 1, 1, tzinfo=timezone.utc)
_CHUNK = 5000


def fill(engine, n: int) -> float:
    """Write the history of ``n`` orders; the seconds it took (ANALYZE included on PostgreSQL,
    whose planner a deployment's autovacuum keeps informed; the bridge never runs it on SQLite)."""
    from bridge.ledger.models import (Dispute, Job, LedgerEntry, Order, OrderItem, Payment, PaymentItem, Refund,
                                      WebhookEvent)
    t0 = time.monotonic()
    at = HISTORY_AT
    with engine.begin() as c:
        for lo in range(0, n, _CHUNK):
            idx = range(lo, min(n, lo + _CHUNK))
            c.execute(insert(Order), [dict(order_id=f"hist_ord_{i}", policy="hist", currency="USD",
                                           customer_id=f"hist_ctm_{i % (n // 3 + 1)}", status="paid",
                                           created_at=at, updated_at=at) for i in idx])
        orders = dict(c.execute(select(Order.order_id, Order.id).where(Order.order_id.like("hist_ord_%"))).all())
        for lo in range(0, n, _CHUNK):
            idx = range(lo, min(n, lo + _CHUNK))
            c.execute(insert(OrderItem), [dict(order_pk=orders[f"hist_ord_{i}"], item_id=f"hist_item_{i}",
                                               sku="hist", amount=1000) for i in idx])
            c.execute(insert(Payment), [_payment(i, orders[f"hist_ord_{i}"], at) for i in idx])
        payments = dict(c.execute(select(Payment.order_ref, Payment.id).where(Payment.order_ref.like("hist_ord_%"))).all())
        items = dict(c.execute(select(OrderItem.order_pk, OrderItem.id).where(OrderItem.sku == "hist")).all())
        for lo in range(0, n, _CHUNK):
            idx = range(lo, min(n, lo + _CHUNK))
            c.execute(insert(PaymentItem), [dict(payment_pk=payments[f"hist_ord_{i}"],
                                                 order_item_pk=items[orders[f"hist_ord_{i}"]],
                                                 provider_item_id=f"hist_li_{i}", price_id=f"hist_pri_{i % 7}",
                                                 amount=1000, tax=0) for i in idx])
            c.execute(insert(LedgerEntry), [row for i in idx for row in _entries(i, orders, payments, at)])
            c.execute(insert(WebhookEvent), [dict(provider=_provider(i), provider_event_id=f"hist_evt_{i}",
                                                  event_type="hist", body=b"{}", received_at=at, occurred_at=at,
                                                  status="processed", processed_at=at) for i in idx])
            c.execute(insert(Job), [dict(kind="process_event", ref_id=f"hist_{i}", state="done", run_at=at,
                                         attempts=1, max_attempts=5, created_at=at, finished_at=at) for i in idx])
            refunds = [dict(provider=_provider(i), provider_refund_id=f"hist_re_{i}", payment_pk=payments[f"hist_ord_{i}"],
                            amount=500, currency="USD", status="succeeded", created_at=at, updated_at=at)
                       for i in idx if i % 25 == 3]
            if refunds:
                c.execute(insert(Refund), refunds)
            disputes = [dict(provider=_provider(i), provider_dispute_id=f"hist_dp_{i}", payment_pk=payments[f"hist_ord_{i}"],
                             order_pk=orders[f"hist_ord_{i}"], amount=1000, currency="USD", status="lost",
                             status_at=at, opened_at=at, created_at=at, updated_at=at)
                        for i in idx if i % 50 == 7]
            if disputes:
                c.execute(insert(Dispute), disputes)
        fees = dict(c.execute(select(LedgerEntry.effect_key, LedgerEntry.id)
                              .where(LedgerEntry.effect_key.like("hist:fee:%"))).all())
        corrections = [dict(provider=_provider(i), kind="fee", amount=10, currency="USD", occurred_at=at,
                            effect_key=f"hist:fee-fix:{i}", corrects=fees[f"hist:fee:{i}"], created_at=at,
                            order_pk=orders[f"hist_ord_{i}"], payment_pk=payments[f"hist_ord_{i}"])
                       for i in range(n) if i % 40 == 5]
        for lo in range(0, len(corrections), _CHUNK):
            c.execute(insert(LedgerEntry), corrections[lo:lo + _CHUNK])
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("ANALYZE"))
    return time.monotonic() - t0


def _provider(i: int) -> str:
    return "paddle" if i % 2 else "stripe"


def _payment(i: int, order_pk: int, at: datetime) -> dict:
    paddle = i % 2
    return dict(provider=_provider(i), order_pk=order_pk, order_ref=f"hist_ord_{i}",
                customer_ref=f"hist_ctm_{i % 997}", amount=1000, tax=0, fee=59, currency="USD", paid_at=at,
                transaction_id=f"hist_txn_{i}" if paddle else None,
                charge_id=None if paddle else f"hist_ch_{i}",
                payment_intent_id=None if paddle else f"hist_pi_{i}",
                subscription_id=f"hist_sub_{i}" if i % 3 == 0 else None,
                balance_transaction_id=None if paddle else f"hist_txn_{i}",
                captured=True, status="succeeded", created_at=at, updated_at=at)


def _entries(i: int, orders: dict, payments: dict, at: datetime) -> list[dict]:
    o, p, prov = orders[f"hist_ord_{i}"], payments[f"hist_ord_{i}"], _provider(i)
    rows = [dict(provider=prov, kind="sale", amount=1000, currency="USD", occurred_at=at, effect_key=f"hist:sale:{i}",
                 created_at=at, order_pk=o, payment_pk=p, provider_ref=f"hist_ch_{i}"),
            dict(provider=prov, kind="fee", amount=-59, currency="USD", occurred_at=at, effect_key=f"hist:fee:{i}",
                 created_at=at, order_pk=o, payment_pk=p, provider_ref=f"hist_ch_{i}")]
    if i % 25 == 3:
        rows.append(dict(provider=prov, kind="refund", amount=-500, currency="USD", occurred_at=at,
                         effect_key=f"hist:refund:{i}", created_at=at, order_pk=o, payment_pk=p,
                         provider_ref=f"hist_re_{i}"))
    if i % 50 == 7:
        rows.append(dict(provider=prov, kind="chargeback", amount=-1000, currency="USD", occurred_at=at,
                         effect_key=f"hist:chargeback:{i}", created_at=at, order_pk=o, payment_pk=p,
                         provider_ref=f"hist_dp_{i}"))
    return rows
