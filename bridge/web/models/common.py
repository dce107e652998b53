"""Models every resource shares: the error body, response bases, list queries."""
from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

# Times in answers: ISO 8601 UTC with Z, as ``bridge.ledger.views.iso`` writes them.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time",
                                           "examples": ["2026-03-01T10:00:00Z"]})]


class Out(BaseModel):
    """A response body: the fields listed are promised; a later version may add more."""
    model_config = ConfigDict(extra="allow")


class Query(BaseModel):
    """Query parameters: an unknown one is a 422 (``?stauts=review`` must not list everything)."""
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_field"])
    message: str = Field(examples=["items[0].amount: expected an integer, got a number (49.5)"])
    field: Optional[str] = Field(default=None, description="path of the offending value in the request",
                                 examples=["items[0].amount"])


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer."""
    error: ErrorDetail


def limit_field() -> Any:
    return Field(default=100, ge=1, le=500, description="at most this many rows (1-500)")
