"""Licenses follow the money: created active when a payment is matched, suspended while a
dispute is open (the order's, or the whole account's where the policy restricts the account),
reinstated when it is won, revoked when the money is gone (a refund or a lost chargeback),
expiring at the end of the paid period after a subscription is canceled.

Every change is judged from the current state of its causes (each dispute's status by provider
time, each refund's confirmation), never from the event that happened to arrive, so late and
repeated events never move a license backwards. A license's state is the replay, in provider
time, of everything that concerns it: the disputes in its scope (opened, then won or lost) and
the refunds that gave its item back. Each change of that replay writes its notice (outbox)
with an id derived from the license, the change and its cause, so every delivery order of the
same events makes the same notices.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from bridge.domain.events import SubscriptionCanceled
from bridge.domain.ids import license_id_for
from bridge.ledger import absent, fresh, reads, rows
from bridge.ledger.orders import items_of, known_payments
from bridge.ledger.reads import read
from bridge.ledger.models import (Dispute, License, Order, OrderItem, Payment, PaymentItem, Refund,
                                  RefundRequest)
from bridge.providers.registry import provider_class
from bridge.services.notices import notify

_NOTICE_STATUS = {"license.suspended": "suspended", "license.revoked": "revoked", "license.reinstated": "active"}
_NOTICE_TYPE = {v: k for k, v in _NOTICE_STATUS.items()}

# Built once: the licenses of an order, and of every order of its customer.
_L, _O = License.__table__, Order.__table__
_LICENSES_OF = select(_L).where(_L.c.order_pk == bindparam("o")).order_by(_L.c.license_id)
_LICENSES_OF_CUSTOMER = select(_L).join(_O, _L.c.order_pk == _O.c.id).where(
    (_O.c.customer_id == bindparam("c")) | (_O.c.id == bindparam("o"))).order_by(_L.c.license_id)


def status_of(lic: License, now: Optional[datetime] = None) -> str:
    if lic.revoked:
        return "revoked"
    if lic.holds:
        return "suspended"
    if lic.expires_at is not None and now is not None and lic.expires_at <= now:
        return "expired"
    return "active"


# -- creation ------------------------------------------------------------------------------------

_UNREAD = object()  # a ``born`` (the order's first paid_at) the caller did not read


def ensure_licenses(session: Session, order: Order, now: datetime, policies=None,
                    at: Optional[datetime] = None, rejudge_all: bool = False, born=_UNREAD,
                    no_refunds: bool = False, no_disputes: bool = False) -> list[License]:
    """One license per order item, created active (idempotent). A license created while a
    dispute of its scope exists, or after its item was refunded, is judged at once."""
    out, new = [], []
    items = items_of(session, order)
    # An order created by this event has no license yet; others are read in one query.
    by_item = {} if fresh.is_fresh(order) else {
        lic.item_id: lic for lic in reads.objects(session, License, _LICENSES_OF, {"o": order.id})}
    for item in items:
        # A new order's items name the licenses about to be created here (orders._add_items).
        lic = next((n for n in new if n.license_id == item.license_id), None)  # not written yet
        if lic is None and item.license_id and not fresh.is_fresh(order):
            lic = reads.get(session, License, item.license_id)
        if lic is not None and lic.order_pk == order.id:
            lic.item_id = item.item_id  # the merchant renamed an item the bridge had named
        else:
            lic = by_item.get(item.item_id)
        if lic is None:
            lid = item.license_id or license_id_for(order.order_id, item.item_id)
            lic = License(license_id=lid, order_pk=order.id, item_id=item.item_id, customer_id=order.customer_id,
                          status="active", reason="paid", changed_at=at or now, revoked=False, holds=[], seq=0)
            fresh.mark(session, lic)  # no notice written yet (see _keep_merchant_in_step)
            new.append(lic)
        if order.customer_id and lic.customer_id != order.customer_id:
            lic.customer_id = order.customer_id
        if item.license_id != lic.license_id:  # an equal assignment would still dirty the row
            item.license_id = lic.license_id
        out.append(lic)
    rows.add_all_now(session, new)  # one INSERT for the new ones
    session.flush()
    todo = out if rejudge_all else new
    if todo:
        _rejudge(session, order, todo, policies, now, born, no_refunds, no_disputes)
    return out


def _rejudge(session: Session, order: Order, licenses: list[License], policies, now: datetime,
             born=_UNREAD, no_refunds: bool = False, no_disputes: bool = False) -> None:
    # Every caller passes the policies (the worker's effects, the orders API): the license is
    # judged by them, or by the defaults (``_chargeback``, ``_refund_steps``) when None. One
    # reading of the order's scope serves all its licenses.
    scope = _scope(session, order, policies, born, no_refunds, no_disputes=no_disputes)
    for lic in licenses:
        judge(session, lic, policies, now, order, scope)


_PAID_AT = (select(Payment.paid_at).where(Payment.order_pk == bindparam("o"), Payment.paid_at.is_not(None))
            .order_by(Payment.paid_at).limit(1))  # built once, as the statements below


def _paid_at(session: Session, order: Order) -> Optional[datetime]:
    return read(session, _PAID_AT, {"o": order.id}).scalar_one_or_none()


def on_payment(session: Session, payment: Payment, order: Order, now: datetime, policies=None) -> None:
    pays = known_payments(session, order)
    if pays is None:
        born = _paid_at(session, order)  # read once: creating licenses changes no payment
    else:  # a new order: its payments are in memory
        born = min((p.paid_at for p in pays if p.paid_at is not None), default=None)
    # A new order whose payments are all new has nothing refunded yet (a refund of this event
    # is applied after its payment, and judges the licenses again then), and no dispute either
    # (a dispute names a payment already known); its customer's other orders have none when
    # there is no customer, or no other order (absent.py: the event is this payment alone).
    no_refunds = fresh.all_fresh(pays)
    no_disputes = no_refunds and (not order.customer_id
                                  or absent.new_customer(session, payment.provider, order.customer_id))
    ensure_licenses(session, order, now, policies, at=born or payment.paid_at, born=born, no_refunds=no_refunds,
                    no_disputes=no_disputes)


def on_order_registered(session: Session, order: Order, now: datetime, policies=None) -> None:
    """The merchant registered the order (perhaps one the bridge had created from its payment,
    now with its own policy and item names): every license of a paid order is judged again."""
    paid = _paid_at(session, order)
    if paid is not None or session.execute(select(Payment.id).where(Payment.order_pk == order.id).limit(1)).first():
        ensure_licenses(session, order, now, policies, at=paid, rejudge_all=True)


# -- what concerns a license -----------------------------------------------------------------------

def _rule(order: Optional[Order], policies):
    if order is None or not order.policy or policies is None or order.policy not in policies:
        return None
    return policies.get(order.policy)


def _chargeback(order: Optional[Order], policies) -> tuple[str, str]:
    """(scope, when_lost) of the order's policy; the default is the order's licenses, revoked."""
    policy = _rule(order, policies)
    if policy is None:
        return "order", "revoke"
    return policy.chargeback.scope, policy.chargeback.when_lost


def _dispute_key(d: Dispute) -> str:
    return f"dispute:{d.provider}:{d.provider_dispute_id}"


def _implied_lost(d: Dispute) -> bool:
    """Some providers' won dispute gives back money a chargeback took (Paddle's
    ``chargeback_reverse``): the dispute was lost before it was won, whichever of the two
    arrived first. The provider says which statuses mean that."""
    return d.status == "won" and provider_class(d.provider).dispute_lost_before_won(d.provider_status)


@dataclass
class _DisputeCause:
    dispute: Dispute       # or its row (a read-only stand-in: the same names)
    key: str
    revokes: bool          # when lost, does it revoke this license


# Rows, not objects (reads.py): the replay only reads them, and the session has written what it
# changed of them before.
_D = Dispute.__table__
_DISPUTES_OF_ORDER = select(_D).where(_D.c.order_pk == bindparam("o")).order_by(_D.c.id)
# The order's and the customer's other orders' disputes: the orders found by their indexes
# first (an OR across a join of disputes to orders read every order).
_DISPUTES_OF_CUSTOMER = (select(_D)
                         .where(_D.c.order_pk.in_(select(Order.__table__.c.id).where(
                             (Order.__table__.c.id == bindparam("o"))
                             | (Order.__table__.c.customer_id == bindparam("c")))))
                         .order_by(_D.c.id))


def _disputes_of(session: Session, lic: Optional[License], order: Order, policies) -> list[_DisputeCause]:
    """The disputes whose scope holds this license: its own order's, and those of the
    customer's other orders whose policy restricts the whole account."""
    if order.customer_id:
        rows = read(session, _DISPUTES_OF_CUSTOMER, {"o": order.id, "c": order.customer_id})
    else:
        rows = read(session, _DISPUTES_OF_ORDER, {"o": order.id})
    out = []
    for d in rows:
        d_order = order if d.order_pk == order.id else reads.get(session, Order, d.order_pk)
        scope, when_lost = _chargeback(d_order, policies)
        same = d.order_pk == order.id
        if not same and scope != "account":
            continue
        revokes = when_lost == "revoke_account" or (when_lost == "revoke" and same)
        out.append(_DisputeCause(d, _dispute_key(d), revokes))
    return out


