"""The published contract: ``/openapi.json`` is a valid OpenAPI 3.1 document covering every
``/api/v1`` operation with its scope, and ``/docs`` renders it from files the bridge serves."""
from __future__ import annotations

import re

from flask import Blueprint, jsonify
from openapi_spec_validator import validate

from bridge.web.openapi import document, undocumented


def test_every_api_route_has_models_and_a_scope(app):
    assert undocumented(app) == []
    doc = document(app)
    served = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    routes = {(m, re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", r.rule))
              for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1/")
              for m in r.methods - {"HEAD", "OPTIONS"}}
    assert served == routes


def test_a_route_without_models_is_reported(app):
    from bridge.web.auth import require
    extra = Blueprint("extra", __name__, url_prefix="/api/v1")

    @extra.get("/shiny")
    @require("read")
    def shiny():
        return jsonify({})

    app.register_blueprint(extra)
    assert undocumented(app) == ["GET /api/v1/shiny"]


def test_the_served_document_validates(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    doc = r.json
    validate(doc)   # openapi-spec-validator: raises on an invalid document
    assert doc["openapi"].startswith("3.1")
    order = doc["paths"]["/api/v1/orders"]["post"]
    assert order["security"] == [{"bearerAuth": ["orders:write"]}]
    assert order["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OrderCreate"}
    assert {"201", "200", "401", "403", "409", "413", "415", "422"} <= set(order["responses"])
    assert doc["paths"]["/api/v1/reconciliation"]["get"]["security"] == [{"bearerAuth": ["finance:read"]}]
    review = doc["paths"]["/api/v1/refund-requests/{rr_id}/review"]["post"]
    assert review["x-required-scope"] == "refunds:review" and "409" in review["responses"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["security"][0]["bearerAuth"], (method, path)
            assert "422" in op["responses"] and "401" in op["responses"], (method, path)
    # Facts and reasons come from the engine's vocabulary: what the engine knows is documented.
    from bridge.policy.vocab import FACT_TYPES, REASONS
    request = doc["components"]["schemas"]["RefundRequestCreate"]["properties"]
    facts = next(b for b in request["facts"]["anyOf"] if b.get("type") == "object")
    assert set(facts["properties"]) == set(FACT_TYPES)
    assert set(REASONS) <= set(request["reason"]["enum"])


def test_docs_are_rendered_from_local_assets(client):
    page = client.get("/docs/")
    assert page.status_code == 200 and b"swagger-ui" in page.data
    html = page.data.decode()
    assert "/openapi.json" in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and not any(s.startswith(("http:", "https:", "//")) for s in sources), sources
    for src in sources:
        asset = client.get(src)
        assert asset.status_code == 200 and len(asset.data) > 100, src
    assert client.get("/docs").status_code in (200, 301, 308)
