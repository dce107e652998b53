"""Shared fixtures: a database per backend, settings with test timings, the app, a worker.

Every test that takes ``db_url`` runs on SQLite and, when ``TEST_DATABASE_URL`` is set, on
PostgreSQL too. SQLite gets a fresh file per test, copied from one migrated template; on
PostgreSQL the test run gets its own schema (migrated once) and tables are emptied per test.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bridge.ledger import schema
from bridge.ledger.models import Base
from bridge.settings import PROJECT_ROOT, Settings, normalize_database_url

STRIPE_SECRET = "whsec_test_stripe_secret_0123456789"
PADDLE_SECRET = "pdl_ntfset_01testsecret_0123456789abcdef"
LICENSE_SECRET = "whsec_" + "dGVzdC1saWNlbnNlLXNlY3JldC1rZXktMzItYnl0ZXM="


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: larger sizes of the reliability battery")


_RAN = {"sqlite": 0, "postgresql": 0}


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed:
        for backend in _RAN:
            if f"[{backend}" in report.nodeid or f"-{backend}]" in report.nodeid or f"-{backend}-" in report.nodeid:
                _RAN[backend] += 1


def pytest_terminal_summary(terminalreporter):
    """Say which databases the run covered: PostgreSQL tests must never vanish silently."""
    if os.environ.get("TEST_DATABASE_URL"):
        line = f"databases: sqlite, postgresql ({_RAN['sqlite']} sqlite and {_RAN['postgresql']} postgresql tests passed)"
    else:
        line = f"databases: sqlite only (TEST_DATABASE_URL unset; {_RAN['sqlite']} sqlite tests passed)"
    terminalreporter.write_line(line)


def _backends():
    out = ["sqlite"]
    if os.environ.get("TEST_DATABASE_URL"):
        out.append("postgresql")
    return out


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    schema.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_url():
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        # Only a test asking for PostgreSQL by name gets here (db_url's params hold it only
        # when the URL is set): reported as skipped, and the summary says SQLite only ran.
        pytest.skip("PostgreSQL only: TEST_DATABASE_URL is unset")
    name = f"bridge_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(normalize_database_url(base))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    sep = "&" if "?" in base else "?"
    url = normalize_database_url(base) + f"{sep}options=-csearch_path%3D{name}"
    engine = create_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=_backends())
def db_url(request, tmp_path, _sqlite_template):
    if request.param == "sqlite":
        path = tmp_path / "bridge.sqlite3"
        shutil.copy(_sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("_pg_url")
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


def test_settings(db_url: str, tmp_path: Path, **overrides) -> Settings:
    base = Settings(
        database_url=db_url,
        instance_dir=tmp_path,
        config_dir=PROJECT_ROOT / "config",
        stripe_api_key="sk_test_bridge",
        stripe_webhook_secrets=(STRIPE_SECRET,),
        paddle_api_key="pdl_sdbx_apikey_test",
        paddle_webhook_secrets=(PADDLE_SECRET,),
        license_webhook_secret=LICENSE_SECRET,
        lease_seconds=2.0,
        job_max_attempts=12,
        job_backoff_base_seconds=0.05,
        job_backoff_max_seconds=1.0,
        worker_poll_seconds=0.05,
        provider_attempts=4,
        provider_backoff_multiplier=0.05,
        provider_backoff_max_seconds=1.0,
        provider_timeout_seconds=2.0,
        log_level="DEBUG",
    )
    return base.with_(**overrides)


test_settings.__test__ = False  # a helper, not a test


@pytest.fixture
def settings(db_url, tmp_path) -> Settings:
    return test_settings(db_url, tmp_path)


@pytest.fixture
def runtime(settings):
    from bridge.runtime import Runtime
    rt = Runtime.build(settings)
    yield rt
    rt.engine.dispose()


@pytest.fixture
def app(runtime):
    from bridge.app import create_app
    return create_app(runtime=runtime)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def worker(runtime):
    from bridge.worker.handlers import all_handlers
    from bridge.worker.runner import Worker
    return Worker(runtime, all_handlers(runtime), worker_id="test-worker")