def _refund_key(r: Refund) -> str:
    return f"refund:{r.provider}:{r.provider_refund_id or r.id}"


_ANY_REFUND_SEEN = text("SELECT 1 FROM refunds r JOIN payments p ON r.payment_pk = p.id "
                        "WHERE p.order_pk = :o AND r.succeeded_at IS NOT NULL LIMIT 1")


# Rows (reads.py): an order's payments (p_*), each with its refunds seen succeeded (a payment
# with none: one row whose refund columns are NULL); their lines; the order's items.
_P, _R, _L, _I = Payment.__table__, Refund.__table__, PaymentItem.__table__, OrderItem.__table__
_PAYMENTS_AND_REFUNDS = (select(_P.c.id.label("p_id"), _P.c.amount.label("p_amount"),
                                _P.c.paid_at.label("p_paid_at"), _R)
                         .select_from(_P.outerjoin(_R, (_R.c.payment_pk == _P.c.id) & _R.c.succeeded_at.is_not(None)))
                         .where(_P.c.order_pk == bindparam("o"))
                         .order_by(_P.c.id, _R.c.succeeded_at, _R.c.id))
_LINES_OF = select(_L).where(_L.c.payment_pk.in_(bindparam("p", expanding=True)))
_ITEM_IDS = select(_I.c.id, _I.c.item_id).where(_I.c.order_pk == bindparam("o"))


