"""Orders, facts, tokens and scopes, and the policy simulator over HTTP."""
import pytest

from tests.support.api import auth, token

ORDER = {"order_id": "ord_1", "policy": "software-mor", "currency": "USD", "bundle": False,
         "customer": {"id": "cus_1", "email": "a@example.com", "country": "DE"},
         "items": [{"item_id": "li_1", "sku": "pro-license", "category": "license",
                    "billing": "one_time", "amount": 4900, "price_id": "pri_01h"}]}


@pytest.fixture
def admin(runtime):
    return auth(token(runtime, "orders:write", "read"))


def test_create_order_is_idempotent(client, admin):
    r = client.post("/api/v1/orders", json=ORDER, headers=admin)
    assert r.status_code == 201, r.json
    assert r.json["order_id"] == "ord_1" and r.json["status"] == "awaiting_payment"
    assert r.json["items"][0]["category"] == "license"
    again = client.post("/api/v1/orders", json=ORDER, headers=admin)
    assert again.status_code == 200 and again.json["order_id"] == "ord_1"
    changed = dict(ORDER, currency="EUR")
    assert client.post("/api/v1/orders", json=changed, headers=admin).status_code == 409
    got = client.get("/api/v1/orders/ord_1", headers=admin)
    assert got.status_code == 200 and got.json["customer"]["country"] == "DE"
    assert client.get("/api/v1/orders/nope", headers=admin).status_code == 404


@pytest.mark.parametrize("mutate,field", [
    (lambda o: o.pop("order_id"), "order_id"),
    (lambda o: o.update(policy="nope"), "policy"),
    (lambda o: o.update(currency="dollars"), "currency"),
    (lambda o: o.update(items=[]), "items"),
    (lambda o: o["items"][0].update(category="spaceship"), "items[0].category"),
    (lambda o: o["items"][0].update(billing="weekly"), "items[0].billing"),
    (lambda o: o["items"][0].update(amount=-1), "items[0].amount"),
    (lambda o: o["items"][0].update(amount=1.5), "items[0].amount"),
    (lambda o: o.update(bundle="yes"), "bundle"),
    (lambda o: o["customer"].update(country="Germany"), "customer.country"),
])
def test_invalid_orders_are_422_naming_the_field(client, admin, mutate, field):
    import copy
    doc = copy.deepcopy(ORDER)
    mutate(doc)
    r = client.post("/api/v1/orders", json=doc, headers=admin)
    assert r.status_code == 422, r.json
    assert r.json["error"]["field"] == field


def test_bad_bodies(client, admin):
    assert client.post("/api/v1/orders", data="{", headers={**admin, "Content-Type": "application/json"}).status_code == 400
    assert client.post("/api/v1/orders", json=[1], headers=admin).status_code == 422
    assert client.post("/api/v1/orders", data="x=1", headers={**admin, "Content-Type": "text/plain"}).status_code == 415


def test_auth_and_scopes(client, runtime):
    reader = auth(token(runtime, "read"))
    assert client.post("/api/v1/orders", json=ORDER).status_code == 401
    r = client.post("/api/v1/orders", json=ORDER, headers={"Authorization": "Bearer brg_wrong"})
    assert r.status_code == 401 and "Bearer" in r.headers["WWW-Authenticate"]
    assert client.post("/api/v1/orders", json=ORDER, headers={"Authorization": "Basic abc"}).status_code == 401
    r = client.post("/api/v1/orders", json=ORDER, headers=reader)
    assert r.status_code == 403 and "orders:write" in r.json["error"]["message"]
    tok = token(runtime, "read")
    assert client.get(f"/api/v1/policies?access_token={tok}").status_code == 401
    everything = auth(token(runtime, "admin"))
    assert client.post("/api/v1/orders", json=ORDER, headers=everything).status_code == 201


def test_tokens_are_stored_as_hashes(runtime):
    from sqlalchemy import select
    from bridge.ledger.models import ApiToken
    tok = token(runtime, "read")
    with runtime.reads() as s:
        rows = s.execute(select(ApiToken)).scalars().all()
    assert all(tok not in (r.token_hash, r.name) for r in rows)
    assert len(rows[0].token_hash) == 64


def test_facts(client, admin):
    client.post("/api/v1/orders", json=ORDER, headers=admin)
    r = client.post("/api/v1/orders/ord_1/facts", json={"facts": {"materially_used": True},
                                                         "item_facts": {"li_1": {"problem_reported_at": "2026-03-02T10:00:00Z"}}},
                    headers=admin)
    assert r.status_code == 200, r.json
    assert r.json["facts"] == {"materially_used": True}
    assert r.json["items"][0]["facts"] == {"problem_reported_at": "2026-03-02T10:00:00Z"}
    bad = client.post("/api/v1/orders/ord_1/facts", json={"facts": {"vibes": True}}, headers=admin)
    assert bad.status_code == 422 and bad.json["error"]["field"] == "facts.vibes"
    bad = client.post("/api/v1/orders/ord_1/facts", json={"facts": {"used": "yes"}}, headers=admin)
    assert bad.status_code == 422 and bad.json["error"]["field"] == "facts.used"
    bad = client.post("/api/v1/orders/ord_1/facts", json={"item_facts": {"li_9": {"used": True}}}, headers=admin)
    assert bad.status_code == 422 and bad.json["error"]["field"] == "item_facts.li_9"
    assert client.post("/api/v1/orders/nope/facts", json={"facts": {}}, headers=admin).status_code == 404


def test_policies_list_and_evaluate(client, runtime):
    reader = auth(token(runtime, "read"))
    r = client.get("/api/v1/policies", headers=reader)
    ids = {p["id"] for p in r.json["policies"]}
    assert ids == {"hotlunch", "micromastery", "mittrik", "nextos", "software-mor"}
    body = {"order": {"currency": "USD", "items": [{"item_id": "li_1", "category": "license", "billing": "one_time",
                                                     "amount": 4900, "fee": 172, "paid_at": "2026-03-01T10:00:00Z"}],
                      "customer": {"country": "US"}},
            "request": {"reason": "not_satisfied", "requested_at": "2026-03-20T10:00:00Z"}}
    r = client.post("/api/v1/policies/software-mor/evaluate", json=body, headers=reader)
    assert r.status_code == 200, r.json
    assert (r.json["outcome"], r.json["refund_amount"], r.json["fee_deducted"]) == ("approved", 4728, 172)
    assert client.post("/api/v1/policies/nope/evaluate", json=body, headers=reader).status_code == 404
    body["request"]["requested_at"] = "not a time"
    r = client.post("/api/v1/policies/software-mor/evaluate", json=body, headers=reader)
    assert r.status_code == 422 and r.json["error"]["field"] == "request.requested_at"


def test_nul_characters_are_a_client_error_never_5xx(client, admin):
    """PostgreSQL refuses NUL in text: that is the client's bad value, not a database outage."""
    assert client.get("/api/v1/orders/%00x", headers=admin).status_code in (400, 404)
    doc = dict(ORDER, order_id="ord_\x00nul")
    r = client.post("/api/v1/orders", json=doc, headers=admin)
    assert r.status_code == 422 and r.json["error"]["field"] == "order_id", r.json
    assert client.get("/api/v1/licenses?order_id=%00", headers=admin).status_code < 500
