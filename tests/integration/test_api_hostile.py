"""Hostile input on ``/api/v1`` (issue 11): times that leave years 1-9999 in UTC, lone UTF-16
surrogates, constraint violations, repeated registrations that differ, oversized bodies, NaN,
unknown query values; and a hypothesis fuzz of every endpoint (bodies, headers, query strings,
path ids, raw bytes): never a 5xx, always a JSON error body, a 422 names its field."""
from __future__ import annotations

import copy
import json
import urllib.parse

import pytest
from flask import Blueprint
from hypothesis import HealthCheck, given, settings, strategies as st

from bridge.app import create_app
from bridge.runtime import Runtime
from tests.conftest import test_settings
from tests.contract.seed import ORDER, seed
from tests.support.api import auth, token

LATE = "9999-12-31T23:59:59-05:00"    # valid ISO 8601; its UTC instant is in year 10000
EARLY = "0001-01-01T00:00:00+05:00"   # its UTC instant is in year 0
EVALUATE = {"order": {"currency": "USD", "items": [{"item_id": "li_1", "category": "license", "billing": "one_time",
                                                    "amount": 4900, "fee": 172, "paid_at": "2026-03-01T10:00:00Z"}]},
            "request": {"reason": "not_satisfied", "requested_at": "2026-03-20T10:00:00Z"}}


@pytest.fixture
def admin(runtime):
    return auth(token(runtime, "admin"))


@pytest.fixture
def shop(runtime, client, worker):
    return seed(runtime, client, worker)


def _field(r, status=422):
    assert r.status_code == status, (r.status_code, r.data[:300])
    return r.json["error"]["field"]


@pytest.mark.parametrize("moment", [LATE, EARLY])
def test_times_outside_years_1_to_9999_are_422_naming_the_field(client, admin, shop, moment):
    ev = copy.deepcopy(EVALUATE)
    ev["order"]["items"][0]["paid_at"] = moment
    assert _field(client.post("/api/v1/policies/software-mor/evaluate", json=ev, headers=admin)) == "order.items[0].paid_at"
    ev = copy.deepcopy(EVALUATE)
    ev["order"]["items"][0]["period_end"] = moment
    assert _field(client.post("/api/v1/policies/software-mor/evaluate", json=ev, headers=admin)) == "order.items[0].period_end"
    ev = copy.deepcopy(EVALUATE)
    ev["request"]["facts"] = {"problem_reported_at": moment}
    assert _field(client.post("/api/v1/policies/software-mor/evaluate", json=ev, headers=admin)) == "request.facts.problem_reported_at"
    r = client.post("/api/v1/refund-requests", json={"order_id": "ord_seed", "reason": "not_satisfied",
                                                     "requested_at": moment}, headers=admin)
    assert _field(r) == "requested_at"
    r = client.post("/api/v1/orders/ord_seed/facts", json={"item_facts": {"li_1": {"problem_reported_at": moment}}},
                    headers=admin)
    assert _field(r) == "item_facts.li_1.problem_reported_at"
    for name in ("from", "to"):
        q = {"from": "2026-03-01", "to": "2026-04-01", name: moment}
        r = client.get("/api/v1/reconciliation?" + urllib.parse.urlencode(q), headers=admin)
        assert _field(r) == name and "1-9999" in r.json["error"]["message"]


def test_lone_surrogates_are_422_never_an_encoding_error(client, admin, shop):
    bad = "ord\ud800"
    cases = [
        ("/api/v1/orders", dict(ORDER, order_id=bad), "order_id"),
        ("/api/v1/orders", dict(ORDER, order_id="ord_s", customer={"email": f"a{bad}@example.com"}), "customer.email"),
        ("/api/v1/refund-requests", {"order_id": bad, "reason": "not_satisfied"}, "order_id"),
        ("/api/v1/refund-requests", {"order_id": "ord_seed", "reason": "not_satisfied", "items": [bad]}, "items[0]"),
        ("/api/v1/refund-requests/" + "rr_x/review", {"outcome": "denied", "note": bad}, "note"),
        ("/api/v1/orders/ord_seed/facts", {"item_facts": {bad: {"used": True}}}, "item_facts"),
    ]
    for path, body, field in cases:
        # json.dumps escapes the surrogate as \ud800: what a client's JSON library sends.
        r = client.post(path, data=json.dumps(body), headers={**admin, "Content-Type": "application/json"})
        assert r.status_code == 422, (path, r.status_code, r.data[:200])
        assert r.json["error"]["field"].startswith(field), (path, r.json)


