"""``/api/v1/licenses`` and ``/api/v1/disputes``: queries and list answers."""
from __future__ import annotations

from typing import Literal, Optional

from bridge.domain.fields import Id
from bridge.web.models.common import Out, Query, limit_field
from bridge.web.models.orders import DisputeOut, LicenseOut

DISPUTE_FILTERS = ("open", "closed", "warning", "won", "lost")


class LicenseQuery(Query):
    order_id: Id


class LicenseList(Out):
    order_id: str
    licenses: list[LicenseOut]


class DisputeQuery(Query):
    status: Optional[Literal[DISPUTE_FILTERS]] = None  # type: ignore[valid-type]
    limit: int = limit_field()


class DisputeList(Out):
    disputes: list[DisputeOut]
