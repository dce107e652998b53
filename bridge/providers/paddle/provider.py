"""``PaddleProvider``: Paddle Billing's answers to what the bridge asks of a provider
(``base.Provider``).

Paddle specifics live here and nowhere above: a transaction's webhook carries its fee and
names itself (no follow-up fetch), one refund may await approval per transaction, a refund
adjustment has no idempotency key (a call that may have reached Paddle is resolved by listing
the transaction's adjustments and adopting ours), a refund is confirmed by listing them, and a
``chargeback_reverse`` gives back what a ``chargeback`` took.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Optional, Sequence

from bridge.domain.events import PADDLE, ParsedEvent
from bridge.domain.follow_ups import FETCH_FEE, FollowUp, FollowUpCause, PaymentFacts
from bridge.providers.base import BookPage, Envelope, PayoutLinesNotReady, RefundCall, RefundRef
from bridge.providers.config import retry_policy, timeouts
from bridge.providers.lazy_api import LazyApi
from bridge.providers.outcomes import PermanentProviderError, RefundResult
from bridge.providers.paddle import books, events, payouts, reports
from bridge.providers.paddle.signature import HEADER, verify_paddle
from bridge.providers.retry import RateLimiter


# Polls of a pending payout reconciliation report within one sync or job run (the retry
# policy's backoff between them: about 20 s in all with the defaults).
REPORT_POLLS = 6


class PaddleProvider(LazyApi):
    name = PADDLE
    signature_header = HEADER
    one_pending_refund_per_payment = True
    events_window = timedelta(days=90)      # events and notifications are kept 90 days
    object_kinds = books.OBJECT_KINDS

    def _build_api(self):
        from bridge.providers.paddle.api import PaddleApi  # the SDK loads here, lazily
        s = self._settings
        if not s.paddle_api_key:
            raise RuntimeError("PADDLE_API_KEY is not set: cannot call Paddle")
        return PaddleApi(s.paddle_api_key, environment=s.paddle_environment,
                         base_url=s.paddle_api_base, retry=retry_policy(s),
                         limiter=RateLimiter(s.paddle_calls_per_second), observe=self._observe,
                         **timeouts(s))

    # -- intake -----------------------------------------------------------------------------
    @property
    def webhooks_configured(self) -> bool:
        return bool(self._settings.paddle_webhook_secrets)

    def verify(self, body: bytes, header: Optional[str], *, now: float) -> int:
        return verify_paddle(body, header, self._settings.paddle_webhook_secrets, now=now,
                             tolerance=self._settings.paddle_tolerance_seconds)

    def envelope(self, doc: dict) -> Envelope:
        occurred = None
        raw = doc.get("occurred_at")
        if isinstance(raw, str):
            try:
                occurred = datetime.fromisoformat(raw.replace("Z", "+00:00"))
                if occurred.tzinfo is None:
                    occurred = occurred.replace(tzinfo=timezone.utc)
                # 9999-12-31T23:59:59-05:00 is in year 10000 in UTC: no UTC form (OverflowError
                # when stored, a 500 that Paddle retried for days). Kept unset, like a bad one.
                occurred = occurred.astimezone(timezone.utc)
            except (ValueError, OverflowError):
                occurred = None  # the worker reports a malformed payload; intake keeps the bytes
        return Envelope(doc.get("event_id"), doc.get("event_type"), occurred)

    # -- the worker ---------------------------------------------------------------------------
    def expand(self, payload: dict) -> dict:
        return payload  # every Paddle notification carries its entity

    def parse(self, payload: dict) -> ParsedEvent:
        return events.parse(payload)

    def follow_ups(self, payment: PaymentFacts, *, after: FollowUpCause) -> Sequence[FollowUp]:
        # transaction.completed carries the fee; a merchant subscribed to transaction.paid only
        # would never learn it: asked for after a while (completed usually comes first).
        if after == "payment" and payment.fee is None and payment.transaction_id:
            return (FollowUp(FETCH_FEE, f"fee:paddle:{payment.transaction_id}",
                             self._settings.payment_fetch_delay_seconds),)
        return ()

    def fetch_fee(self, payment: PaymentFacts) -> Optional[tuple[int, str]]:
        if not payment.transaction_id:
            return None
        return self.api.get_transaction_fee(payment.transaction_id)

    def fetch_payment(self, payment: PaymentFacts, now: datetime) -> Optional[ParsedEvent]:
        return None  # a Paddle transaction event is the money itself

    def link_payment(self, payment: PaymentFacts, now: datetime) -> Optional[ParsedEvent]:
        return None  # a Paddle transaction is the payment: there is nothing to link

    def create_refund(self, call: RefundCall) -> RefundResult:
        items = None if call.full_transaction else [(p["provider_item_id"], p["amount"]) for p in call.items]
        if items is not None and any(i is None for i, _ in items):
            raise PermanentProviderError("no_line_items", "the Paddle transaction's line item ids are not known")
        # No idempotency key at Paddle: when the call may have been made, look for ours first.
        return self.api.create_refund(
            transaction_id=call.transaction_id, request_id=call.request_id,
            reason=f"Refund request {call.request_id}: {call.reason}", items=items,
            reconcile_first=call.may_exist)

    def poll_refund(self, refund: RefundRef) -> Optional[RefundResult]:
        return next((r for r in self.api.list_refund_adjustments(refund.transaction_id)
                     if r.provider_refund_id == refund.provider_refund_id), None)

    @staticmethod
    def dispute_lost_before_won(provider_status: Optional[str]) -> bool:
        return provider_status == "chargeback_reverse"

    # -- the books (bridge sync) ------------------------------------------------------------
    @property
    def books_configured(self) -> bool:
        return bool(self._settings.paddle_api_key)

    def list_events(self, since: datetime, cursor: Optional[str]) -> BookPage:
        rows, next_url, has_more, total = self.api.list_page(*books.events_request(cursor))
        return books.events_page(rows, next_url, has_more, total, since)

    def list_objects(self, kind: str, since: datetime, until: datetime,
                     cursor: Optional[str]) -> BookPage:
        rows, next_url, has_more, total = self.api.list_page(
            *books.objects_request(kind, since, until, cursor))
        return books.objects_page(kind, rows, next_url, has_more, total, since, until)

    # -- payouts (from payout.* notifications; no payout API) ---------------------------------
    def list_payouts(self, since: datetime, cursor: Optional[str]):
        rows, next_url, has_more, _ = self.api.list_page(*payouts.payouts_request(cursor))
        return payouts.payout_records(rows, since), (next_url if has_more else None)

    def payout_lines(self, payout, cursor: Optional[str]):
        """The payout's movements from its payout reconciliation report (reports.py), all in
        one page: the report is found or asked for, polled a few times while pending (a report
        still pending after that raises ``PayoutLinesNotReady``: the next sync or job run goes
        on with the same report), then its CSV fetched through a fresh short-lived link."""
        if not payout.reference:
            raise PayoutLinesNotReady(f"payout {payout.payout_id} has no remittance reference")
        report_id, status = self.api.open_payout_report(payout.reference)
        if status == "pending":
            status = self.api.wait_for_report(report_id, polls=REPORT_POLLS)
        if status != "ready":
            # failed or expired: not listed as pending or ready next time, so a new one is made
            raise PayoutLinesNotReady(f"report {report_id} is {status}")
        text = self.api.download_report(report_id)
        try:
            return reports.payout_lines(text, payout.currency), None
        except reports.ReportUnreadable as err:
            raise PermanentProviderError("report_unreadable", f"report {report_id}: {err}") from None
