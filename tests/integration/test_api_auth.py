"""T12, finance API auth: the 401/403 code matrix, the per-IP throttle on authentication
failures (429 + Retry-After, counted from the database), the audit trail (one metadata-only row
per call, never a token), and the client address behind a trusted proxy."""
import io
import logging
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from bridge.ledger import schema
from bridge.ledger.models import ApiAudit, ApiToken
from bridge.ledger.tokens import hash_token
from bridge.settings import Settings
from tests.support.api import auth, token

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
WRONG = "brg_" + "w" * 43  # token-shaped, but no such token
POLICIES = "/api/v1/policies"  # needs "read"
RECON = "/api/v1/reconciliation?from=2026-03-01&to=2026-04-01"  # needs "finance:read"


class Clock:
    """The runtime clock, moved by hand: the throttle window passes without sleeping."""

    def __init__(self, t: datetime):
        self.t = t

    def __call__(self) -> datetime:
        return self.t

    def at(self, seconds: float) -> None:
        self.t = T0 + timedelta(seconds=seconds)


@pytest.fixture
def clock(runtime):
    runtime.clock = Clock(T0)
    return runtime.clock


@pytest.fixture
def build(settings):
    """An app with its own runtime and settings overrides (e.g. trusted proxies)."""
    from bridge.app import create_app
    from bridge.runtime import Runtime
    built = []

    def make(**overrides):
        rt = Runtime.build(settings.with_(**overrides))
        rt.clock = Clock(T0)
        built.append(rt)
        return rt, create_app(runtime=rt).test_client()
    yield make
    for rt in built:
        rt.engine.dispose()


@pytest.fixture
def logs():
    """Every record of the ``bridge`` loggers, before any redaction."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger("bridge")
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def call(client, ip="192.0.2.1", tok=None, path=POLICIES, headers=None, method="GET"):
    h = dict(headers or {})
    if tok is not None:
        h.update(auth(tok))
    return client.open(path, method=method, headers=h, environ_base={"REMOTE_ADDR": ip})


def audit_rows(runtime) -> list[ApiAudit]:
    with runtime.reads() as s:
        return list(s.execute(select(ApiAudit).order_by(ApiAudit.id)).scalars())


def token_id(runtime, tok: str) -> int:
    with runtime.reads() as s:
        return s.execute(select(ApiToken.id).where(ApiToken.token_hash == hash_token(tok))).scalar_one()


def assert_no_secret(rows, text, secrets):
    for row in rows:
        values = " ".join(str(getattr(row, c.key)) for c in ApiAudit.__table__.columns)
        for secret in secrets:
            assert secret not in values, f"{secret[:8]}... stored in an audit row"
    for secret in secrets:
        assert secret not in text, f"{secret[:8]}... reached the logs"


def test_code_matrix_and_its_audit_rows(client, runtime, clock, logs):
    reader, finance = token(runtime, "read"), token(runtime, "finance:read")
    revoked = token(runtime, "read")
    with runtime.sessions.begin() as s:
        s.execute(update(ApiToken).where(ApiToken.token_hash == hash_token(revoked)).values(revoked_at=T0))
    cases = [  # (request kwargs, status, error code)
        (dict(), 401, "unauthorized"),
        (dict(headers={"Authorization": "Bearer"}), 401, "unauthorized"),
        (dict(headers={"Authorization": "Bearer    "}), 401, "unauthorized"),
        (dict(headers={"Authorization": "Basic " + reader}), 401, "unauthorized"),
        (dict(headers={"Authorization": reader}), 401, "unauthorized"),
        (dict(headers={"Authorization": "Bearer\t" + reader}), 401, "unauthorized"),
        (dict(headers={"Authorization": "Bearer \u00e9\u00ff garbage"}), 401, "unauthorized"),
        (dict(headers={"Authorization": "Bearer " + "x" * 5000}), 401, "unauthorized"),
        (dict(tok=WRONG), 401, "unauthorized"),
        (dict(tok=revoked), 401, "unauthorized"),
        (dict(path=f"{POLICIES}?access_token={reader}"), 401, "token_in_query"),
        (dict(path=f"{POLICIES}?token={reader}", tok=reader), 401, "token_in_query"),
        (dict(path=RECON, tok=reader), 403, "forbidden"),
        (dict(tok=reader), 200, None),
        (dict(path=RECON, tok=finance), 200, None),
        (dict(path="/api/v1/no-such-thing", tok=reader), 404, "not_found"),
    ]
    for n, (kwargs, status, code) in enumerate(cases):
        r = call(client, f"192.0.2.{n}", **kwargs)  # an address each: 12 failures would trip the throttle
        assert r.status_code == status, (kwargs, r.json)
        if code:
            assert r.json["error"]["code"] == code, kwargs
        if status == 401:
            assert r.headers["WWW-Authenticate"].startswith("Bearer"), kwargs

    rows = audit_rows(runtime)
    assert len(rows) == len(cases), "one audit row per call"
    assert [r.status for r in rows] == [c[1] for c in cases]
    assert [r.client_ip for r in rows] == [f"192.0.2.{n}" for n in range(len(cases))]
    assert all(r.method == "GET" and r.created_at == T0 for r in rows)
    assert all("?" not in r.path for r in rows), "query strings are never stored"
    # The token's row id only where a token was recognised: the 403 and the two 200s.
    ids = [r.token_id for r in rows]
    assert ids[:12] == [None] * 12
    assert ids[12:15] == [token_id(runtime, reader), token_id(runtime, reader), token_id(runtime, finance)]
    assert ids[15] is None
    assert [r.scope for r in rows[12:]] == ["finance:read", "read", "finance:read", None]
    assert {r.scope for r in rows[:12]} == {"read"}
    secrets = [reader, finance, revoked, WRONG, "x" * 5000]
    assert_no_secret(rows, logs.getvalue(), secrets + [hash_token(t) for t in secrets])


def test_only_the_exact_token_passes(client, runtime, clock):
    """The lookup is by hash: a token one character off, cut, extended, re-cased or another
    token's hash is refused; the exact token (surrounding blanks aside) passes."""
    tok = token(runtime, "read")
    last = tok[-1]
    near = [tok[:-1] + ("A" if last != "A" else "B"), tok[:-1], tok + "x", tok.upper(), tok.lower(),
            tok.replace("brg_", "brx_"), hash_token(tok), "brg_" + tok[4:][::-1]]
    for n, candidate in enumerate(near):
        if candidate == tok:
            continue
        r = call(client, f"192.0.2.{100 + n}", candidate)
        assert r.status_code == 401, candidate[:8]
    assert call(client, "192.0.2.99", tok).status_code == 200
    r = call(client, "192.0.2.98", headers={"Authorization": f"Bearer  {tok}  "})
    assert r.status_code == 200