@dataclass(frozen=True)
class _Paid:
    id: int
    amount: Optional[int]
    paid_at: Optional[datetime]


def _refund_steps(session: Session, order: Order, policies,
                  refund_seen: bool = False) -> tuple[dict[str, list[tuple[datetime, str, str]]], Optional[list]]:
    """item_id -> [(provider time, "refund" | "unrefund", refund key)]: when refunds seen
    succeeded gave the item back in full, and when that stopped being so because a refund
    failed or was reversed after it had succeeded (the money came back). And the order's
    payments, when they were read for it (else None)."""
    policy = _rule(order, policies)
    if policy is not None and policy.refund.license_action != "revoke":
        return {}, None
    if not refund_seen and read(session, _ANY_REFUND_SEEN, {"o": order.id}).first() is None:
        return {}, None  # the common case, in one round trip
    pays: dict[int, _Paid] = {}
    done_of: dict[int, list] = {}  # payment -> its refunds' rows
    for row in read(session, _PAYMENTS_AND_REFUNDS, {"o": order.id}):
        pays.setdefault(row.p_id, _Paid(row.p_id, row.p_amount, row.p_paid_at))
        if row.id is not None:
            done_of.setdefault(row.p_id, []).append(row)
    if not done_of:
        return {}, list(pays.values())
    by_pk = dict(read(session, _ITEM_IDS, {"o": order.id}).all())
    lines_of: dict[int, list] = {}
    for line in read(session, _LINES_OF, {"p": sorted(done_of)}):
        lines_of.setdefault(line.payment_pk, []).append(line)
    out: dict[str, list] = {}
    for payment_pk, done in done_of.items():
        payment, lines = pays[payment_pk], lines_of.get(payment_pk, [])
        moves = [(r.succeeded_at, 0, r.id, "add", r) for r in done]
        moves += [(r.status_at, 1, r.id, "remove", r) for r in done
                  if r.status in ("failed", "canceled") and r.status_at is not None and r.status_at >= r.succeeded_at]
        active: list = []
        before: set[str] = set()
        for at, _, _, what, r in sorted(moves, key=lambda m: m[:3]):
            if what == "add":
                active.append(r)
            else:
                active.remove(r)
            now_back = _given_back(session, active, payment, lines, by_pk)
            for item_id in sorted(now_back - before):
                out.setdefault(item_id, []).append((at, "refund", _refund_key(r)))
            for item_id in sorted(before - now_back):
                out.setdefault(item_id, []).append((at, "unrefund", _refund_key(r)))
            before = now_back
    return out, list(pays.values())


