"""``GET /openapi.json`` (OpenAPI 3.1) generated from the ``/api/v1`` views' own models, and
``GET /docs``, which renders it with the Swagger UI files of the ``flask-swagger-ui`` package
(served by the bridge itself: no CDN, works offline and behind a strict CSP).

Each view declares its models with ``bridge.web.contract.operation`` and its scope with
``bridge.web.auth.require``; :func:`undocumented` lists the ``/api/v1`` routes that lack one
(a test keeps it empty).
"""
from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Iterable, Optional

from flask import Blueprint, Flask, current_app, jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from bridge.domain.fields import PRINTABLE_NONBLANK
from bridge.ledger.tokens import SCOPES
from bridge.web.contract import Operation
from bridge.web.models.common import ErrorBody

bp = Blueprint("openapi", __name__)

PREFIX = "/api/v1/"
REF = "#/components/schemas/{model}"
_ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": PRINTABLE_NONBLANK}
_ERRORS = {
    400: "The body is not JSON (invalid UTF-8, NaN or Infinity, too deeply nested), or a header is malformed",
    401: "No bearer token, a token that is not valid, or a token in the query string",
    403: "The token lacks the operation's scope",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflicts with the stored state (named in the message)",
    413: "The body exceeds the size limit (1 MiB by default)",
    415: "The body is not application/json",
    422: "A value that does not validate; `error.field` names it by its path",
    429: "Too many failed authentications from this address; see Retry-After",
    503: "The database cannot be reached; retry after Retry-After",
}


def _operations(app: Flask) -> Iterable[tuple[Any, str, Any, Optional[Operation], Optional[str]]]:
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, sorted(r.methods or ()))):
        if not rule.rule.startswith(PREFIX):
            continue
        view = app.view_functions[rule.endpoint]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule, method, view, getattr(view, "api_operation", None), getattr(view, "required_scope", None)


def undocumented(app: Flask) -> list[str]:
    """``METHOD /path`` of every ``/api/v1`` route without models or without a scope."""
    return [f"{m} {r.rule}" for r, m, _, op, scope in _operations(app) if op is None or scope is None]


def _path(rule) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)


def _models(ops: list[Operation]) -> list[type[BaseModel]]:
    seen: dict[type[BaseModel], None] = {ErrorBody: None}
    for op in ops:
        for m in (op.body, *op.responses.values()):
            if isinstance(m, type) and issubclass(m, BaseModel):
                seen.setdefault(m)
    return list(seen)


def _query_parameters(model: type[BaseModel], defs: dict) -> list[dict]:
    schema = model.model_json_schema(ref_template=REF, by_alias=True)
    defs.update(schema.pop("$defs", {}))
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = _no_null(dict(prop))
        description = prop.pop("description", None)
        prop.pop("title", None)
        param = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            param["description"] = description
        out.append(param)
    return out


def _no_null(prop: dict) -> dict:
    """A query string cannot say null: an optional parameter is one that is left out."""
    branches = prop.get("anyOf")
    if branches and any(b.get("type") == "null" for b in branches):
        rest = [b for b in branches if b.get("type") != "null"]
        prop.pop("anyOf")
        if len(rest) == 1:
            prop.update(rest[0])
        else:
            prop["anyOf"] = rest
    if prop.get("default", 0) is None:
        prop.pop("default")
    return prop


