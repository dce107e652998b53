"""Paddle Billing notifications -> provider-neutral events (``bridge.domain.events``).

``parse(payload)`` takes the verified, ``json.loads``-ed body of a Paddle Billing (v1)
notification (``{"event_id", "event_type", "occurred_at", "notification_id", "data"}``) and
returns a :class:`ParsedEvent`. Plain dict access: no ``NotificationEvent`` (slow, and lenient
in ways we do not want: unknown enums become ``Undefined``, parse failures are printed and
swallowed; reference/paddle.md gotcha 11).

Rules (reference/paddle.md is the source of the facts):

* Unknown event types give ``Ignored`` and never raise; a handled type whose ``data`` lacks or
  mistypes what we need raises :class:`PayloadError` naming the field.
* Money is strings of minor units (``"4900"`` USD = 49.00; ``"500"`` JPY = 500 yen), parsed
  with ``parse_minor``; currencies upper-case; times RFC 3339 -> aware UTC datetimes.
* ``occurred_at`` is the envelope's ``occurred_at``. Dedupe is by ``event_id`` (a replay gets a
  new ``notification_id``), which is what ``ParsedEvent.provider_event_id`` carries.

Handled types: ``transaction.completed`` (one-time purchases and renewals), ``adjustment.created``
and ``adjustment.updated`` (every action), ``subscription.canceled``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Optional

from bridge.domain.events import (
    PADDLE, DisputeUpdated, Ignored, LineItem, NeutralEvent, ParsedEvent, PaymentSucceeded,
    RefundItem, RefundUpdated, SubscriptionCanceled,
)
from bridge.providers.payload_errors import (
    PayloadError, as_dict, join, normalize_billing, opt_amount, opt_currency, opt_dict, opt_int,
    opt_iso, opt_list, opt_ref, opt_str, req_amount, req_currency, req_dict, req_iso, req_list,
    req_str,
)

__all__ = ["parse", "PayloadError", "HANDLED_TYPES", "extract_refund_request_id"]

DATA = "data"


@dataclass(frozen=True)
class _Ctx:
    event_type: str
    occurred_at: datetime

    def ignored(self, why: str) -> Ignored:
        return Ignored(PADDLE, self.occurred_at, self.event_type, why)


def parse(payload: dict) -> ParsedEvent:
    """Parse one Paddle Billing notification into neutral events.

    Raises :class:`PayloadError` for a malformed envelope (no ``event_id``/``event_type``) or a
    handled event type whose ``data`` lacks what we need.
    """
    event = as_dict(payload, "notification")
    event_id = req_str(event, "event_id", "")
    event_type = req_str(event, "event_type", "")
    handler = _HANDLERS.get(event_type)
    if handler is None:
        try:
            occurred: Optional[datetime] = opt_iso(event, "occurred_at", "")
        except PayloadError:
            occurred = None
        return ParsedEvent(PADDLE, event_id, event_type, occurred,
                           (Ignored(PADDLE, occurred, event_type),))
    occurred_at = req_iso(event, "occurred_at", "")
    data = req_dict(event, "data", "")
    events = handler(_Ctx(event_type, occurred_at), data)
    return ParsedEvent(PADDLE, event_id, event_type, occurred_at, tuple(events))


# --- shared -----------------------------------------------------------------------------------

def _order_ref(entity: dict, path: str) -> Optional[str]:
    """``custom_data.order_id`` (custom_data may be null). Paddle copies a transaction's
    custom_data to the subscription it creates and from there to every renewal."""
    custom = opt_dict(entity, "custom_data", path)
    if custom is None:
        return None
    return opt_ref(custom, "order_id", join(path, "custom_data"))


# --- transactions -----------------------------------------------------------------------------

def _billing_from_cycle(price: dict, path: str) -> Optional[str]:
    """``price.billing_cycle``: null -> one_time; month/1 -> monthly; year/1 or month/12 -> annual;
    any other cycle (weekly, quarterly...) -> None (the catalog decides)."""
    if "billing_cycle" not in price:
        return None
    cycle = opt_dict(price, "billing_cycle", path)
    if cycle is None:
        return "one_time"
    cpath = join(path, "billing_cycle")
    interval = opt_str(cycle, "interval", cpath)
    frequency = opt_int(cycle, "frequency", cpath)
    if interval == "month" and frequency in (None, 1):
        return "monthly"
    if (interval == "year" and frequency in (None, 1)) or (interval == "month" and frequency == 12):
        return "annual"
    return None


def _catalog_fields(price: Optional[dict], price_path: str, product: Optional[dict],
                    product_path: str) -> dict:
    """category / billing / sku / item_ref from the price's custom_data, else the product's;
    billing from the price's ``billing_cycle`` when neither names it."""
    sources = []
    if price is not None:
        custom = opt_dict(price, "custom_data", price_path)
        if custom:
            sources.append((custom, join(price_path, "custom_data")))
    if product is not None:
        custom = opt_dict(product, "custom_data", product_path)
        if custom:
            sources.append((custom, join(product_path, "custom_data")))

    def first(key: str) -> Optional[str]:
        for custom, cpath in sources:
            value = opt_ref(custom, key, cpath)
            if value is not None:
                return value
        return None

    billing = normalize_billing(first("billing"))
    if billing is None and price is not None:
        billing = _billing_from_cycle(price, price_path)
    return {"category": first("category"), "billing": billing, "sku": first("sku"),
            "item_ref": first("item_id")}