def _given_back(session: Session, active: list, payment: _Paid, lines, by_pk) -> set[str]:
    """The items given back in full by these refunds (their rows: all seen succeeded, none
    undone)."""
    out: set[str] = set()
    outside = False
    for r in active:
        if not r.refund_request_id:
            outside = True
            continue
        rr = reads.get(session, RefundRequest, r.refund_request_id)
        reviewed = (rr.decision or {}).get("reviewed") if rr is not None else None
        for part in r.items or []:
            if "item_id" not in part:
                continue
            if reviewed and part.get("line_amount") is not None and part["amount"] < part["line_amount"]:
                continue  # a person approved part of the item: it stays licensed
            out.add(part["item_id"])
    if outside:
        # Refunded outside the bridge: the whole payment, or lines of it refunded in full.
        total = sum(r.amount or 0 for r in active)
        if payment.amount is not None and total >= payment.amount:
            return set(by_pk.values())
        per_line: dict = {}
        for r in active:
            for part in r.items or []:
                pid = part.get("provider_item_id")
                per_line[pid] = per_line.get(pid, 0) + int(part.get("amount", 0) or 0)
        out |= {by_pk[line.order_item_pk] for line in lines
                if line.order_item_pk in by_pk and line.provider_item_id is not None
                and per_line.get(line.provider_item_id, 0) >= line.amount}
    return out


# -- the replay ----------------------------------------------------------------------------------

@dataclass
class _Change:
    status: str            # the license's status after it
    type: str              # notice type
    cause: str             # stable part of the notice id
    notice_reason: str
    reason: str            # the license's reason
    at: datetime


_RANK = {"open": 0, "lost": 1, "won": 2, "refund": 3, "unrefund": 4}


