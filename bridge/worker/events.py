"""The ``process_event`` job: parse a stored webhook (by its provider) and apply it to the ledger."""
from __future__ import annotations

import json
import logging

from sqlalchemy.orm import Session

from bridge.domain.events import Ignored
from bridge.ledger import event_links
from bridge.ledger.apply import apply_parsed
from bridge.ledger.effects import LedgerEffects
from bridge.ledger.holds import AmountHeld
from bridge.ledger.models import WebhookEvent
from bridge.ledger.refunds import EventParked
from bridge.logs import push_context
from bridge.providers.outcomes import PermanentProviderError
from bridge.providers.payload_errors import PayloadError
from bridge.runtime import Runtime
from bridge.worker.errors import permanent_reason, printable
from bridge.worker.queue import ClaimedJob
from bridge.worker.runner import Reschedule

log = logging.getLogger("bridge.worker.events")

def process_event(rt: Runtime, job: ClaimedJob, session: Session, *, effects: LedgerEffects) -> None:
    with rt.reads() as s:
        stored = s.get(WebhookEvent, int(job.ref_id))
        if stored is None:
            raise LookupError(f"webhook event {job.ref_id} not found")
        provider_name, body = stored.provider, stored.body
        # For this job's records (a thin event's fetch too); the runner undoes it.
        push_context(event_id=stored.provider_event_id)
    provider = rt.providers[provider_name]
    failure = None
    try:
        # Outside the transaction: a thin event's object is fetched here (a provider error
        # fails the job, which is retried with backoff).
        payload = provider.expand(json.loads(body))
    except PayloadError as err:
        failure, payload = err, None
    except PermanentProviderError as err:
        if err.http_status != 404:  # a key or configuration problem: retried, never dropped
            raise
        failure, payload = PayloadError("related_object", f"not found at the provider: {err.code}"), None
    # The row just read, not read again: only this job's holder writes an event's outcome.
    event = session.merge(stored, load=False)
    now = rt.clock()
    try:
        if failure is not None:
            raise failure
        parsed = provider.parse(payload)
    except PayloadError as err:
        # Retrying cannot fix a payload: record it, visible to finance as event_failed.
        event.status, event.error, event.processed_at = "failed", printable(str(err)), now
        log.warning("%s event %s failed to parse: %s", event.provider, event.provider_event_id, printable(str(err)))
        return
    except Exception as err:
        if permanent_reason(err) is None:
            raise
        return _fail(event, permanent_reason(err), now)
    unknown = [e.unknown_value for e in parsed.events if isinstance(e, Ignored) and e.unknown_value]
    note = printable("unknown provider value: " + "; ".join(unknown)) if unknown else None
    if all(isinstance(e, Ignored) for e in parsed.events):
        event.status, event.processed_at, event.error = "ignored", now, note
        log.info("%s event %s (%s) ignored", event.provider, event.provider_event_id, event.event_type)
        return
    try:
        with session.begin_nested():
            touched = apply_parsed(effects, session, parsed, now)
            event_links.link(session, event.id, touched)  # the order's story in the console
    except EventParked as err:
        # Out of order: what it refers to has not arrived. Its partial effects were rolled
        # back (savepoint); it is retried with backoff (the job's attempts bound how long it
        # may wait) and shows as parked meanwhile.
        event.status, event.error = "parked", str(err)[:2000]
        log.info("%s event %s parked: %s", event.provider, event.provider_event_id, err)
        return Reschedule(f"parked: {err}")
    except AmountHeld as held:
        # An amount no real payment can have: its effects were rolled back (savepoint), so
        # nothing is booked and no license or notice moved; finance sees it as a discrepancy.
        event.status, event.error, event.processed_at = "held", printable(str(held)), now
        event.order_ref = printable(held.order_id, 255) if held.order_id else None
        log.warning("%s event %s held: %s", event.provider, event.provider_event_id, printable(str(held)))
        return
    except Exception as err:
        if permanent_reason(err) is None:
            raise
        return _fail(event, permanent_reason(err), now)
    event.status, event.processed_at, event.error = "processed", now, note
    log.info("%s event %s (%s) processed", event.provider, event.provider_event_id, event.event_type)


def _fail(event: WebhookEvent, reason: str, now) -> None:
    """Content that can never be processed: failed at once, not retried for an hour."""
    event.status, event.error, event.processed_at = "failed", printable(reason), now
    log.warning("%s event %s failed: %s", event.provider, printable(event.provider_event_id, 255), printable(reason))
