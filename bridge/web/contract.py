"""The ``/api/v1`` contract in code: each view declares its request, query, path and response
models with :func:`operation`, which validates what comes in (a 4xx naming the field by its
path) and records the declaration for the OpenAPI document (``openapi.py``).

Reading a body: 415 unless ``application/json``; 413 above ``MAX_CONTENT_LENGTH``; 400 for bytes
that are not JSON (invalid UTF-8, ``NaN``/``Infinity``, nesting too deep, a number too long);
422 for JSON of the wrong shape.
"""
from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from flask import current_app, jsonify, request
from pydantic import BaseModel, TypeAdapter, ValidationError

from bridge.domain.fields import Id, first_error
from bridge.web.errors import ApiError

log = logging.getLogger("bridge.web.contract")

_ID = TypeAdapter(Id)


@dataclass(frozen=True)
class Operation:
    """What the OpenAPI document says about one view."""
    responses: dict[int, Any]                 # status -> response model (or None: no body)
    body: Optional[type[BaseModel]] = None
    query: Optional[type[BaseModel]] = None
    headers: dict[str, str] = field(default_factory=dict)   # request header -> description
    errors: tuple[int, ...] = ()              # error statuses besides the common ones
    tags: tuple[str, ...] = ()
    csv: bool = False                         # also answers text/csv
    path_descriptions: dict[str, str] = field(default_factory=dict)
    # status -> {link name: (operationId, {parameter: runtime expression})}: what a client (or
    # schemathesis' stateful run) can call next with values from this answer.
    links: dict[int, dict[str, tuple[str, dict[str, str]]]] = field(default_factory=dict)


def operation(*, responses: dict[int, Any], body: Optional[type[BaseModel]] = None,
              query: Optional[type[BaseModel]] = None, headers: Optional[dict[str, str]] = None,
              errors: tuple[int, ...] = (), tags: tuple[str, ...] = (), csv: bool = False,
              paths: Optional[dict[str, str]] = None,
              links: Optional[dict[int, dict[str, tuple[str, dict[str, str]]]]] = None):
    """Decorator (inside ``@require``): validates path ids, the query and the body, and passes
    the validated models to the view as ``body=`` and ``query=``."""
    op = Operation(responses=responses, body=body, query=query, headers=headers or {},
                   errors=tuple(errors), tags=tuple(tags), csv=csv, path_descriptions=paths or {},
                   links=links or {})

    def wrap(view: Callable):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            for name, value in kwargs.items():
                _check_path_id(name, value)
            if query is not None:
                kwargs["query"] = validate(query, request.args.to_dict(flat=True))
            if body is not None:
                kwargs["body"] = validate(body, json_body())
            return view(*args, **kwargs)
        inner.api_operation = op
        return inner
    return wrap


def _check_path_id(name: str, value: Any) -> None:
    try:
        _ID.validate_python(value)
    except ValidationError as err:
        _, message = first_error(err)
        raise ApiError(422, "invalid_field", f"{name}: {message}", field=name) from None


def validate(model: type[BaseModel], data: Any, prefix: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        path, message = first_error(err, prefix)
        raise ApiError(422, "invalid_field", f"{path}: {message}", field=path) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_body() -> Any:
    """The request's JSON document (an object: anything else is a 422)."""
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "the body must be application/json", field="Content-Type")
    raw = request.get_data(cache=True)   # over MAX_CONTENT_LENGTH: werkzeug raises 413 here
    try:
        doc = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise ApiError(400, "invalid_json", "the body is nested too deeply", field="body") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, NaN, a 5000-digit number
        raise ApiError(400, "invalid_json", f"the body is not valid JSON ({_reason(err)})", field="body") from None
    if not isinstance(doc, dict):
        raise ApiError(422, "invalid_body", "the body must be a JSON object", field="body")
    return doc


def _reason(err: ValueError) -> str:
    if isinstance(err, json.JSONDecodeError):
        return f"{err.msg} at position {err.pos}"
    if isinstance(err, UnicodeDecodeError):
        return "not UTF-8"
    return str(err)[:100]


def respond(model: Any, data: Any, status: int = 200):
    """``data`` as JSON, checked against its response model: a mismatch is a bug of ours. With
    ``BRIDGE_STRICT_RESPONSES`` (the tests) it fails the request; in production it is logged
    and the answer still goes out (the client should not pay for our documentation's drift)."""
    if model is not None:
        try:
            TypeAdapter(model).validate_python(data) if not _is_model(model) else model.model_validate(data)
        except ValidationError as err:
            path, message = first_error(err)
            if current_app.config.get("BRIDGE_STRICT_RESPONSES"):
                raise RuntimeError(f"response does not match {getattr(model, '__name__', model)}: "
                                   f"{path}: {message}") from None
            log.error("response does not match its model %s: %s: %s",
                      getattr(model, "__name__", model), path, message)
    return jsonify(data), status


def _is_model(model: Any) -> bool:
    return isinstance(model, type) and issubclass(model, BaseModel)