def _replay(lic: License, disputes: list[_DisputeCause], refund_steps: list, born: Optional[datetime] = None):
    """The license's changes in provider time, and its final holds and revocation. A change
    caused before the license existed (an account-wide dispute opened before this order was
    paid) takes effect when it was paid."""
    steps = []  # (time, rank, key, kind, dispute cause or None)
    for c in disputes:
        d = c.dispute
        steps.append((d.opened_at, _RANK["open"], c.key, "open", c))
        if _implied_lost(d) and c.revokes:
            steps.append((d.status_at, _RANK["lost"], c.key, "lost", c))
        if d.status in ("won", "lost"):
            steps.append((d.status_at, _RANK[d.status], c.key, d.status, c))
    for at, kind, key in refund_steps:
        steps.append((at, _RANK[kind], key, kind, None))
    steps.sort(key=lambda s: s[:3])

    holds: list[str] = []
    lost_by: list[str] = []
    refunded = False
    status = "active"
    changes: list[_Change] = []
    for at, _, key, kind, c in steps:
        if born is not None and at < born:
            at = born
        if kind == "open":
            if key not in holds:
                holds.append(key)
        elif kind in ("won", "lost"):
            if key in holds:
                holds.remove(key)
            if kind == "lost" and c.revokes:
                if key not in lost_by:
                    lost_by.append(key)
            elif key in lost_by:
                lost_by.remove(key)  # a chargeback reversed: the money is back
        else:
            refunded = kind == "refund"
        new = "revoked" if (refunded or lost_by) else "suspended" if holds else "active"
        if new == status:
            continue
        if new == "revoked":
            change = (_Change(new, "license.revoked", key, "refunded", "refunded", at) if kind == "refund" else
                      _Change(new, "license.revoked", f"{key}:lost", "chargeback lost", "chargeback lost", at))
        elif new == "suspended" and kind == "open":
            change = _Change(new, "license.suspended", key, "dispute opened", "dispute open", at)
        elif new == "suspended":  # a revocation undone while a dispute is still open
            change = _Change(new, "license.suspended", f"{key}:{kind}", "dispute open", "dispute open", at)
        elif kind == "unrefund":
            change = _Change(new, "license.reinstated", f"{key}:reversed", "refund reversed", "refund reversed", at)
        else:
            change = _Change(new, "license.reinstated", key, f"dispute {kind}", f"dispute {kind}", at)
        changes.append(change)
        status = new
    return changes, holds, bool(refunded or lost_by)


@dataclass
class _Scope:
    """What concerns every license of one order (judging one license changes none of it, so
    the licenses of an order are judged from one reading)."""
    born: Optional[datetime]
    disputes: list[_DisputeCause]
    refund_steps: dict


def _scope(session: Session, order: Order, policies, born=_UNREAD, no_refunds: bool = False,
           refund_seen: bool = False, no_disputes: bool = False) -> _Scope:
    """``no_refunds`` / ``no_disputes``: the caller knows no refund / no dispute concerns the
    order's licenses; ``refund_seen``: it knows one of its refunds was seen succeeded (each
    spares a look-up)."""
    steps, pays = ({}, None) if no_refunds else _refund_steps(session, order, policies, refund_seen)
    if born is _UNREAD:  # the order's first payment: from its payments when they were read
        born = _paid_at(session, order) if pays is None else min(
            (p.paid_at for p in pays if p.paid_at is not None), default=None)
    return _Scope(born, [] if no_disputes else _disputes_of(session, None, order, policies), steps)


def judge(session: Session, lic: License, policies, now: datetime, order: Optional[Order] = None,
          scope: Optional[_Scope] = None) -> None:
    """Bring one license in line with the current state of everything that concerns it, and
    write the notices of the changes that led there."""
    order = order or reads.get(session, Order, lic.order_pk)
    scope = scope or _scope(session, order, policies)
    born = scope.born
    changes, holds, revoked = _replay(lic, scope.disputes, scope.refund_steps.get(lic.item_id, []), born)
    # Assigned only when they differ: an equal value still marks the row dirty, and the flush
    # below then runs a whole unit of work to write nothing (most judgements change nothing).
    if lic.holds != holds:
        lic.holds = holds
    if lic.revoked != revoked:
        lic.revoked = revoked
    final = status_of(lic)
    if changes:
        reason, at = changes[-1].reason, changes[-1].at
    elif final != lic.status:  # no cause left (the order's policy or customer changed)
        reason, at = "paid", born or now
    else:
        reason, at = lic.reason, lic.changed_at
    if (final, reason, at) != (lic.status, lic.reason, lic.changed_at):
        lic.status, lic.reason, lic.changed_at = final, reason, at
    for ch in changes:
        notify(session, lic, order.order_id, ch.type, ch.cause, ch.notice_reason, ch.at, now)
    _keep_merchant_in_step(session, lic, order, reason, at, now)
    # Not flushed here: the licenses judged together (an order's, an account's) are written by
    # one flush, before the next read or the caller's.


