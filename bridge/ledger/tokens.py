"""API tokens: random, shown once, stored only as a SHA-256 hash."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.ledger.models import ApiToken

SCOPES = ("orders:write", "refunds:write", "refunds:review", "read", "finance:read", "metrics", "admin")
PREFIX = "brg_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str, scopes: list[str], now: datetime) -> tuple[ApiToken, str]:
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise ValueError(f"unknown scope(s): {', '.join(bad)}; known: {', '.join(SCOPES)}")
    if not scopes:
        raise ValueError("at least one --scope is required")
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=hash_token(token), scopes=sorted(set(scopes)), created_at=now)
    session.add(row)
    session.flush()
    return row, token


def find_token(session: Session, token: str) -> Optional[ApiToken]:
    digest = hash_token(token)
    row = session.execute(select(ApiToken).where(ApiToken.token_hash == digest)).scalar_one_or_none()
    # The lookup is by hash; compare again in constant time so no code path compares plainly.
    if row is None or not hmac.compare_digest(row.token_hash, digest) or row.revoked_at is not None:
        return None
    return row
