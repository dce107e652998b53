"""The ``fetch_payment`` job: the money of a payment the bridge knows only from an event that
describes it (a Checkout Session, an invoice), asked of its provider and applied as an event.

The ledger queues it when such a payment is booked without a money event (the provider says
so through ``follow_ups``); a charge event arriving first makes it a no-op. The provider call
is made outside any transaction (``rt.reads``), as for the other follow-up fetches.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from bridge.ledger.apply import apply_parsed
from bridge.ledger.effects import LedgerEffects
from bridge.ledger.models import Payment
from bridge.runtime import Runtime
from bridge.worker.queue import ClaimedJob


def fetch_payment(rt: Runtime, job: ClaimedJob, session: Session, *, effects: LedgerEffects) -> None:
    with rt.reads() as s:
        seen = s.get(Payment, int(job.ref_id))
        if seen is None or seen.captured:  # merged away, or its money event came meanwhile
            return
        s.expunge(seen)
    now = rt.clock()
    # LookupError (no money taken yet) and provider errors fail the job: retried with backoff.
    found = rt.providers[seen.provider].fetch_payment(seen, now)
    if found is None:
        return
    row = session.get(Payment, int(job.ref_id))
    if row is not None and row.captured:
        return
    apply_parsed(effects, session, found, now)
