"""The ``bridge`` command: serve, worker, db, tokens, policy, events, jobs, notices, demo.

Every command reads the same environment as the web app (``Settings.from_env``) and checks it
first: a configuration that cannot work stops it with one line naming the variable and exit
status 2 (``bridge.preflight``), as does a database whose schema is not current for the
commands that use it (``run `bridge db upgrade```). Listings are tables a person reads;
``--json`` prints JSON for scripts.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import datetime, timezone
from typing import Optional, Sequence


class _Stop(Exception):
    """Stop the command: print the line to stderr, exit with ``code``."""

    def __init__(self, line: str, code: int = 2):
        super().__init__(line)
        self.line = line
        self.code = code


def _runtime(**overrides):
    from bridge.runtime import Runtime
    from bridge.settings import Settings
    settings = Settings.from_env()
    return Runtime.build(settings.with_(**overrides) if overrides else settings)


def _db_runtime(**overrides):
    """A runtime for a command that reads or writes the database: its schema must be current
    (exit status 2 otherwise; 1 when the database does not answer)."""
    from bridge.preflight import DatabaseNotReady, DatabaseUnreachable, check_schema
    rt = _runtime(**overrides)
    try:
        check_schema(rt.engine)
    except DatabaseNotReady as err:
        rt.engine.dispose()
        raise _Stop(f"error: {err}", 1 if isinstance(err, DatabaseUnreachable) else 2) from None
    return rt


def _upgrade(rt) -> None:
    """``bridge db upgrade`` and ``bridge serve``: a database that does not answer is one line."""
    from sqlalchemy.exc import OperationalError

    from bridge.ledger import schema
    from bridge.preflight import unreachable
    try:
        schema.upgrade(rt.engine)
    except OperationalError as err:  # could not connect (other errors of a migration are bugs)
        raise _Stop(f"error: {unreachable(err)}", 1) from None


def _print_table(rows: list, columns: list, empty: str) -> None:
    """``columns``: (header, key or function of the row)."""
    if not rows:
        print(empty)
        return
    cells = [[h for h, _ in columns]]
    for row in rows:
        line = []
        for _, key in columns:
            value = key(row) if callable(key) else row.get(key)
            line.append(_shown(value))
        cells.append(line)
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _shown(value) -> str:
    """A value for the terminal: control characters (an event id is chosen by whoever signed
    the event) escaped, never sent to the operator's terminal as they are."""
    from bridge.logs import escape_controls
    text = "-" if value is None or value == "" else str(value)
    return text if text.isprintable() else escape_controls(text).encode("ascii", "backslashreplace").decode()


def _print_json(value) -> None:
    print(json.dumps(value, indent=2))  # ASCII only: nothing a terminal could act on


def cmd_serve(args) -> int:
    from bridge.app import create_app
    from bridge.logs import configure_logging
    from bridge.worker.handlers import all_handlers
    from bridge.worker.runner import Worker
    from werkzeug.serving import make_server

    from bridge.web.devserver import QueryFreeRequestHandler

    rt = _runtime()
    configure_logging(rt.settings.log_level, rt.settings.log_format, loggers=("bridge", "werkzeug"))
    _upgrade(rt)
    app = create_app(runtime=rt)
    stop = threading.Event()
    worker = Worker(rt, all_handlers(rt))
    t = threading.Thread(target=worker.run_forever, args=(stop,), name="bridge-worker", daemon=True)
    t.start()
    server = make_server(args.host, args.port, app, threaded=True, request_handler=QueryFreeRequestHandler)
    print(f"bridge listening on http://{args.host}:{server.port} "
          f"(database: {'SQLite' if rt.settings.is_sqlite else 'PostgreSQL'})", flush=True)

    def _stop(*_):
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.serve_forever()
    stop.set()
    t.join(timeout=10)
    return 0


def cmd_worker(args) -> int:
    from bridge.logs import configure_logging
    from bridge.worker.handlers import all_handlers
    from bridge.worker.pool import run_workers

    # --threads is applied to the settings before the runtime is built: the pool is sized from it.
    rt = _worker_runtime(worker_threads=args.threads) if args.threads else _worker_runtime()
    configure_logging(rt.settings.log_level, rt.settings.log_format)
    threads = rt.settings.worker_threads
    if threads < 1:
        print("error: BRIDGE_WORKER_THREADS must be at least 1", file=sys.stderr)
        return 2
    stop = threading.Event()
    # Every loop finishes its current job and stops (a job cut off would only wait out its lease).
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return run_workers(rt, all_handlers(rt), threads, stop)