def _error(status: int, headers: Optional[dict] = None) -> dict:
    out: dict[str, Any] = {"description": _ERRORS.get(status, "Error"),
                           "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}}}
    if headers:
        out["headers"] = headers
    return out


def document(app: Flask) -> dict:
    """The OpenAPI 3.1 document of every documented ``/api/v1`` operation."""
    entries = [e for e in _operations(app) if e[3] is not None and e[4] is not None]
    ops = [e[3] for e in entries]
    models = _models(ops)
    keys, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    paths: dict[str, dict] = {}
    for rule, method, view, op, scope in entries:
        # Docstrings are reStructuredText-ish; the document is Markdown: ``x`` -> `x`. The first
        # paragraph is the summary, the rest the description.
        doc = (view.__doc__ or "").strip().replace("``", "`")
        first, _, rest = doc.partition("\n\n")
        summary = " ".join(line.strip() for line in first.splitlines())
        params: list[dict] = [{"name": arg, "in": "path", "required": True, "schema": dict(_ID_SCHEMA),
                               **({"description": op.path_descriptions[arg]} if arg in op.path_descriptions else {})}
                              for arg in sorted(rule.arguments)]
        if op.query is not None:
            params += _query_parameters(op.query, schemas)
        for header, description in op.headers.items():
            params.append({"name": header, "in": "header", "required": False, "description": description,
                           "schema": {"type": "string", "minLength": 1, "maxLength": 255}})
        responses: dict[str, Any] = {}
        for status, model in sorted(op.responses.items()):
            ref = keys[(model, "validation")]
            content: dict[str, Any] = {"application/json": {"schema": ref}}
            if op.csv and status == 200:
                content["text/csv"] = {"schema": {"type": "string"}}
            responses[str(status)] = {"description": (model.__doc__ or model.__name__).strip().splitlines()[0],
                                      "content": content}
            if status in op.links:
                responses[str(status)]["links"] = {
                    name: {"operationId": target, "parameters": params_}
                    for name, (target, params_) in op.links[status].items()}
        errors = {401, 403, 405, 422, 429, 503, *op.errors}
        if op.body is not None:
            errors |= {400, 413, 415}
        if op.headers:
            errors.add(400)
        challenge = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        retry = {"Retry-After": {"schema": {"type": "string"}}}
        for status in sorted(errors):
            responses[str(status)] = _error(status, challenge if status == 401 else retry if status in (429, 503) else None)
        operation: dict[str, Any] = {
            "operationId": rule.endpoint.split(".")[-1],
            "summary": summary.rstrip("."),
            "description": (rest.strip() + "\n\n" if rest.strip() else "")
            + f"Scope: `{scope}` (or `admin`).",
            "tags": list(op.tags),
            "security": [{"bearerAuth": [scope]}],
            "x-required-scope": scope,
            "parameters": params,
            "responses": responses,
        }
        if op.body is not None:
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": keys[(op.body, "validation")]}}}
        paths.setdefault(_path(rule), {})[method.lower()] = operation
    _this_deployment(app, schemas, paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "the bridge",
            "version": _version(),
            "description": "Orders, refund requests and their decisions, licenses, disputes and finance "
                           "between a software company and Stripe / Paddle Billing. Money is integer minor "
                           "units with an ISO 4217 `currency`; times are ISO 8601 UTC. Every error is "
                           "`{\"error\": {\"code\", \"message\", \"field\"?}}`.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "A token from `bridge tokens create NAME --scope S [--scope S2 ...]`. "
                               "Scopes: " + ", ".join(f"`{s}`" for s in SCOPES) + " (`admin` has all). "
                               "Each operation names the scope it needs."}},
        },
        "security": [{"bearerAuth": []}],
    }


def _this_deployment(app: Flask, schemas: dict, paths: dict) -> None:
    """Name the loaded policies and their categories as enums: a client (and a generated test)
    then knows which values this bridge accepts, not only their shape."""
    rt = app.extensions.get("bridge")
    policies = getattr(rt, "policies", None)
    if policies is None or not len(policies):
        return
    from bridge.policy.input_models import reason_list
    ids = policies.ids()
    categories = sorted({c for p in policies for c in p.categories})
    reasons = sorted({r for pid in ids for r in reason_list(policies, pid)})
    for schema_name in ("RefundRequestCreate", "EvaluationRequest"):
        prop = schemas.get(schema_name, {}).get("properties", {}).get("reason")
        if prop is not None:
            prop["enum"] = reasons
    for schema_name, field, values in (("OrderCreate", "policy", ids), ("OrderItemIn", "category", categories),
                                       ("PaidItem", "category", categories)):
        prop = schemas.get(schema_name, {}).get("properties", {}).get(field)
        if prop is not None:
            prop["enum"] = values
    providers = sorted(getattr(rt, "providers", None) or ())
    for path, ops in paths.items():
        for op in ops.values():
            for param in op.get("parameters", ()):
                if param["in"] == "path" and param["name"] == "policy_id":
                    param["schema"]["enum"] = ids
                elif param["in"] == "query" and param["name"] == "provider" and providers:
                    param["schema"]["enum"] = providers


def _version() -> str:
    try:
        return version("bridge")
    except PackageNotFoundError:  # pragma: no cover - running from a checkout without install
        return "0"


@bp.get("/openapi.json")
def openapi_json():
    app = current_app._get_current_object()
    doc = app.extensions.get("bridge.openapi")
    if doc is None:   # built once per process: the routes do not change after start-up
        doc = app.extensions["bridge.openapi"] = document(app)
    return jsonify(doc)


def docs_blueprint() -> Blueprint:
    """``/docs``: Swagger UI from the files packaged in ``flask-swagger-ui``."""
    from flask_swagger_ui import get_swaggerui_blueprint
    return get_swaggerui_blueprint("/docs", "/openapi.json", blueprint_name="docs",
                                   config={"app_name": "the bridge API", "persistAuthorization": False})
