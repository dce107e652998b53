"""Database engine and sessions for PostgreSQL (psycopg 3) and SQLite.

SQLite runs in WAL mode with a busy timeout, and every writing transaction starts with
``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes fails at once with
"database is locked" instead of waiting, and the job queue relies on writers serialising.
Read-only work goes through ``read_only(engine)``, which begins a plain (deferred) transaction.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bridge.ledger import write_behind
from bridge.ledger.append_only import install as install_append_only
from bridge.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 3000  # past this a webhook answers 503 and the provider retries


def make_engine(settings: Settings) -> Engine:
    url = settings.database_url
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            from pathlib import Path
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_pre_ping=False,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url,
        # Each worker loop may hold two connections at once (its job, its heartbeat): size the
        # pool for ``bridge worker --threads N`` so a loop never waits on the pool.
        pool_size=max(5, 2 * settings.worker_threads + 1),
        max_overflow=5,
        # No pre-ping: it is a round trip on every checkout (~15% of a webhook's cost, see
        # bench/). A connection that died with a restarted server fails its first statement;
        # SQLAlchemy then invalidates the whole pool, that one request answers 503 (the
        # provider retries) and the next ones reconnect. Workers retry their jobs likewise.
        pool_pre_ping=False,
        pool_recycle=1800,
        pool_timeout=5,
        connect_args={"connect_timeout": 3},
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every test
        # Let SQLAlchemy's "begin" hook below emit BEGIN itself (pysqlite's own is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=FULL")   # durability of every commit: money
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover
        # Readers (see ``read_only``) take a plain BEGIN: in WAL mode they never wait for the
        # writer, and they must not queue for the write lock behind busy workers.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("bridge_read_only") else "BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return write_behind.install(install_append_only(sessionmaker(bind=engine, expire_on_commit=False, future=True)))


def read_only(engine: Engine) -> Engine:
    """The same pool, for transactions that only read (a plain BEGIN on SQLite)."""
    return engine.execution_options(bridge_read_only=True)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    session = factory()
    try:
        with session.begin():
            yield session
    finally:
        session.close()


def keep_loaded(session: Session) -> None:
    """Until this transaction ends, hold every object the session loads or writes.

    A session's identity map holds its objects weakly: an order or payment one step loaded
    and let go is read again by the next step that asks ``session.get`` for it (applying a
    refund read its payment three times). Held here, the next ``get`` is a dictionary look-up."""
    session.info.setdefault("bridge_keep", [])


@event.listens_for(Session, "loaded_as_persistent")
@event.listens_for(Session, "pending_to_persistent")
@event.listens_for(Session, "detached_to_persistent")  # written by rows.add_now
def _keep(session: Session, instance) -> None:
    kept = session.info.get("bridge_keep")
    if kept is not None:
        kept.append(instance)


@event.listens_for(Session, "after_transaction_end")
def _let_go(session: Session, transaction) -> None:
    if transaction.parent is None:  # the outermost transaction (a savepoint keeps them)
        session.info.pop("bridge_keep", None)

