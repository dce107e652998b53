"""Helpers for API tests: tokens with scopes."""
from __future__ import annotations

from bridge.ledger.tokens import create_token


def token(runtime, *scopes, name="test") -> str:
    with runtime.sessions.begin() as s:
        _, tok = create_token(s, name, list(scopes), runtime.clock())
    return tok


def auth(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}
