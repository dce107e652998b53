"""Bearer-token authentication and scopes for ``/api/v1``."""
from __future__ import annotations

import functools

from flask import current_app, g, request

from bridge.ledger.tokens import find_token
from bridge.web.errors import ApiError

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="bridge"'}


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
                row = find_token(session, token.strip())
                scopes = set(row.scopes) if row else set()
                token_id = row.id if row else None
            if row is None:
                raise ApiError(401, "unauthorized", "the token is not valid", headers=_CHALLENGE)
            if scope not in scopes and "admin" not in scopes:
                raise ApiError(403, "forbidden", f"the token lacks the {scope!r} scope")
            g.token_id = token_id
            return view(*args, **kwargs)
        return inner
    return wrap
