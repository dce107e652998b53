"""Who may call ``/api/v1``: bearer tokens, scopes, and the per-client-IP throttle on failed
authentication (401s), which answers 429 before any token is looked at."""
from __future__ import annotations

import functools
import logging
import math
from datetime import timedelta

from flask import Flask, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError

from bridge.ledger.tokens import find_token
from bridge.web import audit
from bridge.web.errors import ApiError, error_response

log = logging.getLogger("bridge.web.auth")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="bridge"'}


def init_app(app: Flask) -> None:
    app.before_request(_throttle_failures)


def require(scope: str):
    """Decorator: 401 without a valid bearer token, 403 when it lacks ``scope`` (or admin)."""
    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            if "access_token" in request.args or "token" in request.args:
                # Tokens in URLs end up in access logs: refuse them outright.
                raise ApiError(401, "token_in_query", "send the token in the Authorization header",
                               headers=_CHALLENGE)
            kind, _, token = header.partition(" ")
            if kind.lower() != "bearer" or not token.strip():
                raise ApiError(401, "unauthorized", "a bearer token is required", headers=_CHALLENGE)
            rt = current_app.extensions["bridge"]
            with rt.reads() as session:
                # Not timing-sensitive: the token is looked up by its SHA-256 hash (an attacker
                # cannot steer the hash a byte at a time), and find_token compares the stored
                # hash again with hmac.compare_digest, so no path compares secrets plainly.
                row = find_token(session, token.strip())
                scopes = set(row.scopes) if row else set()
                token_id = row.id if row else None
            if row is None:
                raise ApiError(401, "unauthorized", "the token is not valid", headers=_CHALLENGE)
            g.token_id = token_id  # also on a 403: the audit row names the token that tried
            if scope not in scopes and "admin" not in scopes:
                raise ApiError(403, "forbidden", f"the token lacks the {scope!r} scope")
            return view(*args, **kwargs)
        inner.required_scope = scope  # read by the audit, which records it even for a 429
        return inner
    return wrap


def _throttle_failures():
    """Before any ``/api/v1`` view: 429 once the client IP has ``auth_failure_limit`` 401s in
    the window. Counted from audit rows, so every gunicorn worker sees the same count."""
    if not audit.is_api_request():
        return None
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
        # Fail open: with the database unreachable the token lookup fails as well (503), so
        # nothing gets in, and the answer is the one the API gives without the throttle.
        log.warning("auth failure count unavailable: %s", type(err).__name__)
        return None
    if len(failures) < limit:
        return None
    # The window frees (drops below the limit) when the oldest of these ``limit`` failures
    # leaves it.
    retry = max(1, math.ceil((failures[-1] + window - now).total_seconds()))
    return error_response(429, "too_many_auth_failures",
                          f"too many failed authentications from this address; retry in {retry} s",
                          headers={"Retry-After": str(retry)})
