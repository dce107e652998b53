"""api.md: a configuration that cannot work stops every command at start with one line naming
the variable and exit status 2, never a traceback; a database that was never upgraded says
what to run. Each case runs the real ``bridge`` command (and gunicorn) as a subprocess."""
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import BIN, ROOT, free_port

BAD = [
    ("STRIPE_WEBHOOK_TOLERANCE", "abc", "must be a whole number"),
    ("PADDLE_WEBHOOK_TOLERANCE", "-5", "must be at least 1"),
    ("DATABASE_URL", "garbage", "is not a database URL"),
    ("DATABASE_URL", "mysql://root:hunter2@db.example/shop", "'mysql' is not supported"),
    ("PADDLE_ENVIRONMENT", "prod", "must be sandbox or production"),
    ("BRIDGE_POLICY", "no-such-policy", "no policy 'no-such-policy'"),
    ("LICENSE_WEBHOOK_SECRET", "whsec_not*base64!", "is not whsec_ followed by base64"),
    ("LICENSE_WEBHOOK_SECRET", "whsec_c2hvcnQ=", "at least 16 are needed"),
    ("BRIDGE_LOG_FORMAT", "xml", "must be text or json"),
    ("BRIDGE_WORKER_THREADS", "0", "must be at least 1"),
    ("BRIDGE_LEASE_SECONDS", "nan", "must be a finite number"),
]
COMMANDS = [["tokens", "create", "app", "--scope", "read"], ["worker"], ["serve", "--port", "0"],
            ["db", "upgrade"], ["jobs", "retry", "1"]]


def clean_env(tmp_path: Path, **extra) -> dict:
    import os
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STRIPE_", "PADDLE_", "BRIDGE_", "LICENSE_", "DATABASE_URL", "PROMETHEUS_"))}
    env.update({"BRIDGE_INSTANCE_DIR": str(tmp_path / "instance"), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def run(args, env, timeout=60):
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def assert_one_line(proc, variable: str, words: str, code: int = 2):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {variable}: ") and words in lines[0], lines[0]
    assert "hunter2" not in proc.stderr, "a database password is never echoed"


@pytest.mark.parametrize("variable,value,words", BAD, ids=[f"{v}={x}" for v, x, _ in BAD])
def test_bad_variable_stops_a_command(tmp_path, variable, value, words):
    proc = run([str(BIN / "bridge"), "tokens", "list"], clean_env(tmp_path, **{variable: value}))
    assert_one_line(proc, variable, words)
    assert proc.stdout == ""


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_command_checks_at_start(tmp_path, command):
    proc = run([str(BIN / "bridge"), *command], clean_env(tmp_path, STRIPE_WEBHOOK_TOLERANCE="abc"))
    assert_one_line(proc, "STRIPE_WEBHOOK_TOLERANCE", "must be a whole number")


def test_policy_commands_check_too(tmp_path):
    proc = run([str(BIN / "bridge"), "policy", "check"], clean_env(tmp_path, PADDLE_ENVIRONMENT="live"))
    assert_one_line(proc, "PADDLE_ENVIRONMENT", "must be sandbox or production")


def test_database_never_upgraded_says_what_to_run(tmp_path):
    env = clean_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    for command in (["tokens", "create", "app", "--scope", "read"], ["tokens", "list"], ["jobs", "list"],
                    ["events", "replay", "evt_1"], ["worker"]):
        proc = run([str(BIN / "bridge"), *command], env)
        assert proc.returncode == 2, (command, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr
        assert proc.stderr.strip() == "error: the database has no bridge schema yet: run `bridge db upgrade` first"
    proc = run([str(BIN / "bridge"), "db", "upgrade"], env)
    assert proc.returncode == 0, proc.stderr
    proc = run([str(BIN / "bridge"), "tokens", "create", "app", "--scope", "read"], env)
    assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1].startswith("brg_")


def test_gunicorn_with_the_procfile_config_stops_at_start(tmp_path):
    args = [str(BIN / "gunicorn"), "-c", "python:bridge.gunicorn_conf", "-w", "2", "-k", "sync",
            "-b", f"127.0.0.1:{free_port()}", "bridge.app:create_app()"]
    proc = run(args, clean_env(tmp_path, BRIDGE_POLICY="nope"))
    assert_one_line(proc, "BRIDGE_POLICY", "no policy 'nope'")


def test_gunicorn_app_factory_alone_stops_without_a_traceback(tmp_path):
    """Without the config file the check runs in the worker's app factory: one line, and
    gunicorn's "App failed to load" exit (4) rather than workers restarting for ever."""
    args = [str(BIN / "gunicorn"), "-w", "1", "-k", "sync", "-b", f"127.0.0.1:{free_port()}",
            "bridge.app:create_app()"]
    proc = run(args, clean_env(tmp_path, DATABASE_URL="mysql://root:hunter2@db.example/shop"))
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    ours = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert ours == ["error: DATABASE_URL: 'mysql' is not supported: use PostgreSQL (postgresql://...) "
                    "or SQLite (sqlite:///...)"]
    assert "hunter2" not in proc.stderr


def test_settings_parse_good_values():
    from bridge.settings import Settings
    s = Settings.from_env({"STRIPE_WEBHOOK_TOLERANCE": " 600 ", "PADDLE_ENVIRONMENT": "production",
                           "DATABASE_URL": "postgres://u:p@h:5432/db", "BRIDGE_METRICS": "off",
                           "LICENSE_WEBHOOK_SECRET": "whsec_" + "dGVzdC1saWNlbnNlLXNlY3JldC1rZXktMzItYnl0ZXM=",
                           "BRIDGE_LOG_FORMAT": "json", "BRIDGE_LOG_LEVEL": "warning"})
    assert (s.stripe_tolerance_seconds, s.paddle_environment, s.metrics_enabled, s.log_format, s.log_level) == (
        600, "production", False, "json", "WARNING")
    assert s.database_url == "postgresql+psycopg://u:p@h:5432/db"


def test_database_that_does_not_answer_is_one_line(tmp_path):
    """Not a configuration error for sure (it may be down a moment): exit status 1, one line."""
    env = clean_env(tmp_path, DATABASE_URL=f"postgresql://bridge:hunter2@127.0.0.1:{free_port()}/bridge")
    for command in (["db", "upgrade"], ["tokens", "list"]):
        proc = run([str(BIN / "bridge"), *command], env)
        assert proc.returncode == 1, (command, proc.stderr[-2000:])
        assert proc.stderr.strip() == "error: cannot reach the database (DATABASE_URL): OperationalError"
        assert "hunter2" not in proc.stderr + proc.stdout
