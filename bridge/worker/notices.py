"""Delivering license notices to ``LICENSE_WEBHOOK_URL``: Standard Webhooks, retried with
backoff until a 2xx, in order per license.

A notice goes out only after every earlier notice of its license was accepted. While an earlier
notice's own job is still to run, this one waits for it; an earlier notice whose job has ended
without delivering it (its attempts ran out, or it ran while no URL was set) is sent first, by
this job, so a notice is never held back for ever by one that nobody will send."""
from __future__ import annotations

import logging
import time

import requests
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bridge.ledger.models import Job, OutboundMessage
from bridge.ledger.reads import read
from bridge.runtime import Runtime
from bridge.services.notices import encode, sign
from bridge.worker.queue import ClaimedJob
from bridge.worker.runner import Postpone

log = logging.getLogger("bridge.worker.notices")

# Built once (rows, not objects: only read). The undelivered messages of a message's license up
# to it (it among them unless delivered), in one read; whether one of those still has a job to run.
_M, _J = OutboundMessage.__table__, Job.__table__
_THIS = _M.alias("this")
_DUE = (select(_M).join(_THIS, (_THIS.c.id == bindparam("id")) & (_M.c.license_id == _THIS.c.license_id)
                        & (_M.c.seq <= _THIS.c.seq))
        .where(_M.c.delivered_at.is_(None)).order_by(_M.c.seq))
_WAITING = select(_J.c.id).where(_J.c.dedupe_key.in_(bindparam("keys", expanding=True)), _J.c.id != bindparam("job"),
                                 _J.c.state.in_(("ready", "running"))).limit(1)


class DeliveryFailed(Exception):
    pass


def _post(url: str, secret: str, msg_id: str, body: bytes) -> tuple[bool, str]:
    ts = int(time.time())
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(ts),
               "webhook-signature": sign(secret, msg_id, ts, body), "Content-Type": "application/json",
               "User-Agent": "bridge-license-notices"}
    try:
        resp = requests.post(url, data=body, headers=headers, timeout=15, allow_redirects=False)
        return 200 <= resp.status_code < 300, f"HTTP {resp.status_code}"
    except requests.RequestException as err:
        return False, type(err).__name__


def deliver_notice(rt: Runtime, job: ClaimedJob, session: Session) -> None:
    url, secret = rt.settings.license_webhook_url, rt.settings.license_webhook_secret
    with rt.reads() as s:
        due = read(s, _DUE, {"id": job.ref_id})
        if not due or due[-1].id != job.ref_id:  # no such message, or delivered already
            return
        earlier = [m.id for m in due[:-1]]
        waiting = bool(earlier) and read(s, _WAITING, {
            "keys": [f"notice:{mid}" for mid in earlier], "job": job.id}).first() is not None
        batch = [(m.id, encode(m), m.type) for m in due]
    if not url or not secret:
        log.info("notice %s kept in the outbox: LICENSE_WEBHOOK_URL/SECRET not set", job.ref_id)
        return
    if waiting:
        raise Postpone(max(0.2, rt.settings.job_backoff_base_seconds * 2), "waiting for an earlier notice")
    sent = []
    for msg_id, body, msg_type in batch:
        ok, why = _post(url, secret, msg_id, body)
        if not ok:
            # Recorded in a transaction of its own (the job's is rolled back by the failure),
            # with the earlier notices this job did deliver.
            with rt.sessions.begin() as s:
                now = rt.clock()
                for done in sent:
                    row = s.get(OutboundMessage, done)
                    row.attempts, row.delivered_at, row.last_error = row.attempts + 1, now, None
                row = s.get(OutboundMessage, msg_id)
                row.attempts, row.last_error = row.attempts + 1, why
            raise DeliveryFailed(f"notice {msg_id} ({msg_type}) not accepted: {why}")
        sent.append(msg_id)
        log.info("notice %s (%s) delivered", msg_id, msg_type)
    now = rt.clock()
    for msg_id in sent:
        row = session.get(OutboundMessage, msg_id)
        row.attempts += 1
        row.delivered_at, row.last_error = now, None