def _line_items(data: dict, details: dict) -> tuple[LineItem, ...]:
    """``details.line_items[]`` (the source of truth for line totals) joined by ``price_id`` with
    ``items[].price`` (billing cycle, price custom_data)."""
    prices: dict[str, tuple[dict, str]] = {}
    for i, raw in enumerate(opt_list(data, "items", DATA)):
        ipath = f"{DATA}.items[{i}]"
        item = as_dict(raw, ipath)
        price = req_dict(item, "price", ipath)
        ppath = join(ipath, "price")
        prices.setdefault(req_str(price, "id", ppath), (price, ppath))

    items = []
    base = f"{DATA}.details.line_items"
    for i, raw in enumerate(req_list(details, "line_items", f"{DATA}.details")):
        lpath = f"{base}[{i}]"
        line = as_dict(raw, lpath)
        price_id = req_str(line, "price_id", lpath)
        totals = req_dict(line, "totals", lpath)
        tpath = join(lpath, "totals")
        product = opt_dict(line, "product", lpath)
        product_path = join(lpath, "product")
        price, price_path = prices.get(price_id, (None, ""))
        product_id = opt_str(product, "id", product_path) if product else None
        if product_id is None and price is not None:
            product_id = opt_str(price, "product_id", price_path)
        items.append(LineItem(
            provider_item_id=req_str(line, "id", lpath),
            price_id=price_id,
            product_id=product_id,
            amount=req_amount(totals, "total", tpath),
            tax=req_amount(totals, "tax", tpath),
            quantity=opt_int(line, "quantity", lpath) or 1,
            **_catalog_fields(price, price_path, product, product_path),
        ))
    return tuple(items)


def _paid_at(ctx: _Ctx, data: dict) -> datetime:
    """The capture time of the newest captured payment (``payments`` is newest first), else
    ``billed_at``, else the event time."""
    for i, raw in enumerate(opt_list(data, "payments", DATA)):
        ppath = f"{DATA}.payments[{i}]"
        payment = as_dict(raw, ppath)
        captured_at = opt_iso(payment, "captured_at", ppath)
        if captured_at is not None and opt_str(payment, "status", ppath) in (None, "captured"):
            return captured_at
    return opt_iso(data, "billed_at", DATA) or ctx.occurred_at


def _transaction_completed(ctx: _Ctx, data: dict) -> list[NeutralEvent]:
    """transaction.completed: a payment (first purchase, renewal, or one-off charge).

    * ``purchase``: origin ``subscription_recurring`` -> renewal, any other origin -> initial.
    * ``amount``: ``details.totals.grand_total`` (what was charged after credits), else ``total``.
      A zero-value transaction (trial start, payment-method change) moved no money: Ignored.
    * ``fee``: ``details.totals.fee`` (transaction currency; null before completion), else
      ``payout_totals.fee`` only when the payout currency is the transaction currency. Unknown
      stays None.
    * Period: ``billing_period`` (set for subscription transactions, null for one-time ones).
    * The transaction carries no e-mail or country inline (only ``address_id``): None.
    """
    txn_id = req_str(data, "id", DATA)
    currency = req_currency(data, "currency_code", DATA)
    details = req_dict(data, "details", DATA)
    dpath = f"{DATA}.details"
    totals = req_dict(details, "totals", dpath)
    tpath = join(dpath, "totals")
    amount = opt_amount(totals, "grand_total", tpath, nonneg=True)
    if amount is None:
        amount = req_amount(totals, "total", tpath, nonneg=True)
    if amount == 0:
        return [ctx.ignored("zero-value transaction: no money moved")]

    fee = opt_amount(totals, "fee", tpath)
    if fee is None:
        payout = opt_dict(details, "payout_totals", dpath)
        if payout is not None:
            ppath = join(dpath, "payout_totals")
            if opt_currency(payout, "currency_code", ppath) == currency:
                fee = opt_amount(payout, "fee", ppath)

    origin = req_str(data, "origin", DATA)
    period = opt_dict(data, "billing_period", DATA)
    period_start = period_end = None
    if period is not None:
        bpath = f"{DATA}.billing_period"
        period_start = req_iso(period, "starts_at", bpath)
        period_end = req_iso(period, "ends_at", bpath)

    return [PaymentSucceeded(
        provider=PADDLE,
        occurred_at=ctx.occurred_at,
        amount=amount,
        currency=currency,
        paid_at=_paid_at(ctx, data),
        order_ref=_order_ref(data, DATA),
        customer_ref=opt_str(data, "customer_id", DATA),
        tax=req_amount(totals, "tax", tpath),
        fee=fee,
        purchase="renewal" if origin == "subscription_recurring" else "initial",
        period_start=period_start,
        period_end=period_end,
        transaction_id=txn_id,
        subscription_id=opt_str(data, "subscription_id", DATA),
        items=_line_items(data, details),
    )]