def test_a_constraint_violation_is_409_not_503(app, runtime, admin):
    from sqlalchemy import text
    bp = Blueprint("dup", __name__)

    @bp.post("/dup")
    def dup():   # a write that a UNIQUE constraint refuses, as a race between two callers would
        with runtime.sessions.begin() as s:
            for _ in range(2):
                s.execute(text("INSERT INTO api_tokens (name, token_hash, scopes, created_at) "
                               "VALUES ('x', 'same-hash', '[]', CURRENT_TIMESTAMP)"))
        return "unreachable"

    app.register_blueprint(bp)
    r = app.test_client().post("/dup")
    assert r.status_code == 409 and r.json["error"]["code"] == "conflict", r.data
    assert "Retry-After" not in r.headers


def test_only_an_unreachable_database_is_503_and_readyz_names_no_exception(tmp_path):
    # Nothing listens on port 1: the connection is refused at once.
    rt = Runtime.build(test_settings("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2", tmp_path))
    r = create_app(runtime=rt).test_client().get("/readyz")
    assert r.status_code == 503 and r.json["error"]["code"] == "database_unavailable"
    assert "Error" not in r.json["error"]["message"] and "Exception" not in r.json["error"]["message"]


@pytest.mark.parametrize("change,field", [
    (lambda o: o["items"][0].update(amount=5900), "items[0].amount"),
    (lambda o: o["items"][0].update(category="support_subscription", billing="annual"), "items[0].category"),
    (lambda o: o["items"][0].update(billing="annual"), "items[0].billing"),
    (lambda o: o["customer"].update(email="b@example.com"), "customer.email"),
    (lambda o: o["customer"].update(id="cus_other"), "customer.id"),
    (lambda o: o.update(currency="EUR"), "currency"),
])
def test_re_registering_with_different_data_is_409_naming_the_field(client, admin, change, field):
    first = copy.deepcopy(ORDER)
    assert client.post("/api/v1/orders", json=first, headers=admin).status_code == 201
    second = copy.deepcopy(ORDER)
    change(second)
    r = client.post("/api/v1/orders", json=second, headers=admin)
    assert r.status_code == 409 and r.json["error"]["field"] == field, r.json
    assert client.post("/api/v1/orders", json=first, headers=admin).status_code == 200


def test_a_license_id_of_another_order_is_409_at_registration(client, admin):
    one = {"order_id": "ord_a", "policy": "software-mor", "currency": "USD",
           "items": [{"item_id": "li_1", "category": "license", "billing": "one_time", "license_id": "lic_shared"}]}
    assert client.post("/api/v1/orders", json=one, headers=admin).status_code == 201
    two = dict(one, order_id="ord_b")
    r = client.post("/api/v1/orders", json=two, headers=admin)
    assert r.status_code == 409 and r.json["error"]["field"] == "items[0].license_id", r.json
    both = dict(one, order_id="ord_c", items=[one["items"][0], dict(one["items"][0], item_id="li_2")])
    assert _field(client.post("/api/v1/orders", json=both, headers=admin)) == "items[1].license_id"