def test_revoked_token_is_refused_at_once(client, runtime, clock):
    from bridge.ledger.operations import revoke_tokens
    tok = token(runtime, "read", name="app")
    other = token(runtime, "read", name="ci")
    assert call(client, tok=tok).status_code == 200
    with runtime.sessions.begin() as s:
        assert revoke_tokens(s, "app", T0) == [token_id(runtime, tok)]
    r = call(client, tok=tok)
    assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"
    assert call(client, tok=other).status_code == 200, "only the named token is revoked"


def test_fifty_bad_tries_from_one_ip(client, runtime, clock):
    good = token(runtime, "read")
    attacker, other = "203.0.113.9", "198.51.100.20"
    sent = 0
    for i in range(50):  # one bad try a second: all 50 within the 60-s window
        clock.at(i)
        r = call(client, attacker, WRONG)
        sent += 1
        if i < 10:
            assert r.status_code == 401, i
        else:
            assert r.status_code == 429, i
            assert r.json["error"]["code"] == "too_many_auth_failures" and r.json["error"]["message"]
            # The window frees when the first failure (t=0) leaves it, at t=60.
            assert r.headers["Retry-After"] == str(60 - i), i
        # Another address is unaffected, both its successes and its (few) failures.
        assert call(client, other, good).status_code == 200
        sent += 1
        if i % 10 == 0:
            assert call(client, other, WRONG).status_code == 401
            sent += 1
        if i % 7 == 0:
            # Only failures are throttled: a valid token from the throttled address passes
            # (a neighbour behind the same NAT, or the merchant's app itself, is never locked out).
            assert call(client, attacker, good).status_code == 200, i
            sent += 1

    clock.at(55)
    assert call(client, attacker, good).status_code == 200
    r = call(client, attacker, WRONG)  # still throttled: the window has not freed
    sent += 2
    assert r.status_code == 429 and r.headers["Retry-After"] == "5"
    r = call(client, attacker, path=f"{POLICIES}?access_token={good}")  # a token in the URL fails too
    sent += 1
    assert r.status_code == 429
    clock.at(60)
    assert call(client, attacker, WRONG).status_code == 401  # 9 failures left in (0, 60]: the 10th
    r = call(client, attacker, WRONG)
    sent += 2
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"  # t=1 leaves at t=61

    rows = audit_rows(runtime)
    assert len(rows) == sent, "audit rows == requests, throttled ones included"
    throttled = [r for r in rows if r.status == 429]
    assert len(throttled) == 43 and {r.client_ip for r in throttled} == {attacker}
    assert all(r.token_id is None and r.scope == "read" for r in throttled), "no token was recognised"
    passed = [r for r in rows if r.status == 200 and r.client_ip == attacker]
    assert len(passed) == 9 and {r.token_id for r in passed} == {token_id(runtime, good)}


def test_only_401s_count(client, runtime, clock):
    reader = token(runtime, "read")
    for _ in range(15):  # successes and 403s (a valid token) are not authentication failures
        assert call(client, tok=reader).status_code == 200
        assert call(client, tok=reader, path=RECON).status_code == 403
    for _ in range(10):
        assert call(client, tok=WRONG).status_code == 401
    assert call(client, tok=WRONG).status_code == 429
    assert call(client, tok=reader).status_code == 200, "a valid token always passes"