# --- adjustments ------------------------------------------------------------------------------

_REFUND_STATUS = {
    "pending_approval": "pending",
    "approved": "succeeded",
    "rejected": "failed",
    "reversed": "canceled",
}

# action -> (our dispute status, money moves out (True) / back in (False) / not at all (None)).
# Money is tied to the definitive adjustments only: a warning is followed by the chargeback
# that moves the money (or by its reverse), and booking the money once, on the chargeback,
# keeps the ledger the same whatever order the two arrive in.
_CHARGEBACK = {
    "chargeback_warning": ("warning", None),
    "chargeback": ("lost", True),
    "chargeback_reverse": ("won", False),
    "chargeback_warning_reverse": ("won", None),
}

_REQUEST_ID = re.compile(r"(?<![A-Za-z0-9_])rr_[A-Za-z0-9]+")


def extract_refund_request_id(reason: Optional[str]) -> Optional[str]:
    """Our refund request id, written into the adjustment ``reason`` when we create a refund
    (Paddle has no metadata on adjustments): the first ``rr_<alnum>`` token, else None."""
    if not reason:
        return None
    match = _REQUEST_ID.search(reason)
    return match.group(0) if match else None


def _adjustment_items(data: dict) -> tuple[RefundItem, ...]:
    items = []
    for i, raw in enumerate(opt_list(data, "items", DATA)):
        ipath = f"{DATA}.items[{i}]"
        item = as_dict(raw, ipath)
        amount = opt_amount(item, "amount", ipath)
        if amount is None:  # full-type items may omit amount; their totals say it
            amount = req_amount(req_dict(item, "totals", ipath), "total", join(ipath, "totals"))
        items.append(RefundItem(provider_item_id=req_str(item, "item_id", ipath), amount=abs(amount)))
    return tuple(items)


def _chargeback_fee(data: dict, currency: str) -> Optional[int]:
    """``payout_totals.chargeback_fee``: ``amount`` is in the payout currency, ``original`` (when
    converted) in the currency Paddle charged it in. Reported only in the adjustment's currency."""
    payout = opt_dict(data, "payout_totals", DATA)
    if payout is None:
        return None
    ppath = f"{DATA}.payout_totals"
    fee = opt_dict(payout, "chargeback_fee", ppath)
    if fee is None:
        return None
    fpath = join(ppath, "chargeback_fee")
    if opt_currency(payout, "currency_code", ppath) == currency:
        return req_amount(fee, "amount", fpath)
    original = opt_dict(fee, "original", fpath)
    if original is not None and opt_currency(original, "currency_code", join(fpath, "original")) == currency:
        return req_amount(original, "amount", join(fpath, "original"))
    return None