def test_bodies_too_large_or_not_json(client, admin):
    big = b'{"order_id": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = client.post("/api/v1/orders", data=big, headers={**admin, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json["error"]["code"]
    for raw in (b'{"amount": NaN}', b'{"amount": Infinity}', b'{"amount": -Infinity}', b"\xff\xfe{}",
                b"[" * 100000, b'{"a": 1' + b"0" * 5000 + b"}"):
        r = client.post("/api/v1/orders", data=raw, headers={**admin, "Content-Type": "application/json"})
        assert r.status_code == 400 and r.json["error"]["code"] == "invalid_json" and r.json["error"]["field"] == "body", raw[:20]


def test_reconciliation_refuses_unknown_currency_format_and_keys(client, admin):
    base = "/api/v1/reconciliation?from=2026-03-01&to=2026-04-01"
    assert client.get(base, headers=admin).status_code == 200
    assert client.get(base + "&currency=usd", headers=admin).status_code == 200
    assert _field(client.get(base + "&currency=ZZZ", headers=admin)) == "currency"
    assert _field(client.get(base + "&currency=NaN", headers=admin)) == "currency"
    assert _field(client.get(base + "&format=xml", headers=admin)) == "format"
    assert _field(client.get(base + "&stauts=x", headers=admin)) == "stauts"
    assert client.get(base + "&format=csv", headers=admin).mimetype == "text/csv"


def test_approving_a_review_with_nothing_left_is_409(client, admin, shop):
    # Another request refunds the same item in full first (work not started: approved).
    other = client.post("/api/v1/refund-requests", headers=admin, json={
        "order_id": "ord_seed", "reason": "not_satisfied", "items": ["li_2"], "requested_at": "2026-03-06T10:00:00Z",
        "item_facts": {"li_2": {"work_started": False}}})
    assert other.status_code == 201 and other.json["status"] == "approved", other.json
    r = client.post(f"/api/v1/refund-requests/{shop['refund_request_id']}/review", json={"outcome": "approved"},
                    headers=admin)
    assert r.status_code == 409 and r.json["error"]["code"] == "nothing_to_refund", r.json
    r = client.post(f"/api/v1/refund-requests/{shop['refund_request_id']}/review", json={"outcome": "denied"},
                    headers=admin)
    assert r.status_code == 200 and r.json["status"] == "denied"


# -- the fuzz -----------------------------------------------------------------------------------

ROUTES = [("POST", "/api/v1/orders"), ("GET", "/api/v1/orders/{id}"), ("POST", "/api/v1/orders/{id}/facts"),
          ("POST", "/api/v1/refund-requests"), ("GET", "/api/v1/refund-requests"),
          ("GET", "/api/v1/refund-requests/{id}"), ("POST", "/api/v1/refund-requests/{id}/review"),
          ("POST", "/api/v1/refund-quotes"),
          ("GET", "/api/v1/policies"), ("POST", "/api/v1/policies/{id}/evaluate"),
          ("GET", "/api/v1/licenses"), ("GET", "/api/v1/licenses/{id}"), ("GET", "/api/v1/disputes"),
          ("GET", "/api/v1/reconciliation")]

_text = st.one_of(st.text(max_size=12), st.sampled_from(["ord_seed", "li_1", "li_2", "software-mor", "\ud800",
                                                          "\x00", LATE, EARLY, "2026-03-01", "USD", "review", "csv"]))
_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                     st.floats(allow_nan=True, allow_infinity=True), _text)
_json = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(_text, inner, max_size=5)), max_leaves=20)
_keys = ["order_id", "policy", "currency", "items", "customer", "reason", "requested_at", "facts", "item_facts",
         "outcome", "refund_amount", "note", "order", "request", "amount", "paid_at", "category", "billing"]
# Bodies close to valid ones, so the fuzz gets past the first check: known keys, hostile values.
_bodyish = st.dictionaries(st.sampled_from(_keys), _json, max_size=8)


def _raw(doc) -> bytes:
    # allow_nan: the fuzz also sends NaN and Infinity literals, which a lax client library writes.
    return json.dumps(doc, allow_nan=True).encode()