def _worker_runtime(**overrides):
    """The worker waits for a database that is down (it may come back), but not for a schema
    that is not there: that needs `bridge db upgrade`."""
    from bridge.preflight import DatabaseNotReady, DatabaseUnreachable, check_schema
    rt = _runtime(**overrides)
    try:
        check_schema(rt.engine)
    except DatabaseUnreachable:
        pass  # the loop waits for it and says so
    except DatabaseNotReady as err:
        rt.engine.dispose()
        raise _Stop(f"error: {err}") from None
    return rt


def _positive_int(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def cmd_db_upgrade(args) -> int:
    from bridge.ledger import schema
    rt = _runtime()
    _upgrade(rt)
    print(f"database at revision {schema.current_revision(rt.engine)}")
    return 0


def cmd_tokens_create(args) -> int:
    from bridge.ledger.tokens import create_token
    rt = _db_runtime()
    now = datetime.now(timezone.utc)
    try:
        with rt.sessions.begin() as session:
            row, token = create_token(session, args.name, args.scope or [], now)
            print(f"token {row.id} {args.name!r} scopes {' '.join(row.scopes)}; shown once:")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(token)
    return 0


def cmd_policy_check(args) -> int:
    from bridge.policy.commands import check
    from bridge.settings import Settings
    settings = Settings.from_env()
    code, lines = check([args.file] if args.file else None, settings.config_dir / "policies")
    for line in lines:
        print(line)
    return code


def _policy_lines(name: str, *args) -> int:
    from bridge.policy import commands
    from bridge.settings import Settings
    settings = Settings.from_env()
    code, lines = getattr(commands, name)(*args, settings.config_dir / "policies")
    for line in lines:
        print(line)
    return code


def cmd_policy_test(args) -> int:
    return _policy_lines("test", args.ids)


def cmd_policy_explain(args) -> int:
    return _policy_lines("explain", args.id)


def cmd_policy_lock(args) -> int:
    return _policy_lines("lock")


def cmd_policy_evaluate(args) -> int:
    from bridge.policy.commands import evaluate_file
    from bridge.policy import PolicyFileError, PolicyInputError
    from bridge.settings import Settings
    settings = Settings.from_env()
    try:
        result = evaluate_file(args.file, settings.config_dir / "policies", datetime.now(timezone.utc))
    except PolicyInputError as err:
        print(f"error: {err.field}: {err.message}", file=sys.stderr)
        return 2
    except (PolicyFileError, OSError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


def cmd_events_replay(args) -> int:
    from bridge.ledger.replay import replay_event
    rt = _db_runtime()
    try:
        ids = replay_event(rt, args.event_id, args.provider)
    except LookupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for provider, event_id in ids:
        print(f"queued {provider} event {event_id} for processing again")
    return 0


def cmd_notices_resend(args) -> int:
    from bridge.services.notices import resend_undelivered
    rt = _db_runtime()
    if not rt.settings.license_webhook_url or not rt.settings.license_webhook_secret:
        print("error: set LICENSE_WEBHOOK_URL and LICENSE_WEBHOOK_SECRET first", file=sys.stderr)
        return 2
    with rt.sessions.begin() as session:
        n = resend_undelivered(session, rt.clock(), license_id=args.license)
    print(f"queued {n} undelivered notice(s) for delivery")
    return 0


def cmd_tokens_list(args) -> int:
    from bridge.ledger.operations import list_tokens
    rt = _db_runtime()
    with rt.reads() as session:
        rows = list_tokens(session)
    if args.json:
        _print_json(rows)
        return 0
    _print_table(rows, [("ID", "id"), ("NAME", "name"), ("SCOPES", lambda r: " ".join(r["scopes"])),
                        ("CREATED", "created_at"), ("REVOKED", "revoked_at")], "no tokens")
    return 0


def cmd_tokens_revoke(args) -> int:
    from bridge.ledger.operations import revoke_tokens, token_names
    rt = _db_runtime()
    with rt.sessions.begin() as session:
        ids = revoke_tokens(session, args.name, rt.clock())
        known = token_names(session, args.name)
    if not ids:
        if known:
            print(f"token {args.name!r} is already revoked")
            return 0
        print(f"error: no token named {args.name!r} (see `bridge tokens list`)", file=sys.stderr)
        return 1
    if args.json:
        _print_json({"revoked": ids})
    else:
        print(f"revoked {len(ids)} token(s) named {args.name!r} (id {', '.join(map(str, ids))}); "
              "they are refused from now on")
    return 0


def cmd_events_list(args) -> int:
    from bridge.ledger.operations import list_events
    rt = _db_runtime()
    with rt.reads() as session:
        rows = list_events(session, status=args.status, provider=args.provider, limit=args.limit)
    if args.json:
        _print_json(rows)
        return 0
    _print_table(rows, [("ID", "id"), ("PROVIDER", "provider"), ("EVENT", "provider_event_id"),
                        ("TYPE", "event_type"), ("STATUS", "status"), ("RECEIVED", "received_at"),
                        ("ERROR", lambda r: (r["error"] or "")[:60])], "no events")
    return 0


def cmd_events_show(args) -> int:
    from bridge.ledger.operations import find_events
    rt = _db_runtime()
    with rt.reads() as session:
        rows = find_events(session, args.event_id, args.provider)
    if not rows:
        print(f"error: no stored event {args.event_id!r}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(rows if len(rows) > 1 else rows[0])
        return 0
    for n, row in enumerate(rows):
        if n:
            print()
        width = max(len(k) for k in row)
        for key, value in row.items():
            if key != "jobs":
                print(f"{key.ljust(width)}  {_shown(value)}")
        print("jobs:")
        _print_table(row["jobs"], [("  ID", lambda j: f"  {j['id']}"), ("STATE", "state"),
                                   ("ATTEMPTS", lambda j: f"{j['attempts']}/{j['max_attempts']}"),
                                   ("RUN AT", "run_at"), ("LAST ERROR", lambda j: (j["last_error"] or "")[:60])],
                     "  none")
    return 0


def cmd_jobs_list(args) -> int:
    from bridge.ledger.operations import list_jobs
    rt = _db_runtime()
    with rt.reads() as session:
        rows = list_jobs(session, state=args.state, limit=args.limit)
    if args.json:
        _print_json(rows)
        return 0
    _print_table(rows, [("ID", "id"), ("KIND", "kind"), ("REF", "ref_id"), ("STATE", "state"),
                        ("ATTEMPTS", lambda r: f"{r['attempts']}/{r['max_attempts']}"), ("RUN AT", "run_at"),
                        ("LAST ERROR", lambda r: (r["last_error"] or "")[:60])], "no jobs")
    return 0


def cmd_jobs_retry(args) -> int:
    from bridge.ledger.operations import JobNotRetryable, retry_job
    rt = _db_runtime()
    try:
        with rt.sessions.begin() as session:
            row = retry_job(session, args.job_id, rt.clock())
    except LookupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except JobNotRetryable as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(row)
    else:
        print(f"job {row['id']} ({row['kind']} {row['ref_id']}) is ready to run again now")
    return 0


def cmd_demo(args) -> int:
    from bridge.demo import run_demo
    return run_demo(keep=args.keep)


def build_parser() -> argparse.ArgumentParser:
    from bridge.providers.registry import names as provider_names
    p = argparse.ArgumentParser(prog="bridge", description="Refund policy engine and ledger for Stripe and Paddle.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="web and worker in one process (the one-command start)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=5000)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("worker", help="run the job worker")
    s.add_argument("--threads", type=_positive_int, default=None,
                   help="worker loops in this process (default: BRIDGE_WORKER_THREADS, else 1)")
    s.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    s = db.add_parser("upgrade", help="apply migrations")
    s.set_defaults(func=cmd_db_upgrade)

    tokens = sub.add_parser("tokens", help="API tokens").add_subparsers(dest="tokens_command", required=True)
    s = tokens.add_parser("create", help="create a token (printed once)")
    s.add_argument("name")
    s.add_argument("--scope", action="append")
    s.set_defaults(func=cmd_tokens_create)
    s = tokens.add_parser("list", help="every token: name, scopes, created, revoked (never the token)")
    s.add_argument("--json", action="store_true", help="JSON for scripts")
    s.set_defaults(func=cmd_tokens_list)
    s = tokens.add_parser("revoke", help="revoke the tokens of this name (refused at once)")
    s.add_argument("name")
    s.add_argument("--json", action="store_true", help="JSON for scripts")
    s.set_defaults(func=cmd_tokens_revoke)

    policy = sub.add_parser("policy", help="refund policies").add_subparsers(dest="policy_command", required=True)
    s = policy.add_parser("check", help="validate policy files, run their cases, compare versions.lock")
    s.add_argument("file", nargs="?")
    s.set_defaults(func=cmd_policy_check)
    s = policy.add_parser("test", help="run the cases beside the policies (<id>.cases.toml) as a table")
    s.add_argument("ids", nargs="*", metavar="ID")
    s.set_defaults(func=cmd_policy_test)
    s = policy.add_parser("explain", help="print a policy as a person reads it")
    s.add_argument("id")
    s.set_defaults(func=cmd_policy_explain)
    s = policy.add_parser("lock", help="record each policy version's sha256 in versions.lock")
    s.set_defaults(func=cmd_policy_lock)
    s = policy.add_parser("evaluate", help="decide a hypothetical request from a JSON file")
    s.add_argument("file")
    s.set_defaults(func=cmd_policy_evaluate)

    events = sub.add_parser("events", help="stored webhook events").add_subparsers(dest="events_command", required=True)
    s = events.add_parser("replay", help="process a stored event again")
    s.add_argument("event_id")
    s.add_argument("--provider", choices=provider_names())
    s.set_defaults(func=cmd_events_replay)
    s = events.add_parser("list", help="the newest stored events")
    s.add_argument("--status", help="received, processed, ignored, parked, failed, ...")
    s.add_argument("--provider", choices=provider_names())
    s.add_argument("--limit", type=_positive_int, default=50)
    s.add_argument("--json", action="store_true", help="JSON for scripts")
    s.set_defaults(func=cmd_events_list)
    s = events.add_parser("show", help="one stored event and its processing jobs")
    s.add_argument("event_id")
    s.add_argument("--provider", choices=provider_names())
    s.add_argument("--json", action="store_true", help="JSON for scripts")
    s.set_defaults(func=cmd_events_show)

    jobs = sub.add_parser("jobs", help="the job queue").add_subparsers(dest="jobs_command", required=True)
    s = jobs.add_parser("list", help="the newest jobs")
    s.add_argument("--state", choices=["ready", "running", "done", "dead"])
    s.add_argument("--limit", type=_positive_int, default=50)
    s.add_argument("--json", action="store_true", help="JSON for scripts")
    s.set_defaults(func=cmd_jobs_list)
    s = jobs.add_parser("retry", help="run a dead (or waiting) job again now, with fresh attempts")
    s.add_argument("job_id", type=int)
    s.add_argument("--json", action="store_true", help="JSON for scripts")
    s.set_defaults(func=cmd_jobs_retry)

    notices = sub.add_parser("notices", help="license notices to the merchant's app").add_subparsers(
        dest="notices_command", required=True)
    s = notices.add_parser("resend", help="deliver again every notice whose delivery ended undelivered")
    s.add_argument("--license", help="only this license's notices")
    s.set_defaults(func=cmd_notices_resend)

    s = sub.add_parser("demo", help="a small shop's day against local fake providers")
    s.add_argument("--keep", action="store_true", help="keep the demo database")
    s.set_defaults(func=cmd_demo)
    return p


# Commands whose counters must reach GET /metrics from another process: they count into the
# same multiprocess directory as gunicorn's workers (bridge.metrics_dir).
_COUNTING = {"worker", "sync"}


def _preflight(args) -> None:
    """Check the configuration before the command does anything (exit status 2 on failure)."""
    from bridge.preflight import check_startup
    from bridge.settings import ConfigError, Settings
    try:
        settings = Settings.from_env()
        if args.command != "policy":  # `bridge policy check` is the tool for broken policy files
            check_startup(settings)
    except ConfigError as err:
        raise _Stop(f"error: {err}") from None
    if settings.metrics_enabled and args.command in _COUNTING | {"serve"}:
        # Before anything imports prometheus-client. `bridge serve` is one process: it counts in
        # memory unless PROMETHEUS_MULTIPROC_DIR is set.
        from bridge.metrics_dir import default_dir, prepare
        prepare(None if args.command == "serve" else default_dir(settings.instance_dir))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _preflight(args)
        return args.func(args)
    except _Stop as stop:
        print(stop.line, file=sys.stderr, flush=True)
        return stop.code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
