"""``/api/v1/refund-requests``: file a request (decided at once by the order's policy), read
it, list by status, and review the manual queue. Refunds run in the worker, never here."""
from __future__ import annotations

from flask import current_app, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bridge.ledger.models import Order, Refund, RefundRequest
from bridge.ledger.views import refund_request_view
from bridge.services import refund_requests as service
from bridge.web.api import bp
from bridge.web.auth import require
from bridge.web.body import json_object, list_args
from bridge.web.errors import ApiError

STATUSES = ("approved", "denied", "review", "refunding", "refunded", "failed")
_HTTP = {"not_found": 404, "conflict": 409, "invalid": 422}


def _rt():
    return current_app.extensions["bridge"]


def _view(session, rr: RefundRequest) -> dict:
    refunds = session.execute(select(Refund).where(Refund.refund_request_id == rr.id).order_by(Refund.id)).scalars().all()
    order = session.get(Order, rr.order_pk)
    return refund_request_view(rr, refunds, order.order_id if order else None)


def _raise(err: service.RequestError):
    raise ApiError(_HTTP[err.kind], err.code, err.message, field=err.field)


@bp.post("/refund-requests")
@require("refunds:write")
def create_refund_request():
    rt = _rt()
    doc = json_object()
    key = request.headers.get("Idempotency-Key")
    if key is not None and (not key.strip() or len(key) > 255):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters")
    now = rt.clock()
    try:
        with rt.sessions.begin() as session:
            result = service.create(session, rt.policies, doc, key, now, rt.settings.job_max_attempts)
            body = _view(session, result.request)
    except service.RequestError as err:
        _raise(err)
    except IntegrityError:
        # Two calls with the same Idempotency-Key at once: the loser answers with the winner's result.
        with rt.reads() as session:
            prior = session.execute(select(RefundRequest).where(RefundRequest.idempotency_key == key)).scalar_one_or_none()
            if prior is None:
                raise
            return jsonify(_view(session, prior)), 201
    return jsonify(body), 201


@bp.get("/refund-requests/<rr_id>")
@require("read")
def get_refund_request(rr_id: str):
    rt = _rt()
    with rt.reads() as session:
        rr = session.get(RefundRequest, rr_id)
        if rr is None:
            raise ApiError(404, "refund_request_not_found", f"no refund request {rr_id!r}")
        return jsonify(_view(session, rr))


@bp.get("/refund-requests")
@require("read")
def list_refund_requests():
    rt = _rt()
    status, limit = list_args(STATUSES)
    with rt.reads() as session:
        q = select(RefundRequest).order_by(RefundRequest.created_at, RefundRequest.id).limit(limit)
        if status:
            q = q.where(RefundRequest.status == status)
        rows = session.execute(q).scalars().all()
        return jsonify({"refund_requests": [_view(session, rr) for rr in rows]})


@bp.post("/refund-requests/<rr_id>/review")
@require("refunds:review")
def review_refund_request(rr_id: str):
    rt = _rt()
    doc = json_object()
    now = rt.clock()
    try:
        with rt.sessions.begin() as session:
            rr = session.get(RefundRequest, rr_id)
            if rr is None:
                raise ApiError(404, "refund_request_not_found", f"no refund request {rr_id!r}")
            service.review(session, rt.policies, rr, doc, now, reviewer=f"token:{g.token_id}",
                           max_attempts=rt.settings.job_max_attempts)
            body = _view(session, rr)
    except service.RequestError as err:
        _raise(err)
    return jsonify(body)
