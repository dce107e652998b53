"""The ``process_event`` job: parse a stored webhook (by its provider) and apply it to the ledger."""
from __future__ import annotations

import json
import logging

from sqlalchemy.orm import Session

from bridge.domain.events import FeeReported, Ignored, PaymentSucceeded
from bridge.ledger.apply import apply_parsed
from bridge.ledger.effects import LedgerEffects
from bridge.ledger.models import WebhookEvent
from bridge.ledger.refunds import EventParked
from bridge.logs import push_context
from bridge.providers.payload_errors import PayloadError
from bridge.runtime import Runtime
from bridge.worker.queue import ClaimedJob
from bridge.worker.runner import Reschedule

log = logging.getLogger("bridge.worker.events")


def _may_park(parsed) -> bool:
    """Whether applying it can raise ``EventParked``: anything about a payment not known yet.
    A payment itself never parks, nor a fee about the charge the same event pays."""
    charges = {e.charge_id for e in parsed.events if isinstance(e, PaymentSucceeded) and e.charge_id}
    return not all(isinstance(e, (PaymentSucceeded, Ignored))
                   or (isinstance(e, FeeReported) and e.charge_id in charges) for e in parsed.events)


def process_event(rt: Runtime, job: ClaimedJob, session: Session, *, effects: LedgerEffects) -> None:
    event = session.get(WebhookEvent, int(job.ref_id))
    if event is None:
        raise LookupError(f"webhook event {job.ref_id} not found")
    push_context(event_id=event.provider_event_id)  # for this job's records; the runner undoes it
    now = rt.clock()
    try:
        parsed = rt.providers[event.provider].parse(json.loads(event.body))
    except PayloadError as err:
        # Retrying cannot fix a payload: record it, visible to finance as event_failed.
        event.status, event.error, event.processed_at = "failed", str(err)[:2000], now
        log.warning("%s event %s failed to parse: %s", event.provider, event.provider_event_id, err)
        return
    if all(isinstance(e, Ignored) for e in parsed.events):
        event.status, event.processed_at = "ignored", now
        log.info("%s event %s (%s) ignored", event.provider, event.provider_event_id, event.event_type)
        return
    if not _may_park(parsed):
        # A payment never parks (it is kept unmatched): no savepoint to roll back to.
        apply_parsed(effects, session, parsed, now)
        event.status, event.processed_at, event.error = "processed", now, None
        log.info("%s event %s (%s) processed", event.provider, event.provider_event_id, event.event_type)
        return
    try:
        with session.begin_nested():
            apply_parsed(effects, session, parsed, now)
    except EventParked as err:
        # Out of order: what it refers to has not arrived. Its partial effects were rolled
        # back (savepoint); it is retried with backoff (the job's attempts bound how long it
        # may wait) and shows as parked meanwhile.
        event.status, event.error = "parked", str(err)[:2000]
        log.info("%s event %s parked: %s", event.provider, event.provider_event_id, err)
        return Reschedule(f"parked: {err}")
    event.status, event.processed_at, event.error = "processed", now, None
    log.info("%s event %s (%s) processed", event.provider, event.provider_event_id, event.event_type)