def test_limit_and_window_are_settings(build):
    rt, client = build(auth_failure_limit=3, auth_failure_window_seconds=5)
    for _ in range(3):
        assert call(client, tok=WRONG).status_code == 401
    r = call(client, tok=WRONG)
    assert r.status_code == 429 and r.headers["Retry-After"] == "5"
    rt.clock.at(5)
    assert call(client, tok=WRONG).status_code == 401
    rt, client = build(auth_failure_limit=0)  # 0: throttle off (a gateway in front limits)
    for _ in range(15):
        assert call(client, tok=WRONG).status_code == 401


def test_settings_from_env():
    s = Settings.from_env({})
    assert (s.auth_failure_limit, s.auth_failure_window_seconds, s.trusted_proxies) == (10, 60, 0)
    s = Settings.from_env({"BRIDGE_AUTH_FAILURE_LIMIT": "3", "BRIDGE_AUTH_FAILURE_WINDOW": "30",
                           "BRIDGE_TRUSTED_PROXIES": "1"})
    assert (s.auth_failure_limit, s.auth_failure_window_seconds, s.trusted_proxies) == (3, 30, 1)


def test_forwarded_for_is_the_client_behind_a_trusted_proxy(build):
    rt, client = build(trusted_proxies=1)
    router = "10.1.2.3"
    real, neighbour = "198.51.100.7", "198.51.100.8"
    for i in range(10):
        # A client may send its own X-Forwarded-For; the router appends the real address.
        xff = real if i % 2 else f"192.0.2.{i}, {real}"
        assert call(client, router, WRONG, headers={"X-Forwarded-For": xff}).status_code == 401
    r = call(client, router, WRONG, headers={"X-Forwarded-For": f"192.0.2.99, {real}"})
    assert r.status_code == 429
    r = call(client, router, WRONG, headers={"X-Forwarded-For": neighbour})
    assert r.status_code == 401, "another client behind the same router is unaffected"
    # Garbage in the header is stored cleaned and cut, never a 500.
    r = call(client, router, WRONG, headers={"X-Forwarded-For": "\x01" + "9" * 500})
    assert r.status_code == 401
    rows = audit_rows(rt)
    assert [r.client_ip for r in rows[:11]] == [real] * 11
    assert rows[11].client_ip == neighbour
    assert rows[12].client_ip == "?" + "9" * 63


def test_forwarded_for_is_ignored_without_trusted_proxies(client, runtime, clock):
    for i in range(10):  # a new made-up X-Forwarded-For each time does not dodge the limit
        call(client, "192.0.2.50", WRONG, headers={"X-Forwarded-For": f"198.51.100.{i}"})
    assert call(client, "192.0.2.50", WRONG, headers={"X-Forwarded-For": "198.51.100.77"}).status_code == 429
    assert {r.client_ip for r in audit_rows(runtime)} == {"192.0.2.50"}


def test_odd_requests_are_audited_without_a_500(client, runtime, clock):
    reader = token(runtime, "read")
    assert call(client, tok=reader, path="/api/v1/no/such/%00%01").status_code == 404
    assert call(client, path="/api/v1/orders/" + "o" * 2000).status_code == 401
    assert call(client, tok=reader, method="DELETE").status_code == 405
    assert call(client, path="/api/v1").status_code == 404
    rows = audit_rows(runtime)
    assert len(rows) == 4
    assert rows[0].path == "/api/v1/no/such/??" and rows[0].token_id is None
    assert len(rows[1].path) == 512 and rows[1].scope == "read"
    assert (rows[2].method, rows[2].status) == ("DELETE", 405)
    assert (rows[3].path, rows[3].scope) == ("/api/v1", None)
    assert call(client, path="/healthz").status_code == 200
    assert len(audit_rows(runtime)) == 4, "only /api/v1 calls are audited"


def test_database_trouble_in_audit_or_throttle_does_not_change_the_answer(client, runtime, clock,
                                                                          monkeypatch, logs):
    from bridge.web import audit, auth as auth_module
    reader = token(runtime, "read")
    before = call(client, tok=reader)
    assert before.status_code == 200

    def down(*_args, **_kwargs):
        raise OperationalError("SELECT/INSERT api_audit", {}, ConnectionError("server closed the connection"))
    monkeypatch.setattr(audit, "insert", down)
    r = call(client, tok=reader)
    assert (r.status_code, r.json) == (200, before.json)
    r = call(client, tok=WRONG)
    assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"
    monkeypatch.setattr(auth_module.audit, "recent_failures", down)
    assert call(client, tok=reader).status_code == 200  # the throttle fails open
    assert call(client, tok=WRONG).status_code == 401
    text = logs.getvalue()
    assert "api audit row not written (GET 200): OperationalError" in text
    assert "auth failure count unavailable: OperationalError" in text
    assert_no_secret([], text, [reader, WRONG, hash_token(reader), "Bearer "])
    assert len(audit_rows(runtime)) == 1  # only the call made before the trouble


def test_schema_is_current_with_the_audit_table(client, runtime):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from bridge.ledger.models import Base
    assert schema.is_current(runtime.engine)
    assert client.get("/readyz").status_code == 200
    with runtime.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert not [d for d in diffs if "api_audit" in repr(d)], diffs
