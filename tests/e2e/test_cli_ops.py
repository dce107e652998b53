"""The operator's CLI, through its entry point (``bridge.cli.main``) with the environment a
deployment gives it: ``tokens list|revoke``, ``events list|show``, ``jobs list|retry``, as
tables and as ``--json``."""
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from bridge.cli import main
from bridge.ledger.inbox import Delivery
from bridge.ledger.models import Job
from tests.support.api import auth, token
from tests.support.servers import bridge_env

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def cli(settings, monkeypatch, capsys):
    """Run ``bridge ARGS...`` in process; returns (exit status, stdout, stderr)."""
    for key, value in bridge_env(settings).items():
        monkeypatch.setenv(key, value)
    for key in ("BRIDGE_POLICY", "PADDLE_ENVIRONMENT", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.delenv(key, raising=False)

    def run(*args):
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err
    return run


def store(runtime, provider, event_id, event_type="customer.updated"):
    runtime.inbox.store(Delivery(provider, event_id, event_type, b"{}", {}, None), T0)


def test_tokens_list_and_revoke(cli, runtime, client):
    app_tok = token(runtime, "read", "orders:write", name="shop-app")
    ci_tok = token(runtime, "metrics", name="prometheus")
    code, out, err = cli("tokens", "list")
    assert code == 0 and not err
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "SCOPES", "CREATED", "REVOKED"]
    assert "shop-app" in lines[1] and "orders:write read" in lines[1] and lines[1].rstrip().endswith("-")
    assert app_tok not in out and ci_tok not in out, "a token is shown once, at creation"

    assert client.get("/api/v1/policies", headers=auth(app_tok)).status_code == 200
    code, out, _ = cli("tokens", "revoke", "shop-app")
    assert code == 0 and "revoked 1 token(s) named 'shop-app'" in out
    r = client.get("/api/v1/policies", headers=auth(app_tok))
    assert r.status_code == 401, "refused at once: no process caches a token"
    assert client.get("/metrics", headers=auth(ci_tok)).status_code == 200

    code, out, _ = cli("tokens", "list", "--json")
    rows = json.loads(out)
    assert [(r["name"], r["revoked_at"] is not None) for r in rows] == [("shop-app", True), ("prometheus", False)]
    assert set(rows[0]) == {"id", "name", "scopes", "created_at", "revoked_at"}
    assert cli("tokens", "revoke", "shop-app")[:2] == (0, "token 'shop-app' is already revoked\n")
    code, out, err = cli("tokens", "revoke", "nobody")
    assert code == 1 and "no token named 'nobody'" in err


def test_events_list_and_show(cli, runtime):
    store(runtime, "stripe", "evt_a")
    store(runtime, "paddle", "evt_b", "transaction.completed")
    store(runtime, "stripe", "evt_c")
    code, out, _ = cli("events", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["ID", "PROVIDER", "EVENT", "TYPE", "STATUS"]
    assert [ln.split()[2] for ln in lines[1:]] == ["evt_c", "evt_b", "evt_a"], "newest first"
    code, out, _ = cli("events", "list", "--provider", "paddle", "--json")
    rows = json.loads(out)
    assert [(r["provider_event_id"], r["event_type"], r["status"]) for r in rows] == [
        ("evt_b", "transaction.completed", "received")]
    assert cli("events", "list", "--status", "failed")[1] == "no events\n"

    code, out, _ = cli("events", "show", "evt_a")
    assert code == 0 and "provider_event_id  evt_a" in out and "process_event" not in out
    assert "jobs:" in out and "ready" in out
    code, out, _ = cli("events", "show", "evt_a", "--json")
    row = json.loads(out)
    assert row["provider"] == "stripe" and row["body_bytes"] == 2
    assert [j["state"] for j in row["jobs"]] == ["ready"]
    code, _, err = cli("events", "show", "evt_zzz")
    assert code == 1 and "no stored event 'evt_zzz'" in err


def test_jobs_list_and_retry(cli, runtime):
    store(runtime, "stripe", "evt_j1")
    store(runtime, "stripe", "evt_j2")
    with runtime.sessions.begin() as s:
        s.execute(update(Job).where(Job.ref_id == "1").values(state="dead", attempts=12, last_error="boom",
                                                               finished_at=T0))
    code, out, _ = cli("jobs", "list", "--state", "dead")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 and "process_event" in lines[1] and "12/12" in lines[1] and "boom" in lines[1]
    job_id = int(lines[1].split()[0])
    rows = json.loads(cli("jobs", "list", "--json")[1])
    assert sorted(r["state"] for r in rows) == ["dead", "ready"]

    code, out, _ = cli("jobs", "retry", str(job_id))
    assert code == 0 and f"job {job_id} (process_event 1) is ready to run again now" in out
    with runtime.reads() as s:
        job = s.get(Job, job_id)
        assert (job.state, job.attempts, job.finished_at) == ("ready", 0, None)
        assert datetime.now(timezone.utc) - job.run_at < timedelta(minutes=1)
    code, out, _ = cli("jobs", "retry", str(job_id), "--json")
    assert code == 0 and json.loads(out)["state"] == "ready"
    with runtime.sessions.begin() as s:
        s.execute(update(Job).where(Job.id == job_id).values(state="done"))
    code, _, err = cli("jobs", "retry", str(job_id))
    assert code == 1 and "is done" in err
    code, _, err = cli("jobs", "retry", "999999")
    assert code == 1 and "no job 999999" in err
    assert cli("jobs", "list", "--state", "running")[1] == "no jobs\n"
