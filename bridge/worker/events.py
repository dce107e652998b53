"""The ``process_event`` job: parse a stored webhook (by its provider) and apply it to the ledger.

One job at a time (``ProcessEvent.__call__``), or a claim of several in one transaction
(bridge/worker/batch.py): ``prepare`` reads all their stored events in one statement and expands
thin ones (a provider fetch) before that transaction opens, ``apply`` applies one of them in it.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Optional, Union

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bridge.domain.events import Ignored
from bridge.ledger import driver_sql, event_outcomes
from bridge.ledger.apply import apply_parsed
from bridge.ledger.effects import LedgerEffects
from bridge.ledger.holds import AmountHeld
from bridge.ledger.locks import LockBusy
from bridge.ledger.models import WebhookEvent
from bridge.ledger.refunds import EventParked
from bridge.logs import pop_context, push_context
from bridge.providers.outcomes import PermanentProviderError
from bridge.providers.payload_errors import PayloadError
from bridge.runtime import Runtime
from bridge.worker.errors import permanent_reason, printable
from bridge.worker.outcomes import Reschedule, UndoTransaction, savepoints_off
from bridge.worker.queue import ClaimedJob

log = logging.getLogger("bridge.worker.events")


# What applying an event reads of its stored row; a batch reads its events as rows, not objects
# (nothing changes them: their outcomes are written by event_outcomes).
_W = WebhookEvent.__table__
_STORED = (select(_W.c.id, _W.c.provider, _W.c.provider_event_id, _W.c.event_type, _W.c.body)
           .where(_W.c.id.in_(bindparam("ids", expanding=True))))


@dataclass
class Loaded:
    """A stored event read and expanded, ready to apply (``failure``: a payload that cannot be)."""
    stored: WebhookEvent  # or its row of ``_STORED``
    payload: Optional[dict]
    failure: Optional[PayloadError]


class ProcessEvent:
    """The handler of ``process_event`` jobs, given the services' effects the ledger calls back."""

    # For the batch runner: when ``apply`` raises, it has written nothing (what it writes before
    # its outcome is known is in its own savepoint, below), so it needs no savepoint around it.
    rolls_back_on_error = True
    # And in a batch its jobs may run without any savepoint: one that would need its own raises
    # ``UndoTransaction`` (``_apply_effects``).
    runs_without_savepoints = True

    def __init__(self, effects: LedgerEffects):
        self.effects = effects

    def __call__(self, rt: Runtime, job: ClaimedJob, session: Session) -> Optional[Reschedule]:
        with rt.reads() as s:
            stored = s.get(WebhookEvent, int(job.ref_id))
            if stored is None:
                raise LookupError(f"webhook event {job.ref_id} not found")
            # For this job's records (a thin event's fetch too); the runner undoes it.
            push_context(event_id=stored.provider_event_id)
        result = _apply(rt, self.effects, session, _expand(rt, stored))
        event_outcomes.write(session)
        return result

    def prepare(self, rt: Runtime, jobs: list[ClaimedJob], session: Session) -> dict[int, Union[Loaded, Exception]]:
        """Each job's event, read (one SELECT, in a read-only transaction of ``session`` that
        ends here) and expanded outside any transaction; or the exception its run must fail
        with (a missing event, a provider's fetch that failed: retried with backoff)."""
        out: dict[int, Union[Loaded, Exception]] = {}
        ids = {}
        for job in jobs:
            try:
                ids[job.id] = int(job.ref_id)
            except ValueError as err:
                out[job.id] = err
        with session.begin():
            conn = session.connection(execution_options={"bridge_read_only": True})  # never the write lock
            by_id = {row.id: row for row in driver_sql.rows(conn, _STORED, {"ids": sorted(set(ids.values()))})}
        for job_id, event_pk in ids.items():
            stored = by_id.get(event_pk)
            if stored is None:
                out[job_id] = LookupError(f"webhook event {event_pk} not found")
                continue
            token = push_context(job_id=job_id, event_id=stored.provider_event_id)
            try:
                out[job_id] = _expand(rt, stored)
            except Exception as err:  # noqa: BLE001 - the job's run raises it, as one run would
                out[job_id] = err
            finally:
                pop_context(token)
        return out

    @staticmethod
    def before_commit(session: Session) -> None:
        """For the batch runner: the outcomes its events recorded, in one statement per kind."""
        event_outcomes.write(session)

    def apply(self, rt: Runtime, job: ClaimedJob, session: Session,
              prepared: Union[Loaded, Exception]) -> Optional[Reschedule]:
        """The job's event, prepared by ``prepare``, applied in ``session``'s transaction."""
        if isinstance(prepared, Exception):
            raise prepared
        push_context(event_id=prepared.stored.provider_event_id)  # undone by the runner
        return _apply(rt, self.effects, session, prepared)


