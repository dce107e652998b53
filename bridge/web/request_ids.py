"""A request id for every request Flask handles: the caller's ``X-Request-ID`` when it is a
plain token (a gateway's), else a new one; sent back in ``X-Request-ID`` and carried by every
log record written while the request runs (``request_id``)."""
from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

from bridge.logs import pop_context, push_context

_SAFE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def init_app(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_answer)
    app.teardown_request(_end)


def _start() -> None:
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _SAFE.match(given) else uuid.uuid4().hex
    g.log_token = push_context(request_id=g.request_id)


def _answer(response: Response) -> Response:
    if "request_id" in g:
        response.headers["X-Request-ID"] = g.request_id
    return response


def _end(_exc) -> None:
    token = g.pop("log_token", None)
    if token is not None:
        pop_context(token)
