"""``StripeProvider``: Stripe's answers to what the bridge asks of a provider (``base.Provider``).

Stripe specifics live here and nowhere above: a fee is on the charge's balance transaction
(fetched when a webhook names only its id), an invoice since the basil API names no payment
(``/v1/invoice_payments`` links them), refunds carry ``Idempotency-Key: refund-<refund id>`` so
a call whose outcome is unknown is simply sent again, and a submitted refund is confirmed by
retrieving it.
"""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Optional, Sequence

from bridge.domain.events import STRIPE, ParsedEvent, PaymentSucceeded
from bridge.domain.follow_ups import FETCH_FEE, FETCH_PAYMENT, LINK_PAYMENT, FollowUp, FollowUpCause, PaymentFacts
from bridge.providers.base import BookPage, Envelope, RefundCall, RefundRef
from bridge.providers.config import retry_policy, timeouts
from bridge.providers.outcomes import RefundResult
from bridge.providers.retry import RateLimiter
from bridge.providers.stripe import books, events, payouts, thin
from bridge.providers.stripe.signature import HEADER, verify_stripe


class StripeProvider:
    name = STRIPE
    signature_header = HEADER
    one_pending_refund_per_payment = False
    events_window = timedelta(days=30)      # the Events list keeps 30 days
    object_kinds = books.OBJECT_KINDS

    def __init__(self, settings, api=None, observe=None):
        self._settings = settings
        self._api = api
        self._observe = observe
        self._lock = threading.Lock()

    @property
    def api(self):
        """The API client, built on first use: the web process never needs the SDK."""
        with self._lock:
            if self._api is None:
                from bridge.providers.stripe.api import StripeApi  # the SDK loads here, lazily
                s = self._settings
                if not s.stripe_api_key:
                    raise RuntimeError("STRIPE_API_KEY is not set: cannot call Stripe")
                self._api = StripeApi(s.stripe_api_key, base_url=s.stripe_api_base, retry=retry_policy(s),
                                      limiter=RateLimiter(s.stripe_calls_per_second), observe=self._observe,
                                      **timeouts(s))
            return self._api

    # -- intake -----------------------------------------------------------------------------
    @property
    def webhooks_configured(self) -> bool:
        return bool(self._settings.stripe_webhook_secrets)

    def verify(self, body: bytes, header: Optional[str], *, now: float) -> int:
        return verify_stripe(body, header, self._settings.stripe_webhook_secrets, now=now,
                             tolerance=self._settings.stripe_tolerance_seconds)

    def envelope(self, doc: dict) -> Envelope:
        if thin.is_thin(doc):  # a thin event's time is an RFC 3339 string
            return Envelope(doc.get("id"), doc.get("type"), thin.created_at(doc))
        created = doc.get("created")
        occurred = None
        if isinstance(created, int) and not isinstance(created, bool) and 0 < created < 2**40:
            occurred = datetime.fromtimestamp(created, timezone.utc)
        return Envelope(doc.get("id"), doc.get("type"), occurred)

    # -- the worker ---------------------------------------------------------------------------
    def expand(self, payload: dict) -> dict:
        # The client is built only when a thin event needs a fetch: a snapshot event needs no
        # API key (nor the SDK loaded).
        return thin.expand(payload, events.HANDLED_TYPES, lambda kind, object_id: self.api.retrieve(kind, object_id))

    def parse(self, payload: dict) -> ParsedEvent:
        return events.parse(payload)

    def follow_ups(self, payment: PaymentFacts, *, after: FollowUpCause) -> Sequence[FollowUp]:
        out = []
        if (after == "payment" and payment.invoice_id and not payment.payment_intent_id
                and not payment.charge_id):
            # Since basil an invoice names no charge: ask Stripe which payment paid it.
            out.append(FollowUp(LINK_PAYMENT, f"invoice:stripe:{payment.invoice_id}"))
        if after == "payment" and not payment.captured and payment.payment_intent_id:
            # Known from a Checkout Session or an invoice only: the merchant may subscribe to
            # nothing that carries the money, so ask for it rather than wait.
            out.append(FollowUp(FETCH_PAYMENT, f"payment:stripe:{payment.payment_intent_id}",
                                self._settings.payment_fetch_delay_seconds))
        if (payment.fee is None and payment.balance_transaction_id
                and (after == "fee_reported" or payment.charge_id)):
            # Webhooks name the balance transaction; its fee comes from the API.
            out.append(FollowUp(FETCH_FEE, f"fee:stripe:{payment.balance_transaction_id}"))
        return tuple(out)

    def fetch_fee(self, payment: PaymentFacts) -> Optional[tuple[int, str]]:
        if not payment.balance_transaction_id:
            return None
        return self.api.get_balance_transaction(payment.balance_transaction_id)

    def fetch_payment(self, payment: PaymentFacts, now: datetime) -> Optional[ParsedEvent]:
        """The PaymentIntent with its latest charge and balance transaction expanded, read as
        the ``payment_intent.succeeded`` it amounts to: a money event with the fee."""
        if not payment.payment_intent_id:
            return None
        pi = self.api.get_payment_intent(payment.payment_intent_id)
        doc = {"id": f"fetch:{payment.payment_intent_id}", "object": "event",
               "type": "payment_intent.succeeded", "created": int(now.timestamp()),
               "data": {"object": pi}}
        parsed = events.parse(doc)
        if not any(isinstance(e, PaymentSucceeded) for e in parsed.events):
            status = pi.get("status") if isinstance(pi, dict) else None
            raise LookupError(f"payment intent {payment.payment_intent_id} is {status!r}: no money taken yet")
        return parsed

    def link_payment(self, payment: PaymentFacts, now: datetime) -> Optional[ParsedEvent]:
        """A Stripe invoice (which carries the order and the renewal) and the charge that paid
        it (which carries the money) are one payment: the link is ``/v1/invoice_payments``."""
        if not payment.invoice_id:
            return None
        intents = self.api.invoice_payment_intents(payment.invoice_id)
        if not intents:
            raise LookupError(f"invoice {payment.invoice_id}: no paid invoice payment yet")
        link = PaymentSucceeded(provider=STRIPE, occurred_at=now, amount=None, currency=None,
                                paid_at=payment.paid_at or now, order_ref=payment.order_ref,
                                purchase=payment.purchase, invoice_id=payment.invoice_id,
                                payment_intent_id=intents[0], subscription_id=payment.subscription_id)
        return ParsedEvent(STRIPE, f"link:{payment.invoice_id}", "invoice_payments.list", now, (link,))

    def create_refund(self, call: RefundCall) -> RefundResult:
        # ``may_exist`` needs nothing more: the same Idempotency-Key makes Stripe replay the
        # first answer instead of refunding twice (within the key's 24 h lifetime).
        return self.api.create_refund(
            charge_id=call.charge_id, payment_intent_id=None if call.charge_id else call.payment_intent_id,
            amount=call.amount, reason=call.reason, metadata={"order_id": call.order_id},
            request_id=call.request_id, idempotency_key=f"refund-{call.refund_id}", currency=call.currency)

    def poll_refund(self, refund: RefundRef) -> Optional[RefundResult]:
        return self.api.get_refund(refund.provider_refund_id)

    @staticmethod
    def dispute_lost_before_won(provider_status: Optional[str]) -> bool:
        return False  # a won Stripe dispute gives back what was withdrawn: never lost before

    # -- the books (bridge sync) ------------------------------------------------------------
    @property
    def books_configured(self) -> bool:
        return bool(self._settings.stripe_api_key)

    def list_events(self, since: datetime, cursor: Optional[str]) -> BookPage:
        rows, has_more = self.api.list_page("events", books.events_params(since, cursor))
        return books.events_page(rows, has_more)

    def list_objects(self, kind: str, since: datetime, until: datetime,
                     cursor: Optional[str]) -> BookPage:
        rows, has_more = self.api.list_page(kind, books.objects_params(kind, since, until, cursor))
        return books.objects_page(kind, rows, has_more)

    # -- payouts ----------------------------------------------------------------------------
    def list_payouts(self, since: datetime, cursor: Optional[str]):
        rows, has_more = self.api.list_page("payouts", payouts.payouts_params(since, cursor))
        return tuple(payouts.payout_record(r) for r in rows), (rows[-1]["id"] if has_more and rows else None)

    def payout_lines(self, payout_id: str, cursor: Optional[str]):
        rows, has_more = self.api.list_page("balance_transactions", payouts.lines_params(payout_id, cursor))
        lines = tuple(line for line in (payouts.line_record(r) for r in rows) if line is not None)
        return lines, (rows[-1]["id"] if has_more and rows else None)