def _expand(rt: Runtime, stored: WebhookEvent) -> Loaded:
    """Outside any transaction: a thin event's object is fetched here (a provider error fails
    the job, which is retried with backoff)."""
    provider = rt.providers[stored.provider]
    try:
        return Loaded(stored, provider.expand(json.loads(stored.body)), None)
    except PayloadError as err:
        return Loaded(stored, None, err)
    except PermanentProviderError as err:
        if err.http_status != 404:  # a key or configuration problem: retried, never dropped
            raise
        return Loaded(stored, None, PayloadError("related_object", f"not found at the provider: {err.code}"))


def _apply(rt: Runtime, effects: LedgerEffects, session: Session, loaded: Loaded) -> Optional[Reschedule]:
    """Apply one event; its outcome is recorded (``event_outcomes``), written with the others
    of the transaction (``ProcessEvent.__call__``, or the batch's end)."""
    event, payload, failure = loaded.stored, loaded.payload, loaded.failure
    provider = rt.providers[event.provider]
    # Only this job's holder writes an event's outcome: the row read is not read again.
    now = rt.clock()
    try:
        if failure is not None:
            raise failure
        parsed = provider.parse(payload)
    except PayloadError as err:
        # Retrying cannot fix a payload: record it, visible to finance as event_failed.
        event_outcomes.record(session, event.id, status="failed", error=printable(str(err)), processed_at=now)
        log.warning("%s event %s failed to parse: %s", event.provider, event.provider_event_id, printable(str(err)))
        return
    except Exception as err:
        if permanent_reason(err) is None:
            raise
        return _fail(session, event, permanent_reason(err), now)
    unknown = [e.unknown_value for e in parsed.events if isinstance(e, Ignored) and e.unknown_value]
    note = printable("unknown provider value: " + "; ".join(unknown)) if unknown else None
    if all(isinstance(e, Ignored) for e in parsed.events):
        event_outcomes.record(session, event.id, status="ignored", processed_at=now, error=note)
        log.info("%s event %s (%s) ignored", event.provider, event.provider_event_id, event.event_type)
        return
    try:
        touched = _apply_effects(effects, session, parsed, now)
    except UndoTransaction:
        raise
    except EventParked as err:
        # Out of order: what it refers to has not arrived. Its partial effects were rolled
        # back (savepoint); it is retried with backoff (the job's attempts bound how long it
        # may wait) and shows as parked meanwhile.
        event_outcomes.record(session, event.id, status="parked", error=str(err)[:2000])
        log.info("%s event %s parked: %s", event.provider, event.provider_event_id, err)
        return Reschedule(f"parked: {err}")
    except AmountHeld as held:
        # An amount no real payment can have: its effects were rolled back (savepoint), so
        # nothing is booked and no license or notice moved; finance sees it as a discrepancy.
        event_outcomes.record(session, event.id, status="held", error=printable(str(held)), processed_at=now,
                              order_ref=printable(held.order_id, 255) if held.order_id else None)
        log.warning("%s event %s held: %s", event.provider, event.provider_event_id, printable(str(held)))
        return
    except Exception as err:
        if permanent_reason(err) is None:
            raise
        return _fail(session, event, permanent_reason(err), now)
    event_outcomes.link(session, event.id, touched)  # the order's story in the console
    event_outcomes.record(session, event.id, status="processed", processed_at=now, error=note)
    log.info("%s event %s (%s) processed", event.provider, event.provider_event_id, event.event_type)


def _apply_effects(effects: LedgerEffects, session: Session, parsed, now) -> set[int]:
    """The event's effects, in a savepoint: an event that parks, is held or fails leaves
    nothing written. In a batch's first try (``savepoints_off``) without one, which saves a
    SAVEPOINT and a RELEASE per event (and PostgreSQL a subtransaction): any failure then
    undoes the whole transaction, and the batch runs again with savepoints."""
    if savepoints_off(session):
        try:
            return apply_parsed(effects, session, parsed, now)
        except LockBusy as busy:
            if busy.nothing_written:  # its keys were busy before it wrote: nothing to undo
                raise
            raise UndoTransaction(busy) from busy
        except Exception as err:
            raise UndoTransaction(err) from err
    with session.begin_nested():
        return apply_parsed(effects, session, parsed, now)


def _fail(session: Session, event: WebhookEvent, reason: str, now) -> None:
    """Content that can never be processed: failed at once, not retried for an hour."""
    event_outcomes.record(session, event.id, status="failed", error=printable(reason), processed_at=now)
    log.warning("%s event %s failed: %s", event.provider, printable(event.provider_event_id, 255), printable(reason))
