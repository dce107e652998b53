"""``/api/v1/refund-requests``: file a request (decided at once by the order's policy), read
it, list by status, and review the manual queue. Refunds run in the worker, never here."""
from __future__ import annotations

from flask import current_app, g, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bridge.ledger.models import Order, Refund, RefundRequest
from bridge.ledger.views import refund_request_view
from bridge.services import refund_requests as service
from bridge.web.api import bp
from bridge.web.auth import require
from bridge.web.contract import json_body, operation, respond
from bridge.web.errors import ApiError
from bridge.web.models.policies import DecisionOut
from bridge.web.models.refund_requests import (RefundRequestCreate, RefundRequestList, RefundRequestOut,
                                               RefundRequestQuery, ReviewIn)

STATUSES = ("approved", "denied", "review", "refunding", "refunded", "failed")
_HTTP = {"not_found": 404, "conflict": 409, "invalid": 422}
_IDEMPOTENCY = {"Idempotency-Key": "1-255 printable characters: a retried call with the same key and "
                                   "body answers the first result; another body is a 409"}


def _rt():
    return current_app.extensions["bridge"]


def _view(session, rr: RefundRequest) -> dict:
    refunds = session.execute(select(Refund).where(Refund.refund_request_id == rr.id).order_by(Refund.id)).scalars().all()
    order = session.get(Order, rr.order_pk)
    return refund_request_view(rr, refunds, order.order_id if order else None)


def _raise(err: service.RequestError):
    raise ApiError(_HTTP[err.kind], err.code, err.message, field=err.field)


def _idempotency_key():
    key = request.headers.get("Idempotency-Key")
    if key is not None and (not key.strip() or len(key) > 255 or not key.isprintable()):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable characters",
                       field="Idempotency-Key")
    return key


@bp.post("/refund-requests")
@require("refunds:write")
@operation(body=RefundRequestCreate, responses={201: RefundRequestOut}, headers=_IDEMPOTENCY,
           errors=(404, 409), tags=("refunds",),
           links={201: {"GetRefundRequest": ("get_refund_request", {"rr_id": "$response.body#/id"}),
                        "Review": ("review_refund_request", {"rr_id": "$response.body#/id"}),
                        "GetOrder": ("get_order", {"order_id": "$response.body#/order_id"})}})
def create_refund_request(body: RefundRequestCreate):
    """File a refund request: decided at once by the order's policy; an approved one is refunded
    by the worker."""
    rt = _rt()
    doc = json_body()   # as sent: an Idempotency-Key replay is compared with it
    key = _idempotency_key()
    now = rt.clock()
    try:
        with rt.sessions.begin() as session:
            result = service.create(session, rt.policies, doc, key, now, rt.settings.job_max_attempts)
            out = _view(session, result.request)
    except service.RequestError as err:
        _raise(err)
    except IntegrityError:
        # Two calls with the same Idempotency-Key at once: the loser answers with the winner's result.
        if key is None:
            raise
        with rt.reads() as session:
            prior = session.execute(select(RefundRequest).where(RefundRequest.idempotency_key == key)).scalar_one_or_none()
            if prior is None:
                raise
            out = _view(session, prior)
    return respond(RefundRequestOut, out, 201)


@bp.get("/refund-requests/<rr_id>")
@require("read")
@operation(responses={200: RefundRequestOut}, errors=(404,), tags=("refunds",))
def get_refund_request(rr_id: str):
    """A refund request with its decision and its provider refunds."""
    rt = _rt()
    with rt.reads() as session:
        rr = session.get(RefundRequest, rr_id)
        if rr is None:
            raise ApiError(404, "refund_request_not_found", f"no refund request {rr_id!r}")
        out = _view(session, rr)
    return respond(RefundRequestOut, out)


@bp.get("/refund-requests")
@require("read")
@operation(query=RefundRequestQuery, responses={200: RefundRequestList}, tags=("refunds",))
def list_refund_requests(query: RefundRequestQuery):
    """Refund requests, oldest first (``?status=review``: the manual queue)."""
    rt = _rt()
    with rt.reads() as session:
        q = select(RefundRequest).order_by(RefundRequest.created_at, RefundRequest.id).limit(query.limit)
        if query.status:
            q = q.where(RefundRequest.status == query.status)
        rows = session.execute(q).scalars().all()
        out = {"refund_requests": [_view(session, rr) for rr in rows]}
    return respond(RefundRequestList, out)


@bp.post("/refund-requests/<rr_id>/review")
@require("refunds:review")
@operation(body=ReviewIn, responses={200: RefundRequestOut}, errors=(404, 409), tags=("refunds",))
def review_refund_request(rr_id: str, body: ReviewIn):
    """Approve (all that remains, or ``refund_amount``) or deny a request in ``review``."""
    rt = _rt()
    now = rt.clock()
    try:
        with rt.sessions.begin() as session:
            rr = session.get(RefundRequest, rr_id)
            if rr is None:
                raise ApiError(404, "refund_request_not_found", f"no refund request {rr_id!r}")
            service.review(session, rt.policies, rr, body, now, reviewer=f"token:{g.token_id}",
                           max_attempts=rt.settings.job_max_attempts)
            out = _view(session, rr)
    except service.RequestError as err:
        _raise(err)
    return respond(RefundRequestOut, out)


@bp.post("/refund-quotes")
@require("read")
@operation(body=RefundRequestCreate, responses={200: DecisionOut}, errors=(404, 409), tags=("refunds",))
def quote_refund(body: RefundRequestCreate):
    """The decision a refund request with this body would get now; nothing is stored.

    For the merchant's app to show the buyer before they confirm."""
    rt = _rt()
    try:
        with rt.reads() as session:
            decision = service.quote(session, rt.policies, body, rt.clock())
    except service.RequestError as err:
        _raise(err)
    return respond(DecisionOut, decision.to_dict())