def _adjustment(ctx: _Ctx, data: dict) -> list[NeutralEvent]:
    """adjustment.created / adjustment.updated, by ``action``.

    * ``refund`` -> RefundUpdated: pending_approval -> pending, approved -> succeeded,
      rejected -> failed, reversed -> canceled; ``reason`` may carry our ``rr_...`` request id.
      Refunds Paddle made on its own (buyer support) come the same way, without our id.
    * ``chargeback*`` -> DisputeUpdated keyed ``paddle:<transaction_id>`` (Paddle has no dispute
      object; a reversal names no original adjustment, only the transaction). chargeback_warning
      -> warning, no money moved (the chargeback that follows moves it); chargeback -> lost, funds withdrawn, fee from
      ``payout_totals.chargeback_fee``; chargeback_reverse -> won, funds reinstated; chargeback_warning_reverse -> won, no money. Money moves when the adjustment is created: an ``adjustment.updated`` of
      a chargeback (it only ever turns ``reversed``, and the reversal arrives as its own
      adjustment) is Ignored, and so is a ``rejected`` one.
    * ``credit`` / ``credit_reverse`` -> Ignored: credits apply to manually collected invoices
      (a balance, not cash back to the buyer).
    Amounts are ``totals.total`` taken as positive (Paddle may sign reversals negative).
    """
    action = req_str(data, "action", DATA)
    if action in ("credit", "credit_reverse"):
        return [ctx.ignored(f"{action} adjustment: a balance credit on an invoice, not cash")]
    if action != "refund" and action not in _CHARGEBACK:
        raise PayloadError(f"{DATA}.action", f"unknown adjustment action {action!r}")
    raw_status = req_str(data, "status", DATA)
    if raw_status not in _REFUND_STATUS:
        raise PayloadError(f"{DATA}.status", f"unknown adjustment status {raw_status!r}")
    transaction_id = req_str(data, "transaction_id", DATA)
    currency = req_currency(data, "currency_code", DATA)
    totals = req_dict(data, "totals", DATA)
    amount = abs(req_amount(totals, "total", f"{DATA}.totals"))
    reason = opt_str(data, "reason", DATA)

    if action == "refund":
        return [RefundUpdated(
            provider=PADDLE,
            occurred_at=ctx.occurred_at,
            provider_refund_id=req_str(data, "id", DATA),
            amount=amount,
            currency=currency,
            status=_REFUND_STATUS[raw_status],
            transaction_id=transaction_id,
            reason=reason,
            refund_request_id=extract_refund_request_id(reason),
            items=_adjustment_items(data),
        )]

    if ctx.event_type == "adjustment.updated":
        return [ctx.ignored(f"{action} adjustment update ({raw_status}): money moved at creation; "
                            "a reversal arrives as its own adjustment")]
    if raw_status == "rejected":
        return [ctx.ignored(f"{action} adjustment rejected: no money moved")]
    req_str(data, "id", DATA)
    status, withdrawn = _CHARGEBACK[action]
    fee = _chargeback_fee(data, currency) if withdrawn is True else None
    return [DisputeUpdated(
        provider=PADDLE,
        occurred_at=ctx.occurred_at,
        provider_dispute_id=f"paddle:{transaction_id}",
        amount=amount,
        currency=currency,
        status=status,
        reason=reason,
        transaction_id=transaction_id,
        funds_withdrawn=amount if withdrawn is True else None,
        funds_reinstated=amount if withdrawn is False else None,
        fee=fee,
        provider_status=action,
    )]


# --- subscriptions ----------------------------------------------------------------------------

def _subscription_canceled(ctx: _Ctx, data: dict) -> list[NeutralEvent]:
    """subscription.canceled.

    ``access_ends_at``: ``current_billing_period.ends_at``, else ``scheduled_change.effective_at``,
    else ``canceled_at`` (Paddle sends this event on the billing date for a cancel-at-period-end,
    when the period is already null: access ends with the cancellation).
    """
    canceled_at = opt_iso(data, "canceled_at", DATA)
    access_ends_at = None
    period = opt_dict(data, "current_billing_period", DATA)
    if period is not None:
        access_ends_at = opt_iso(period, "ends_at", f"{DATA}.current_billing_period")
    if access_ends_at is None:
        change = opt_dict(data, "scheduled_change", DATA)
        if change is not None:
            access_ends_at = opt_iso(change, "effective_at", f"{DATA}.scheduled_change")
    return [SubscriptionCanceled(
        provider=PADDLE,
        occurred_at=ctx.occurred_at,
        subscription_id=req_str(data, "id", DATA),
        canceled_at=canceled_at,
        access_ends_at=access_ends_at or canceled_at,
        order_ref=_order_ref(data, DATA),
    )]


_HANDLERS: dict[str, Callable[[_Ctx, dict], list]] = {
    "transaction.completed": _transaction_completed,
    "adjustment.created": _adjustment,
    "adjustment.updated": _adjustment,
    "subscription.canceled": _subscription_canceled,
}

HANDLED_TYPES = frozenset(_HANDLERS)