def _keep_merchant_in_step(session: Session, lic: License, order: Order, reason: str, at: datetime,
                           now: datetime) -> None:
    """Notices go out in the order they were written. If a late event revealed a change in the
    middle of the history (or a cause went away), the last notice may no longer say the
    license's status: say it again, so that the merchant's app ends where the bridge is."""
    if fresh.is_fresh(lic):
        return  # created by this event: its notices (if any) were just written, the last saying its status
    final = status_of(lic)
    if lic.last_notice_type is None or _NOTICE_STATUS[lic.last_notice_type] == final:
        return
    notify(session, lic, order.order_id, _NOTICE_TYPE[final], f"again:{lic.last_notice_id}", reason, at, now)


# -- effects -----------------------------------------------------------------------------------------

def _in_scope(session: Session, dispute: Dispute, policies) -> tuple[list[License], str]:
    order = reads.get(session, Order, dispute.order_pk) if dispute.order_pk else None
    if order is None:
        return [], "order"
    scope, _ = _chargeback(order, policies)
    if scope == "account" and order.customer_id:
        found = reads.objects(session, License, _LICENSES_OF_CUSTOMER, {"c": order.customer_id, "o": order.id})
    else:
        found = reads.objects(session, License, _LICENSES_OF, {"o": order.id})
    return found, scope


def on_dispute(session: Session, dispute: Dispute, policies, now: datetime) -> None:
    """Bring the licenses in the dispute's scope in line with its current status."""
    licenses, scope = _in_scope(session, dispute, policies)
    dispute.restriction = "restrict_account" if scope == "account" else "suspend_order"
    scopes: dict[int, _Scope] = {}
    for lic in licenses:
        order = reads.get(session, Order, lic.order_pk)
        if order.id not in scopes:
            scopes[order.id] = _scope(session, order, policies)
        judge(session, lic, policies, now, order, scopes[order.id])
    session.flush()


def on_refund(session: Session, refund: Refund, policies, now: datetime) -> None:
    """A refund seen succeeded revokes the licenses of the items it gave back in full."""
    if refund.succeeded_at is None:
        return
    payment = reads.get(session, Payment, refund.payment_pk) if refund.payment_pk else None
    if payment is None or payment.order_pk is None:
        return
    order = reads.get(session, Order, payment.order_pk)
    scope = None
    for lic in reads.objects(session, License, _LICENSES_OF, {"o": order.id}):
        scope = scope or _scope(session, order, policies, refund_seen=True)  # this refund
        judge(session, lic, policies, now, order, scope)
    session.flush()


def on_subscription_canceled(session: Session, ev: SubscriptionCanceled, now: datetime) -> None:
    """Access runs to the end of the paid period: no refund, no early cut-off."""
    order = None
    if ev.order_ref:
        order = session.execute(select(Order).where(Order.order_id == ev.order_ref)).scalar_one_or_none()
    if order is None:
        pk = session.execute(select(Payment.order_pk).where(Payment.subscription_id == ev.subscription_id,
                                                             Payment.order_pk.is_not(None)).limit(1)).scalar_one_or_none()
        order = reads.get(session, Order, pk) if pk else None
    if order is None or ev.access_ends_at is None:
        return
    items = session.execute(select(OrderItem).where(OrderItem.order_pk == order.id)).scalars().all()
    recurring = {i.item_id for i in items if i.billing in ("monthly", "annual")} or {i.item_id for i in items}
    for lic in session.execute(select(License).where(License.order_pk == order.id)).scalars():
        if lic.item_id in recurring and (lic.expires_at is None or ev.access_ends_at > lic.expires_at):
            lic.expires_at = ev.access_ends_at
    session.flush()
