"""``PaddleProvider``: Paddle Billing's answers to what the bridge asks of a provider
(``base.Provider``).

Paddle specifics live here and nowhere above: a transaction's webhook carries its fee and
names itself (no follow-up fetch), one refund may await approval per transaction, a refund
adjustment has no idempotency key (a call that may have reached Paddle is resolved by listing
the transaction's adjustments and adopting ours), a refund is confirmed by listing them, and a
``chargeback_reverse`` gives back what a ``chargeback`` took.
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Optional, Sequence

from bridge.domain.events import PADDLE, ParsedEvent
from bridge.domain.follow_ups import FollowUp, FollowUpCause, PaymentFacts
from bridge.providers.base import Envelope, RefundCall, RefundRef
from bridge.providers.config import retry_policy, timeouts
from bridge.providers.outcomes import PermanentProviderError, RefundResult
from bridge.providers.paddle import events
from bridge.providers.paddle.signature import HEADER, verify_paddle
from bridge.providers.retry import RateLimiter


class PaddleProvider:
    name = PADDLE
    signature_header = HEADER
    one_pending_refund_per_payment = True

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
                from bridge.providers.paddle.api import PaddleApi  # the SDK loads here, lazily
                s = self._settings
                if not s.paddle_api_key:
                    raise RuntimeError("PADDLE_API_KEY is not set: cannot call Paddle")
                self._api = PaddleApi(s.paddle_api_key, environment=s.paddle_environment,
                                      base_url=s.paddle_api_base, retry=retry_policy(s),
                                      limiter=RateLimiter(s.paddle_calls_per_second), observe=self._observe,
                                      **timeouts(s))
            return self._api

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
            except ValueError:
                occurred = None  # the worker reports a malformed payload; intake keeps the bytes
        return Envelope(doc.get("event_id"), doc.get("event_type"), occurred)

    # -- the worker ---------------------------------------------------------------------------
    def parse(self, payload: dict) -> ParsedEvent:
        return events.parse(payload)

    def follow_ups(self, payment: PaymentFacts, *, after: FollowUpCause) -> Sequence[FollowUp]:
        return ()  # transaction.completed carries the fee and names the transaction itself

    def fetch_fee(self, payment: PaymentFacts) -> Optional[tuple[int, str]]:
        if not payment.transaction_id:
            return None
        return self.api.get_transaction_fee(payment.transaction_id)

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