_bodies = st.one_of(_bodyish.map(_raw), _json.map(_raw), st.binary(max_size=200),
                    st.sampled_from([b"", b"{", b'{"a": NaN}', b"\xed\xa0\x80", b'"\\ud800"', b"[" * 2000]))
_ids = st.one_of(st.sampled_from(["ord_seed", "software-mor", "nope"]),
                 st.binary(min_size=1, max_size=30).map(lambda b: urllib.parse.quote(b, safe="")),
                 st.text(min_size=1, max_size=20).map(lambda t: urllib.parse.quote(t.encode("utf-8", "surrogatepass"), safe="")))
_query = st.dictionaries(st.sampled_from(["status", "limit", "from", "to", "provider", "currency", "format",
                                          "order_id", "units", "x"]), _text, max_size=4)
_ctype = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", "", "application/json; charset=latin-1",
                          "multipart/form-data; boundary=x"])
_auth = st.sampled_from(["good", "good", "good", "none", "Bearer", "Bearer \x00", "Basic abc", "Bearer brg_nope"])
_idem = st.one_of(st.none(), st.sampled_from(["", " ", "k" * 300, "key\x7f", "key-1"]))


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(route=st.sampled_from(ROUTES), pid=_ids, query=_query, body=_bodies, ctype=_ctype, who=_auth, idem=_idem)
def _fuzz(client, tok, route, pid, query, body, ctype, who, idem):
    method, path = route
    # Raw bytes in the query too (a lone surrogate as its CESU bytes): what a hostile client sends.
    raw_query = {k: v.encode("utf-8", "surrogatepass") for k, v in query.items()}
    url = path.replace("{id}", pid) + ("?" + urllib.parse.urlencode(raw_query) if query else "")
    headers = {}
    if who == "good":
        headers["Authorization"] = f"Bearer {tok}"
    elif who != "none":
        headers["Authorization"] = who
    if ctype:
        headers["Content-Type"] = ctype
    if idem is not None:
        headers["Idempotency-Key"] = idem
    r = client.open(url, method=method, data=body if method == "POST" else None, headers=headers)
    assert r.status_code < 500, (method, url, r.status_code, r.data[:300])
    if r.status_code >= 400:
        assert r.mimetype == "application/json", (url, r.data[:200])
        err = r.json["error"]
        assert err["code"] and err["message"]
        if r.status_code == 422:
            assert err.get("field"), (url, err)


def test_fuzz_every_endpoint(runtime, client, worker):
    seed(runtime, client, worker)
    # Throttle off: the fuzz sends bad tokens on purpose (the throttle has its own tests).
    object.__setattr__(runtime.settings, "auth_failure_limit", 0)
    _fuzz(client, token(runtime, "admin"))


def test_an_order_the_policy_cannot_judge_is_409_not_500(db_url, tmp_path):
    """An order the bridge created from a payment whose line the catalog does not classify has
    no category: a refund request on it (or a quote) is a 409 naming why, never a 500."""
    import time
    from bridge.fakes.samples import paddle_sample, signed
    from bridge.worker.handlers import all_handlers
    from bridge.worker.runner import Worker
    from tests.conftest import PADDLE_SECRET
    rt = Runtime.build(test_settings(db_url, tmp_path, default_policy="software-mor"))
    try:
        client = create_app(runtime=rt).test_client()
        now = int(time.time())
        body, headers = signed("paddle", paddle_sample("ord_unclassified", 4900, "USD", 245, now), PADDLE_SECRET, now)
        assert client.post("/webhooks/paddle", data=body, headers=headers).status_code == 200
        Worker(rt, all_handlers(rt), worker_id="t").drain()
        tok = auth(token(rt, "admin"))
        for path in ("/api/v1/refund-requests", "/api/v1/refund-quotes"):
            r = client.post(path, json={"order_id": "ord_unclassified", "reason": "not_satisfied"}, headers=tok)
            assert r.status_code == 409 and r.json["error"]["code"] == "order_not_decidable", r.json
    finally:
        rt.engine.dispose()
