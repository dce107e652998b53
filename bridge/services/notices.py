"""The outbox of license notices to the merchant's app (Standard Webhooks messages).

A notice is a row written in the same transaction as the license change, with a stable id
(the ``webhook-id``) derived from what caused it, so the same change never makes two different
notices; the delivery job for it is written with it."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bridge.ledger import insert_once
from bridge.ledger.jobs import enqueue
from bridge.ledger.models import Job, License, OutboundMessage

DELIVER_NOTICE = "deliver_notice"
NOTICE_MAX_ATTEMPTS = 40  # with the backoff capped at an hour: more than a day of retries


def _msg_id(license_id: str, type_: str, cause: str) -> str:
    return "msg_" + hashlib.sha256(f"{license_id}|{type_}|{cause}".encode()).hexdigest()[:32]


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S") + (f".{value.microsecond:06d}" if value.microsecond else "") + "Z"


def notify(session: Session, lic: License, order_id: str, type_: str, cause: str, reason: str,
           occurred_at: datetime, now: datetime) -> bool:
    """Write the notice once per (license, type, cause). True if new.

    The license knows its last notice (``seq``, ``last_notice_id``, ``last_notice_type``): the
    new one is numbered after it without reading the license's notices. Its id is derived from
    what caused it, so one that exists already is not written again (the INSERT does nothing).
    Two transactions numbering a notice of the same license from the same reading cannot both
    commit: (license_id, seq) is unique."""
    msg_id = _msg_id(lic.license_id, type_, cause)
    seq = (lic.seq or 0) + 1
    body = {"type": type_, "license_id": lic.license_id, "order_id": order_id, "item_id": lic.item_id,
            "reason": reason, "occurred_at": _iso(occurred_at)}
    # Neither row refers to the license's: its change (status, and the notice numbers set
    # below) is written once, at the caller's flush, not once before each statement here.
    with session.no_autoflush:
        stmt = insert_once.statement(OutboundMessage.__table__, ("id",), session.get_bind().dialect.name)
        written = session.execute(stmt, {"id": msg_id, "license_id": lic.license_id, "seq": seq, "type": type_,
                                         "body": body, "created_at": now, "attempts": 0}).rowcount
        if written != 1:
            return False
        lic.seq, lic.last_notice_id, lic.last_notice_type = seq, msg_id, type_
        enqueue(session, DELIVER_NOTICE, msg_id, now, dedupe_key=f"notice:{msg_id}",
                max_attempts=NOTICE_MAX_ATTEMPTS)
    return True


def signing_key(secret: str) -> bytes:
    """Standard Webhooks secrets are ``whsec_<base64 key>``."""
    raw = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    return base64.b64decode(raw)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(signing_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def encode(message: OutboundMessage) -> bytes:
    return json.dumps(message.body, separators=(",", ":"), sort_keys=True).encode()


def resend_undelivered(session: Session, now: datetime, license_id: Optional[str] = None) -> int:
    """Give every undelivered notice whose delivery job has ended (its attempts ran out, or it
    ran while no ``LICENSE_WEBHOOK_URL`` was set) a fresh delivery job; ``bridge notices
    resend`` runs it once the merchant's app is back. Their order per license is kept by the
    delivery itself. Returns how many were rescheduled."""
    q = select(OutboundMessage.id).where(OutboundMessage.delivered_at.is_(None))
    if license_id is not None:
        q = q.where(OutboundMessage.license_id == license_id)
    ids = list(session.execute(q).scalars())
    if not ids:
        return 0
    # The job's dedupe key makes it unique for ever: revive the ended job rather than add one.
    res = session.execute(
        update(Job).where(Job.dedupe_key.in_([f"notice:{i}" for i in ids]), Job.state.in_(("done", "dead")))
        .values(state="ready", run_at=now, attempts=0, last_error=None, finished_at=None,
                lease_token=None, locked_until=None, locked_by=None)
        .execution_options(synchronize_session=False))
    return res.rowcount
