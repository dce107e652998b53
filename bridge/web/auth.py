"""Who may call ``/api/v1`` (and ``/metrics``): bearer tokens, scopes, and the per-client-IP
throttle on failed authentication. Only failures are throttled: a request whose token is
valid always passes, so a neighbour behind the same address (or an attacker guessing from
it) cannot lock the merchant's app out; a failure from an address with ``auth_failure_limit``
recent failures is answered 429 instead of 401."""
from __future__ import annotations

import functools
import logging
import math
from datetime import timedelta
from typing import Optional

from flask import current_app, g, request
from sqlalchemy.exc import SQLAlchemyError

from bridge.ledger.tokens import find_token
from bridge.web import audit
from bridge.web.errors import ApiError

log = logging.getLogger("bridge.web.auth")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="bridge"'}


def require(scope: str):
    """Decorator: 401 without a valid bearer token, 403 when it lacks ``scope`` (or admin)."""
    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            if "access_token" in request.args or "token" in request.args:
                # Tokens in URLs end up in access logs: refuse them outright.
                _fail("token_in_query", "send the token in the Authorization header")
            kind, _, token = header.partition(" ")
            if kind.lower() != "bearer" or not token.strip():
                _fail("unauthorized", "a bearer token is required")
            rt = current_app.extensions["bridge"]
            with rt.reads() as session:
                # Not timing-sensitive: the token is looked up by its SHA-256 hash (an attacker
                # cannot steer the hash a byte at a time), and find_token compares the stored
                # hash again with hmac.compare_digest, so no path compares secrets plainly.
                row = find_token(session, token.strip())
                scopes = set(row.scopes) if row else set()
                token_id = row.id if row else None
            if row is None:
                _fail("unauthorized", "the token is not valid")
            g.token_id = token_id  # also on a 403: the audit row names the token that tried
            if scope not in scopes and "admin" not in scopes:
                raise ApiError(403, "forbidden", f"the token lacks the {scope!r} scope")
            return view(*args, **kwargs)
        inner.required_scope = scope  # read by the audit, which records it even for a 429
        return inner
    return wrap


def _fail(code: str, message: str) -> None:
    """Refuse an authentication: 401, or 429 once the client IP has ``auth_failure_limit``
    401s in the window. Counted from audit rows, so every gunicorn worker sees the same count."""
    retry = _throttled_for()
    if retry is not None:
        raise ApiError(429, "too_many_auth_failures",
                       f"too many failed authentications from this address; retry in {retry} s",
                       headers={"Retry-After": str(retry)})
    raise ApiError(401, code, message, headers=_CHALLENGE)


def _throttled_for() -> Optional[int]:
    """Seconds until the client IP may fail again, or None when it is under the limit."""
    rt = current_app.extensions["bridge"]
    limit = rt.settings.auth_failure_limit
    window = timedelta(seconds=rt.settings.auth_failure_window_seconds)
    if limit <= 0 or window <= timedelta(0):
        return None
    now = rt.clock()
    try:
        with rt.reads() as session:
            failures = audit.recent_failures(session, audit.client_ip(), now - window, limit)
    except SQLAlchemyError as err:
        # Fail open: the answer is the 401 the API gives without the throttle.
        log.warning("auth failure count unavailable: %s", type(err).__name__)
        return None
    if len(failures) < limit:
        return None
    # The window frees (drops below the limit) when the oldest of these ``limit`` failures
    # leaves it.
    return max(1, math.ceil((failures[-1] + window - now).total_seconds()))
