"""The ``itemize_payout`` job: what is in a payout, fetched from its provider once a payout
event said it can be listed (Stripe: an automatic payout reconciled; Paddle: a paid payout,
through its payout reconciliation report). While the provider is still preparing it the job
runs again later (an attempt spent each time); should it give up, the next ``bridge sync``
asks again, since the payout is still without lines."""
from __future__ import annotations

from typing import Optional

from sqlalchemy.orm import Session

from bridge.runtime import Runtime
from bridge.services.payouts import itemize_payout as itemize
from bridge.worker.queue import ClaimedJob
from bridge.worker.runner import Reschedule


def itemize_payout(rt: Runtime, job: ClaimedJob, session: Session) -> Optional[Reschedule]:
    if itemize(rt, session, int(job.ref_id)):
        return None
    return Reschedule("the payout's lines are not ready at the provider yet")
