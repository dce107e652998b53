"""Stripe snapshot events -> provider-neutral events (``bridge.domain.events``).

``parse(payload)`` takes the already verified and ``json.loads``-ed body of a Stripe snapshot
event (``{"id", "object": "event", "type", "created", "api_version", "livemode",
"data": {"object": {...}}}``) and returns a :class:`ParsedEvent`. It reads plain dicts: no
``stripe.Event.construct_from`` (that costs ~1 ms per event; see reference/performance.md).

Rules (reference/stripe.md is the source of the facts):

* Unknown event types give ``Ignored`` and never raise. A handled type whose payload lacks or
  mistypes a field we need raises :class:`PayloadError` naming that field.
* ``occurred_at`` is the event's ``created``. Amounts stay in Stripe's minor units (zero-decimal
  currencies such as JPY are whole yen already); currencies are upper-cased.
* The payload is rendered in the webhook endpoint's API version. We read the current shape
  (``2026-10-28.endive``: invoices carry ``parent.subscription_details``, no top-level
  ``subscription``/``payment_intent``/``charge``) and fall back to the pre-basil top-level fields
  when an older endpoint sends them.
* A fee is reported only when it is known: an expanded balance transaction in the payment's own
  currency. A balance transaction id (what webhooks carry) becomes ``balance_transaction_id`` with
  ``fee=None`` so that the worker fetches it. Never 0 by default.

Handled types: ``checkout.session.completed`` / ``.async_payment_succeeded``,
``payment_intent.succeeded``, ``charge.succeeded``, ``charge.updated``, ``invoice.paid`` /
``invoice.payment_succeeded``, ``charge.refunded``, ``refund.created|updated|failed``,
``charge.refund.updated``, ``charge.dispute.created|updated|closed|funds_withdrawn|
funds_reinstated``, ``customer.subscription.deleted``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Optional

from bridge.domain.events import (
    STRIPE, DisputeUpdated, FeeReported, Ignored, LineItem, NeutralEvent, ParsedEvent,
    PaymentSucceeded, RefundUpdated, SubscriptionCanceled,
)
from bridge.providers.payload_errors import (
    PayloadError, as_dict, join, normalize_billing, opt_amount, opt_bool, opt_country, opt_currency,
    opt_dict, opt_id, opt_int, opt_list, opt_ref, opt_str, opt_stripe_list, opt_unix, req_amount,
    req_currency, req_dict, req_str, req_unix,
)

__all__ = ["parse", "PayloadError", "HANDLED_TYPES"]

OBJ = "data.object"


@dataclass(frozen=True)
class _Ctx:
    event_type: str
    occurred_at: datetime

    def ignored(self, why: str) -> Ignored:
        return Ignored(STRIPE, self.occurred_at, self.event_type, why)


# --- entry point ------------------------------------------------------------------------------

def parse(payload: dict) -> ParsedEvent:
    """Parse one Stripe snapshot event into neutral events.

    Raises :class:`PayloadError` for a malformed envelope (no ``id``/``type``) or a handled
    event type whose ``data.object`` lacks what we need.
    """
    event = as_dict(payload, "event")
    event_id = req_str(event, "id", "")
    event_type = req_str(event, "type", "")
    handler = _HANDLERS.get(event_type)
    if handler is None:
        try:
            occurred: Optional[datetime] = opt_unix(event, "created", "")
        except PayloadError:
            occurred = None
        return ParsedEvent(STRIPE, event_id, event_type, occurred,
                           (Ignored(STRIPE, occurred, event_type),))
    expected_object, fn = handler
    occurred_at = req_unix(event, "created", "")
    data = req_dict(event, "data", "")
    obj = req_dict(data, "object", "data")
    kind = obj.get("object")
    if kind is not None and kind != expected_object:
        raise PayloadError(join(OBJ, "object"), f"expected {expected_object!r} for {event_type}, got {kind!r}")
    events = fn(_Ctx(event_type, occurred_at), obj)
    return ParsedEvent(STRIPE, event_id, event_type, occurred_at, tuple(events))


# --- shared readers ---------------------------------------------------------------------------

def _metadata(obj: dict, path: str) -> dict:
    return opt_dict(obj, "metadata", path) or {}


def _order_ref(obj: dict, path: str) -> Optional[str]:
    return opt_ref(_metadata(obj, path), "order_id", join(path, "metadata"))


def _balance_transaction(obj: dict, path: str) -> tuple[Optional[str], Optional[int], Optional[str]]:
    """(id, fee, currency) of ``balance_transaction``: an id in webhooks, an object if expanded."""
    value = obj.get("balance_transaction")
    if value is None or isinstance(value, str):
        return opt_id(obj, "balance_transaction", path), None, None
    bt_path = join(path, "balance_transaction")
    bt = as_dict(value, bt_path)
    return req_str(bt, "id", bt_path), req_amount(bt, "fee", bt_path), req_currency(bt, "currency", bt_path)


def _purchase_from_own_metadata(order_ref: Optional[str]) -> Optional[str]:
    # A charge / PaymentIntent cannot say whether it pays a subscription invoice (basil removed
    # Charge.invoice and PaymentIntent.invoice). One that carries our order_id in its *own*
    # metadata was created by the merchant for a one-off order (PaymentIntent or Checkout in
    # payment mode): an initial purchase. Otherwise we cannot tell (invoice.paid will).
    return "initial" if order_ref else None


# --- charges and payment intents --------------------------------------------------------------

def _charge_payment(ctx: _Ctx, ch: dict) -> list[NeutralEvent]:
    """charge.succeeded / charge.updated: a captured charge, plus its fee when known."""
    status = opt_str(ch, "status", OBJ)
    if status != "succeeded":
        return [ctx.ignored(f"charge status {status!r}: no money captured")]
    if opt_bool(ch, "captured", OBJ) is False:
        return [ctx.ignored("charge authorized but not captured")]
    charge_id = req_str(ch, "id", OBJ)
    currency = req_currency(ch, "currency", OBJ)
    amount = opt_amount(ch, "amount_captured", OBJ, nonneg=True)
    if amount is None:
        amount = req_amount(ch, "amount", OBJ, nonneg=True)
    pi_id = opt_id(ch, "payment_intent", OBJ)
    bt_id, bt_fee, bt_currency = _balance_transaction(ch, OBJ)
    fee = bt_fee if bt_currency == currency else None
    billing = opt_dict(ch, "billing_details", OBJ) or {}
    billing_path = join(OBJ, "billing_details")
    order_ref = _order_ref(ch, OBJ)
    events: list[NeutralEvent] = [PaymentSucceeded(
        provider=STRIPE,
        occurred_at=ctx.occurred_at,
        amount=amount,
        currency=currency,
        paid_at=req_unix(ch, "created", OBJ),
        order_ref=order_ref,
        customer_ref=opt_id(ch, "customer", OBJ),
        customer_email=opt_str(billing, "email", billing_path) or opt_str(ch, "receipt_email", OBJ),
        customer_country=opt_country(opt_dict(billing, "address", billing_path), "country",
                                     join(billing_path, "address")),
        fee=fee,
        purchase=_purchase_from_own_metadata(order_ref),
        charge_id=charge_id,
        payment_intent_id=pi_id,
        balance_transaction_id=bt_id,
    )]
    if bt_id is not None:
        # charge.updated is how Stripe says the (asynchronously created) balance transaction
        # exists; a charge.succeeded that already names one gets the same treatment, so that
        # the worker has one path: FeeReported with fee None -> fetch the balance transaction.
        events.append(FeeReported(STRIPE, ctx.occurred_at, charge_id, pi_id, bt_id, bt_fee, bt_currency))
    return events


def _payment_intent(ctx: _Ctx, pi: dict) -> list[NeutralEvent]:
    """payment_intent.succeeded. ``latest_charge`` is an id (or an object when expanded)."""
    status = opt_str(pi, "status", OBJ)
    if status is not None and status != "succeeded":
        return [ctx.ignored(f"payment intent status {status!r}")]
    currency = req_currency(pi, "currency", OBJ)
    amount = opt_amount(pi, "amount_received", OBJ, nonneg=True)
    if amount is None:
        amount = req_amount(pi, "amount", OBJ, nonneg=True)
    fee = bt_id = None
    # When the money was taken: the charge's creation when it is expanded, else the event's
    # time (a payment intent is created before it is paid, sometimes long before).
    paid_at = ctx.occurred_at
    latest = pi.get("latest_charge")
    if isinstance(latest, dict):
        lc_path = join(OBJ, "latest_charge")
        bt_id, bt_fee, bt_currency = _balance_transaction(latest, lc_path)
        fee = bt_fee if bt_currency == currency else None
        paid_at = opt_unix(latest, "created", lc_path) or paid_at
    order_ref = _order_ref(pi, OBJ)
    return [PaymentSucceeded(
        provider=STRIPE,
        occurred_at=ctx.occurred_at,
        amount=amount,
        currency=currency,
        paid_at=paid_at,
        order_ref=order_ref,
        customer_ref=opt_id(pi, "customer", OBJ),
        customer_email=opt_str(pi, "receipt_email", OBJ),
        fee=fee,
        purchase=_purchase_from_own_metadata(order_ref),
        charge_id=opt_id(pi, "latest_charge", OBJ),
        payment_intent_id=req_str(pi, "id", OBJ),
        balance_transaction_id=bt_id,
    )]


# --- checkout sessions ------------------------------------------------------------------------

def _billing_from(meta_billing: Optional[str], interval: Optional[str], count: Optional[int],
                  one_time: bool) -> Optional[str]:
    """Billing of a line: the merchant's metadata ``billing`` first, then the price's cycle."""
    known = normalize_billing(meta_billing)
    if known:
        return known
    if interval is None:
        return "one_time" if one_time else None
    if interval == "month" and count in (None, 1):
        return "monthly"
    if (interval == "year" and count in (None, 1)) or (interval == "month" and count == 12):
        return "annual"
    return None


def _price_info(price: dict, path: str) -> tuple[str, Optional[str], dict, Optional[str], Optional[int], bool]:
    """(price id, product id, metadata, recurring interval, interval_count, is one-time) of an
    expanded Price."""
    price_id = req_str(price, "id", path)
    product_id = opt_id(price, "product", path)
    meta = _metadata(price, path)
    recurring = opt_dict(price, "recurring", path)
    interval = count = None
    if recurring is not None:
        interval = opt_str(recurring, "interval", join(path, "recurring"))
        count = opt_int(recurring, "interval_count", join(path, "recurring"))
    price_type = opt_str(price, "type", path)
    one_time = price_type == "one_time" or (price_type is None and "recurring" in price and recurring is None)
    return price_id, product_id, meta, interval, count, one_time


def _item_from_meta(meta: dict, path: str) -> dict:
    mpath = join(path, "metadata")
    return {
        "category": opt_ref(meta, "category", mpath),
        "billing": opt_ref(meta, "billing", mpath),
        "sku": opt_ref(meta, "sku", mpath),
        "item_ref": opt_ref(meta, "item_id", mpath),
    }


def _session_items(session: dict) -> tuple[LineItem, ...]:
    """Checkout Session ``line_items`` (present only when the session was expanded/retrieved)."""
    rows = opt_stripe_list(session, "line_items", OBJ)
    if not rows:
        return ()
    base = join(OBJ, "line_items.data")
    items = []
    for i, raw in enumerate(rows):
        path = f"{base}[{i}]"
        row = as_dict(raw, path)
        price = opt_dict(row, "price", path)
        price_id = product_id = interval = count = None
        price_meta: dict = {}
        one_time = False
        if price is not None:
            price_id, product_id, price_meta, interval, count, one_time = _price_info(price, join(path, "price"))
        fields = _item_from_meta({**price_meta, **_metadata(row, path)}, path)
        fields["billing"] = _billing_from(fields["billing"], interval, count, one_time)
        items.append(LineItem(
            provider_item_id=opt_str(row, "id", path),
            price_id=price_id,
            product_id=product_id,
            amount=req_amount(row, "amount_total", path),
            tax=opt_amount(row, "amount_tax", path) or 0,
            quantity=opt_int(row, "quantity", path) or 1,
            **fields,
        ))
    return tuple(items)


def _checkout_session(ctx: _Ctx, s: dict) -> list[NeutralEvent]:
    """checkout.session.completed / async_payment_succeeded.

    ``payment_status`` ``unpaid`` (a delayed method) is not a payment yet: Stripe follows with
    ``checkout.session.async_payment_succeeded``. ``setup`` mode and ``no_payment_required``
    move no money. Both payment and subscription mode are a first purchase (a Checkout Session
    in subscription mode creates the subscription), so ``purchase`` is ``initial``.
    """
    mode = opt_str(s, "mode", OBJ)
    payment_status = req_str(s, "payment_status", OBJ)
    if mode == "setup":
        return [ctx.ignored("checkout session in setup mode: no payment")]
    if payment_status == "unpaid":
        return [ctx.ignored("checkout session unpaid: awaiting checkout.session.async_payment_succeeded")]
    if payment_status != "paid":
        return [ctx.ignored(f"checkout session payment_status {payment_status!r}: no payment")]
    metadata_order = _order_ref(s, OBJ)
    order_ref = metadata_order or opt_ref(s, "client_reference_id", OBJ)
    details = opt_dict(s, "customer_details", OBJ) or {}
    dpath = join(OBJ, "customer_details")
    totals = opt_dict(s, "total_details", OBJ)
    return [PaymentSucceeded(
        provider=STRIPE,
        occurred_at=ctx.occurred_at,
        amount=opt_amount(s, "amount_total", OBJ, nonneg=True),
        currency=opt_currency(s, "currency", OBJ),
        # A session has no paid-at time of its own; the completion event is the payment time.
        paid_at=ctx.occurred_at,
        order_ref=order_ref,
        customer_ref=opt_id(s, "customer", OBJ),
        customer_email=opt_str(details, "email", dpath) or opt_str(s, "customer_email", OBJ),
        customer_country=opt_country(opt_dict(details, "address", dpath), "country", join(dpath, "address")),
        tax=opt_amount(totals, "amount_tax", join(OBJ, "total_details")) if totals else None,
        purchase="initial" if mode in ("payment", "subscription") else None,
        payment_intent_id=opt_id(s, "payment_intent", OBJ),
        invoice_id=opt_id(s, "invoice", OBJ),
        checkout_session_id=req_str(s, "id", OBJ),
        subscription_id=opt_id(s, "subscription", OBJ),
        items=_session_items(s),
    )]


# --- invoices ---------------------------------------------------------------------------------

_BILLING_REASON_PURCHASE = {"subscription_cycle": "renewal", "subscription_create": "initial"}


def _sum_amounts(rows: list, path: str, only: Optional[Callable[[dict, str], bool]] = None) -> int:
    total = 0
    for i, raw in enumerate(rows):
        rpath = f"{path}[{i}]"
        row = as_dict(raw, rpath)
        if only is None or only(row, rpath):
            total += req_amount(row, "amount", rpath)
    return total


def _exclusive(row: dict, path: str) -> bool:
    return opt_str(row, "tax_behavior", path) == "exclusive"


def _invoice_line(raw: object, path: str) -> tuple[LineItem, Optional[tuple[datetime, datetime]], bool]:
    """One invoice line -> (LineItem, its service period, is it a subscription (non-proration) line).

    The buyer paid ``amount`` (before discounts; tax-inclusive prices already hold their tax)
    minus pretax credits (discounts, credit grants) plus exclusive taxes.
    """
    line = as_dict(raw, path)
    amount = req_amount(line, "amount", path)
    credits = opt_list(line, "pretax_credit_amounts", path)
    if credits:
        amount -= _sum_amounts(credits, join(path, "pretax_credit_amounts"))
    else:
        amount -= _sum_amounts(opt_list(line, "discount_amounts", path), join(path, "discount_amounts"))
    taxes = opt_list(line, "taxes", path)
    tax = _sum_amounts(taxes, join(path, "taxes"))
    amount += _sum_amounts(taxes, join(path, "taxes"), _exclusive)

    price_id = product_id = interval = count = None
    price_meta: dict = {}
    one_time = False
    pricing = opt_dict(line, "pricing", path)
    if pricing is not None:
        ppath = join(path, "pricing")
        details = opt_dict(pricing, "price_details", ppath)
        if details is not None:
            dpath = join(ppath, "price_details")
            product_id = opt_id(details, "product", dpath)
            if isinstance(details.get("price"), dict):
                price_id, pid, price_meta, interval, count, one_time = _price_info(
                    details["price"], join(dpath, "price"))
                product_id = product_id or pid
            else:
                price_id = opt_id(details, "price", dpath)
    elif isinstance(line.get("price"), dict):  # pre-basil shape
        price_id, product_id, price_meta, interval, count, one_time = _price_info(line["price"], join(path, "price"))

    fields = _item_from_meta({**price_meta, **_metadata(line, path)}, path)
    # Without an expanded price the cycle is unknown (the catalog decides), never guessed.
    fields["billing"] = _billing_from(fields["billing"], interval, count, one_time)

    period = None
    pdict = opt_dict(line, "period", path)
    if pdict is not None:
        ppath = join(path, "period")
        start, end = opt_unix(pdict, "start", ppath), opt_unix(pdict, "end", ppath)
        if start is not None and end is not None:
            period = (start, end)

    parent = opt_dict(line, "parent", path) or {}
    parent_path = join(path, "parent")
    sub_details = opt_dict(parent, "subscription_item_details", parent_path)
    if sub_details is not None:
        is_sub = opt_bool(sub_details, "proration", join(parent_path, "subscription_item_details")) is not True
    else:
        is_sub = opt_str(line, "type", path) == "subscription" and opt_bool(line, "proration", path) is not True

    item = LineItem(
        provider_item_id=opt_str(line, "id", path),
        price_id=price_id,
        product_id=product_id,
        amount=amount,
        tax=tax,
        quantity=opt_int(line, "quantity", path) or 1,
        **fields,
    )
    return item, period, is_sub


def _invoice(ctx: _Ctx, inv: dict) -> list[NeutralEvent]:
    """invoice.paid / invoice.payment_succeeded.

    * ``purchase`` from ``billing_reason``: ``subscription_cycle`` -> renewal,
      ``subscription_create`` -> initial, anything else (update, manual, threshold...) -> None.
    * Period: the service period of the subscription lines (``lines.data[].period``). The
      invoice's own ``period_start/period_end`` is the window in which items were collected
      (for a renewal: the *previous* period; for a first invoice: zero length), so it is only
      the fallback when no line carries a period.
    * Order: ``parent.subscription_details.metadata.order_id`` (the subscription's metadata,
      snapshot at finalization), else the invoice's own ``metadata.order_id``.
    * An invoice paid with 0 (trial, fully credited) moved no money: Ignored.
    """
    invoice_id = req_str(inv, "id", OBJ)
    amount = req_amount(inv, "amount_paid", OBJ, nonneg=True)
    if amount == 0:
        return [ctx.ignored("invoice paid with amount 0: no money moved")]
    currency = req_currency(inv, "currency", OBJ)

    parent = opt_dict(inv, "parent", OBJ) or {}
    sub_details = opt_dict(parent, "subscription_details", join(OBJ, "parent")) or {}
    sd_path = join(OBJ, "parent.subscription_details")
    subscription_id = opt_id(sub_details, "subscription", sd_path) or opt_id(inv, "subscription", OBJ)
    order_ref = _order_ref(sub_details, sd_path) or _order_ref(inv, OBJ)

    total_taxes = inv.get("total_taxes")
    if total_taxes is not None:
        tax: Optional[int] = _sum_amounts(opt_list(inv, "total_taxes", OBJ), join(OBJ, "total_taxes"))
    else:
        tax = opt_amount(inv, "tax", OBJ)  # pre-basil

    transitions = opt_dict(inv, "status_transitions", OBJ) or {}
    paid_at = opt_unix(transitions, "paid_at", join(OBJ, "status_transitions")) or ctx.occurred_at

    items: list[LineItem] = []
    sub_periods: list[tuple[datetime, datetime]] = []
    any_periods: list[tuple[datetime, datetime]] = []
    lines = opt_stripe_list(inv, "lines", OBJ) or []
    for i, raw in enumerate(lines):
        item, period, is_sub = _invoice_line(raw, f"{OBJ}.lines.data[{i}]")
        items.append(item)
        if period is not None:
            any_periods.append(period)
            if is_sub:
                sub_periods.append(period)
    periods = sub_periods or any_periods
    if periods:
        period_start = min(p[0] for p in periods)
        period_end = max(p[1] for p in periods)
    else:
        period_start = opt_unix(inv, "period_start", OBJ)
        period_end = opt_unix(inv, "period_end", OBJ)

    # Payments are only in the payload when `payments` was expanded; pre-basil endpoints still
    # send top-level payment_intent/charge.
    pi_id = opt_id(inv, "payment_intent", OBJ)
    charge_id = opt_id(inv, "charge", OBJ)
    for i, raw in enumerate(opt_stripe_list(inv, "payments", OBJ) or []):
        ppath = f"{OBJ}.payments.data[{i}]"
        row = as_dict(raw, ppath)
        if opt_str(row, "status", ppath) not in (None, "paid"):
            continue
        payment = opt_dict(row, "payment", ppath) or {}
        pi_id = pi_id or opt_id(payment, "payment_intent", join(ppath, "payment"))
        charge_id = charge_id or opt_id(payment, "charge", join(ppath, "payment"))

    address = opt_dict(inv, "customer_address", OBJ)
    billing_reason = opt_str(inv, "billing_reason", OBJ)
    return [PaymentSucceeded(
        provider=STRIPE,
        occurred_at=ctx.occurred_at,
        amount=amount,
        currency=currency,
        paid_at=paid_at,
        order_ref=order_ref,
        customer_ref=opt_id(inv, "customer", OBJ),
        customer_email=opt_str(inv, "customer_email", OBJ),
        customer_country=opt_country(address, "country", join(OBJ, "customer_address")),
        tax=tax,
        purchase=_BILLING_REASON_PURCHASE.get(billing_reason or ""),
        period_start=period_start,
        period_end=period_end,
        charge_id=charge_id,
        payment_intent_id=pi_id,
        invoice_id=invoice_id,
        subscription_id=subscription_id,
        items=tuple(items),
    )]


# --- refunds ----------------------------------------------------------------------------------

_REFUND_STATUS = {
    "pending": "pending",
    "requires_action": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}


def _refund(occurred_at: datetime, refund: dict, path: str,
            charge_amount_refunded: Optional[int] = None,
            charge_id: Optional[str] = None, payment_intent_id: Optional[str] = None) -> RefundUpdated:
    raw_status = req_str(refund, "status", path)
    status = _REFUND_STATUS.get(raw_status)
    if status is None:
        raise PayloadError(join(path, "status"), f"unknown refund status {raw_status!r}")
    return RefundUpdated(
        provider=STRIPE,
        occurred_at=occurred_at,
        provider_refund_id=req_str(refund, "id", path),
        amount=req_amount(refund, "amount", path, nonneg=True),
        currency=req_currency(refund, "currency", path),
        status=status,
        charge_id=opt_id(refund, "charge", path) or charge_id,
        payment_intent_id=opt_id(refund, "payment_intent", path) or payment_intent_id,
        reason=opt_str(refund, "reason", path),
        failure_reason=opt_str(refund, "failure_reason", path),
        refund_request_id=opt_ref(_metadata(refund, path), "refund_request_id", join(path, "metadata")),
        charge_amount_refunded=charge_amount_refunded,
    )


def _refund_event(ctx: _Ctx, refund: dict) -> list[NeutralEvent]:
    """refund.created / refund.updated / refund.failed / charge.refund.updated.

    Status: pending and requires_action -> pending; succeeded, failed, canceled as they are.
    ``metadata.refund_request_id`` is the id we put on refunds we create.
    """
    return [_refund(ctx.occurred_at, refund, OBJ)]


def _charge_refunded(ctx: _Ctx, ch: dict) -> list[NeutralEvent]:
    """charge.refunded (full *and* partial refunds).

    With ``refunds.data`` in the payload (it is only there when expanded, since 2022-11-15):
    one RefundUpdated per refund with its own status. Without it: one RefundUpdated with
    ``provider_refund_id=None``, ``amount`` = ``charge_amount_refunded`` = the charge's running
    ``amount_refunded`` total and status ``succeeded`` (Stripe has applied it to the charge);
    the ``refund.*`` events carry the individual refunds and any later failure.
    """
    charge_id = req_str(ch, "id", OBJ)
    pi_id = opt_id(ch, "payment_intent", OBJ)
    currency = req_currency(ch, "currency", OBJ)
    amount_refunded = req_amount(ch, "amount_refunded", OBJ, nonneg=True)
    refunds = opt_stripe_list(ch, "refunds", OBJ)
    if refunds:
        return [
            _refund(ctx.occurred_at, as_dict(raw, f"{OBJ}.refunds.data[{i}]"), f"{OBJ}.refunds.data[{i}]",
                    amount_refunded, charge_id, pi_id)
            for i, raw in enumerate(refunds)
        ]
    return [RefundUpdated(
        provider=STRIPE,
        occurred_at=ctx.occurred_at,
        provider_refund_id=None,
        amount=amount_refunded,
        currency=currency,
        status="succeeded",
        charge_id=charge_id,
        payment_intent_id=pi_id,
        charge_amount_refunded=amount_refunded,
    )]


# --- disputes ---------------------------------------------------------------------------------

_DISPUTE_STATUS = {
    "warning_needs_response": "warning",
    "warning_under_review": "warning",
    "warning_closed": "won",          # an inquiry that closed without a chargeback: no money moved
    "needs_response": "open",
    "under_review": "open",
    "appeal_needs_response": "open",
    "appeal_under_review": "open",
    "won": "won",
    "lost": "lost",
    "prevented": "won",               # prevented before it became a chargeback
}


def _dispute(ctx: _Ctx, du: dict) -> list[NeutralEvent]:
    """charge.dispute.*: status mapped to ours (warning/open/won/lost).

    On ``funds_withdrawn`` / ``funds_reinstated`` the money moved is read from
    ``balance_transactions``: negative amounts are the withdrawal (their ``fee`` -> ``fee``, the
    dispute fee charged), positive ones the reinstatement (a negative ``fee`` there is a fee
    given back -> ``fee_reinstated``, positive). Balance transactions are in the account's
    settlement currency; when that differs from the dispute's currency the amount moved is the
    disputed amount and the fees are unknown (None), never converted. Other dispute events
    report no money (the snapshot may list balance transactions; the funds_* events are the
    ones that say money moved).
    """
    raw_status = req_str(du, "status", OBJ)
    status = _DISPUTE_STATUS.get(raw_status)
    if status is None:
        raise PayloadError(join(OBJ, "status"), f"unknown dispute status {raw_status!r}")
    amount = req_amount(du, "amount", OBJ, nonneg=True)
    currency = req_currency(du, "currency", OBJ)
    evidence = opt_dict(du, "evidence_details", OBJ) or {}
    due_by = opt_unix(evidence, "due_by", join(OBJ, "evidence_details"), zero_is_none=True)

    withdrawn = reinstated = fee = fee_back = None
    if ctx.event_type in ("charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated"):
        want_negative = ctx.event_type.endswith("funds_withdrawn")
        moved = fee_sum = 0
        found = False
        same_currency = True
        for i, raw in enumerate(opt_list(du, "balance_transactions", OBJ)):
            path = f"{OBJ}.balance_transactions[{i}]"
            bt = as_dict(raw, path)
            bt_amount = req_amount(bt, "amount", path)
            if (bt_amount < 0) != want_negative or bt_amount == 0:
                continue
            found = True
            moved += abs(bt_amount)
            fee_sum += req_amount(bt, "fee", path)
            same_currency = same_currency and req_currency(bt, "currency", path) == currency
        if not found:
            raise PayloadError(join(OBJ, "balance_transactions"),
                               f"no {'withdrawal' if want_negative else 'reinstatement'} transaction "
                               f"for {ctx.event_type}")
        if not same_currency:
            moved, fee_sum = amount, None
        if want_negative:
            withdrawn, fee = moved, fee_sum
        else:
            reinstated = moved
            if fee_sum is not None and fee_sum < 0:
                fee_back = -fee_sum

    return [DisputeUpdated(
        provider=STRIPE,
        occurred_at=ctx.occurred_at,
        provider_dispute_id=req_str(du, "id", OBJ),
        amount=amount,
        currency=currency,
        status=status,
        reason=opt_str(du, "reason", OBJ),
        charge_id=opt_id(du, "charge", OBJ),
        payment_intent_id=opt_id(du, "payment_intent", OBJ),
        evidence_due_by=due_by,
        funds_withdrawn=withdrawn,
        funds_reinstated=reinstated,
        fee=fee,
        provider_status=raw_status,
        fee_reinstated=fee_back,
    )]


# --- subscriptions ----------------------------------------------------------------------------

def _subscription_deleted(ctx: _Ctx, sub: dict) -> list[NeutralEvent]:
    """customer.subscription.deleted: the subscription ended.

    ``access_ends_at`` is the end of the current paid period: since basil it lives on the items
    (``items.data[].current_period_end``, the latest one wins), with the pre-basil top-level
    ``current_period_end`` as fallback. ``canceled_at`` falls back to ``ended_at``.
    """
    period_ends = []
    for i, raw in enumerate(opt_stripe_list(sub, "items", OBJ) or []):
        path = f"{OBJ}.items.data[{i}]"
        end = opt_unix(as_dict(raw, path), "current_period_end", path)
        if end is not None:
            period_ends.append(end)
    access_ends_at = max(period_ends) if period_ends else opt_unix(sub, "current_period_end", OBJ)
    return [SubscriptionCanceled(
        provider=STRIPE,
        occurred_at=ctx.occurred_at,
        subscription_id=req_str(sub, "id", OBJ),
        canceled_at=opt_unix(sub, "canceled_at", OBJ) or opt_unix(sub, "ended_at", OBJ),
        access_ends_at=access_ends_at,
        order_ref=_order_ref(sub, OBJ),
    )]


_Handler = Callable[[_Ctx, dict], list]

_HANDLERS: dict[str, tuple[str, _Handler]] = {
    "checkout.session.completed": ("checkout.session", _checkout_session),
    "checkout.session.async_payment_succeeded": ("checkout.session", _checkout_session),
    "payment_intent.succeeded": ("payment_intent", _payment_intent),
    "charge.succeeded": ("charge", _charge_payment),
    "charge.updated": ("charge", _charge_payment),
    "invoice.paid": ("invoice", _invoice),
    "invoice.payment_succeeded": ("invoice", _invoice),
    "charge.refunded": ("charge", _charge_refunded),
    "refund.created": ("refund", _refund_event),
    "refund.updated": ("refund", _refund_event),
    "refund.failed": ("refund", _refund_event),
    "charge.refund.updated": ("refund", _refund_event),
    "charge.dispute.created": ("dispute", _dispute),
    "charge.dispute.updated": ("dispute", _dispute),
    "charge.dispute.closed": ("dispute", _dispute),
    "charge.dispute.funds_withdrawn": ("dispute", _dispute),
    "charge.dispute.funds_reinstated": ("dispute", _dispute),
    "customer.subscription.deleted": ("subscription", _subscription_deleted),
}

HANDLED_TYPES = frozenset(_HANDLERS)
