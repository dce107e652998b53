"""Models of the bodies the services validate themselves (so every caller, the API or the
console, gets the same checks): a refund request and a review. The web layer documents and
pre-validates with the same classes (``bridge/web/models/refund_requests.py``)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from bridge.domain.fields import Id, Note, PositiveMoney
from bridge.policy.input_models import RefundRequestFields


class RefundRequestCreate(RefundRequestFields):
    """``POST /api/v1/refund-requests``: decided at once by the order's policy."""
    order_id: Id


class ReviewIn(BaseModel):
    """``POST /api/v1/refund-requests/{id}/review`` for a request in ``review``."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    outcome: Literal["approved", "denied"]
    refund_amount: Optional[PositiveMoney] = Field(
        default=None, description="minor units; default: all that remains on the request's items")
    note: Optional[Note] = None
