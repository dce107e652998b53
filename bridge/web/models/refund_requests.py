"""``/api/v1/refund-requests`` and ``/api/v1/refund-quotes``: the request body, the review
body, and the request as read back."""
from __future__ import annotations

from typing import Any, Literal, Optional

from bridge.services.models import RefundRequestCreate, ReviewIn  # noqa: F401 (this resource's bodies)
from bridge.web.models.common import Out, Query, Timestamp, limit_field
from bridge.web.models.policies import DecisionOut

STATUSES = ("approved", "denied", "review", "refunding", "refunded", "failed")
Status = Literal[STATUSES]  # type: ignore[valid-type]


class RefundRequestQuery(Query):
    status: Optional[Status] = None
    limit: int = limit_field()


class RequestRefundOut(Out):
    provider: str
    provider_refund_id: Optional[str] = None
    amount: int
    status: str


class RequestErrorOut(Out):
    code: Optional[str] = None
    detail: Optional[str] = None


class RefundRequestOut(Out):
    id: str
    order_id: Optional[str] = None
    status: Status
    reason: str
    items: list[str]
    requested_at: Timestamp
    decision: DecisionOut
    refunds: list[RequestRefundOut]
    created_at: Timestamp
    updated_at: Timestamp
    review: Optional[dict[str, Any]] = None
    error: Optional[RequestErrorOut] = None


class RefundRequestList(Out):
    refund_requests: list[RefundRequestOut]
