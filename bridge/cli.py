"""The ``bridge`` command: serve, worker, db, tokens, policy, events, demo.

Every command reads the same environment as the web app (``Settings.from_env``).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import datetime, timezone
from typing import Optional, Sequence


def _runtime(**overrides):
    from bridge.runtime import Runtime
    from bridge.settings import Settings
    settings = Settings.from_env()
    return Runtime.build(settings.with_(**overrides) if overrides else settings)


def cmd_serve(args) -> int:
    from bridge.app import create_app
    from bridge.ledger import schema
    from bridge.logs import configure_logging
    from bridge.worker.handlers import all_handlers
    from bridge.worker.runner import Worker
    from werkzeug.serving import make_server

    rt = _runtime()
    configure_logging(rt.settings.log_level)
    schema.upgrade(rt.engine)
    app = create_app(runtime=rt)
    stop = threading.Event()
    worker = Worker(rt, all_handlers(rt))
    t = threading.Thread(target=worker.run_forever, args=(stop,), name="bridge-worker", daemon=True)
    t.start()
    server = make_server(args.host, args.port, app, threaded=True)
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
    rt = _runtime(worker_threads=args.threads) if args.threads else _runtime()
    configure_logging(rt.settings.log_level)
    threads = rt.settings.worker_threads
    if threads < 1:
        print("error: BRIDGE_WORKER_THREADS must be at least 1", file=sys.stderr)
        return 2
    stop = threading.Event()
    # Every loop finishes its current job and stops (a job cut off would only wait out its lease).
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return run_workers(rt, all_handlers(rt), threads, stop)


def _positive_int(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def cmd_db_upgrade(args) -> int:
    from bridge.ledger import schema
    rt = _runtime()
    schema.upgrade(rt.engine)
    print(f"database at revision {schema.current_revision(rt.engine)}")
    return 0


def cmd_tokens_create(args) -> int:
    from bridge.ledger.tokens import create_token
    rt = _runtime()
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
    rt = _runtime()
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
    rt = _runtime()
    if not rt.settings.license_webhook_url or not rt.settings.license_webhook_secret:
        print("error: set LICENSE_WEBHOOK_URL and LICENSE_WEBHOOK_SECRET first", file=sys.stderr)
        return 2
    with rt.sessions.begin() as session:
        n = resend_undelivered(session, rt.clock(), license_id=args.license)
    print(f"queued {n} undelivered notice(s) for delivery")
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

    policy = sub.add_parser("policy", help="refund policies").add_subparsers(dest="policy_command", required=True)
    s = policy.add_parser("check", help="validate policy files")
    s.add_argument("file", nargs="?")
    s.set_defaults(func=cmd_policy_check)
    s = policy.add_parser("evaluate", help="decide a hypothetical request from a JSON file")
    s.add_argument("file")
    s.set_defaults(func=cmd_policy_evaluate)

    events = sub.add_parser("events", help="stored webhook events").add_subparsers(dest="events_command", required=True)
    s = events.add_parser("replay", help="process a stored event again")
    s.add_argument("event_id")
    s.add_argument("--provider", choices=provider_names())
    s.set_defaults(func=cmd_events_replay)

    notices = sub.add_parser("notices", help="license notices to the merchant's app").add_subparsers(
        dest="notices_command", required=True)
    s = notices.add_parser("resend", help="deliver again every notice whose delivery ended undelivered")
    s.add_argument("--license", help="only this license's notices")
    s.set_defaults(func=cmd_notices_resend)

    s = sub.add_parser("demo", help="a small shop's day against local fake providers")
    s.add_argument("--keep", action="store_true", help="keep the demo database")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
