"""The console's pages: the month, an order's story, search, the review queue and failed work,
with their form posts (review decisions, retries). Reads come from ``bridge.ledger`` and
``bridge.services`` modules; writes go through the same service functions as the API and CLI."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from flask import Response, abort, current_app, flash, g, redirect, render_template, request, url_for

from bridge.ledger import month as month_reads, reconciliation as rec
from bridge.ledger.failed_work import PAYLOAD_LIMIT, failed_work, retry_job, stored_headers
from bridge.ledger.models import RefundRequest, WebhookEvent
from bridge.ledger.orders import get_order
from bridge.ledger.replay import replay_event
from bridge.ledger.search import find_orders
from bridge.ledger.story import MAX_LIMIT, TIMELINE_LIMIT, order_story
from bridge.services import refund_requests as rr_service
from bridge.services.notices import resend_undelivered
from bridge.services.review_queue import pending
from bridge.web.console import bp
from bridge.web.console.access import CHART_CSP, current_user, needs
from bridge.web.console.chart import month_chart
from bridge.web.console.fmt import parse_major
from bridge.web.finance import ledger_csv


def _rt():
    return current_app.extensions["bridge"]


# -- the month ---------------------------------------------------------------------------

def _month_arg() -> tuple[int, int]:
    raw = request.args.get("month") or ""
    if not raw:
        now = _rt().clock()
        return now.year, now.month
    try:
        year, month = (int(x) for x in raw.split("-"))
        if not (1 <= month <= 12 and 2000 <= year <= 2200) or len(raw) != 7:
            raise ValueError
    except ValueError:
        abort(400, description=f"month: expected YYYY-MM, got {raw[:20]!r}")
    return year, month


def _period(year: int, month: int) -> rec.Period:
    start = datetime(year, month, 1, tzinfo=timezone.utc)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc)
    return rec.Period(start, end)


def _shift(year: int, month: int, by: int) -> str:
    m = year * 12 + (month - 1) + by
    return f"{m // 12:04d}-{m % 12 + 1:02d}"


def _name(month: str) -> str:
    return datetime.strptime(month, "%Y-%m").strftime("%B %Y")


@bp.get("/month")
@needs("month")
def month():
    year, mon = _month_arg()
    period = _period(year, mon)
    rt = _rt()
    with rt.reads() as s:
        totals = rec.totals(s, period)
        days = month_reads.daily(s, period)
        discrepancies = rec.discrepancies(s, period, rt.clock())
        payouts = month_reads.payouts(s, period)
    prev, nxt = _shift(year, mon, -1), _shift(year, mon, 1)
    return render_template("console/month.html", title=f"{datetime(year, mon, 1):%B %Y}",
                           month=f"{year:04d}-{mon:02d}", prev=prev, next=nxt,
                           prev_name=_name(prev), next_name=_name(nxt),
                           totals=totals, days=days, discrepancies=discrepancies, payouts=payouts)


@bp.get("/month.csv")
@needs("month")
def month_csv():
    year, mon = _month_arg()
    with _rt().reads() as s:
        body = ledger_csv(s, _period(year, mon))
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="ledger-{year:04d}-{mon:02d}.csv"'})


@bp.get("/month/chart.svg")
@needs("month")
def month_chart_svg():
    year, mon = _month_arg()
    currency = (request.args.get("currency") or "").upper()
    if len(currency) != 3 or not currency.isalpha():
        abort(400, description="currency: an ISO 4217 code")
    with _rt().reads() as s:
        days = month_reads.daily(s, _period(year, mon)).get(currency, [])
    g.console_csp = CHART_CSP
    narrow = request.args.get("size") == "narrow"
    return Response(month_chart(year, mon, currency, days, narrow=narrow), mimetype="image/svg+xml")


# -- orders and search -------------------------------------------------------------------

@bp.get("/orders/<path:order_id>")
@needs("orders")
def order(order_id: str):
    rt = _rt()
    with rt.reads() as s:
        o = get_order(s, order_id)
        if o is None:
            return render_template("console/error.html", title="No such order",
                                   message=f"There is no order {order_id!r}."), 404
        whole = request.args.get("all") == "1"
        story = order_story(s, o, rt.clock(), limit=MAX_LIMIT if whole else TIMELINE_LIMIT)
    return render_template("console/order.html", title=f"Order {o.order_id}", story=story, o=story.order,
                           whole=whole)


@bp.get("/search")
@needs("search")
def search():
    q = (request.args.get("q") or "").strip()[:320]
    results = None
    if q:
        with _rt().reads() as s:
            results = find_orders(s, q)
    return render_template("console/search.html", title="Search", q=q, results=results)


# -- the review queue --------------------------------------------------------------------

@bp.get("/review")
@needs("review")
def review_queue():
    with _rt().reads() as s:
        rows = pending(s)
    return render_template("console/review.html", title="Review queue", rows=rows, errors={})


@bp.post("/review/<rr_id>")
@needs("review")
def review(rr_id: str):
    rt = _rt()
    outcome = request.form.get("outcome")
    note = (request.form.get("note") or "").strip() or None
    doc = {"outcome": outcome, "note": note}
    error, status = None, 200
    try:
        with rt.sessions.begin() as s:
            rr = s.get(RefundRequest, rr_id)
            if rr is None:
                error, status = f"There is no refund request {rr_id}.", 404
            else:
                if outcome == "approved":
                    try:
                        doc["refund_amount"] = parse_major(request.form.get("amount", ""), rr.currency or "")
                    except ValueError as err:
                        raise rr_service.RequestError("invalid", "invalid_field", f"Amount: {err}", "refund_amount")
                # The very function behind POST /api/v1/refund-requests/{id}/review.
                rr_service.review(s, rt.policies, rr, doc, rt.clock(), reviewer=f"token:{current_user().token_id}",
                                  max_attempts=rt.settings.job_max_attempts)
    except rr_service.RequestError as err:
        error, status = err.message, {"not_found": 404, "conflict": 409, "invalid": 422}[err.kind]
    if error is None:
        verb = "approved" if outcome == "approved" else "denied"
        flash(f"Refund request {rr_id} {verb}." + (" The refund is queued for the provider." if verb == "approved" else ""))
        return redirect(url_for("console.review_queue"), code=303)
    with rt.reads() as s:
        rows = pending(s)
    # Shown beside the request's form, or above the queue when it has left the queue.
    listed = any(p.request.id == rr_id for p in rows)
    return render_template("console/review.html", title="Review queue", rows=rows,
                           errors={rr_id: error} if listed else {}, top_error=None if listed else error,
                           form={"id": rr_id, **request.form}), status


# -- failed work -------------------------------------------------------------------------

def _payload(ev: WebhookEvent) -> str:
    raw = ev.body[:PAYLOAD_LIMIT]
    try:
        text = json.dumps(json.loads(ev.body), indent=2, sort_keys=True, ensure_ascii=False)
        return text if len(text) <= PAYLOAD_LIMIT else text[:PAYLOAD_LIMIT] + "\n... (cut)"
    except ValueError:
        return raw.decode("utf-8", "replace")


@bp.get("/failed")
@needs("failed")
def failed():
    with _rt().reads() as s:
        work = failed_work(s)
        events = [(ev, _payload(ev), stored_headers(ev)) for ev in work.events]
    return render_template("console/failed.html", title="Failed work", events=events, jobs=work.jobs,
                           job_refs=work.job_refs, notices=work.notices, notices_configured=bool(_rt().settings.license_webhook_url))


@bp.post("/failed/events/<int:event_pk>/retry")
@needs("failed")
def retry_event(event_pk: int):
    rt = _rt()
    with rt.reads() as s:
        ev = s.get(WebhookEvent, event_pk)
        ident = (ev.provider, ev.provider_event_id) if ev else None
    if ident is None:
        return render_template("console/error.html", title="No such event", message="That event is gone."), 404
    replay_event(rt, ident[1], ident[0])  # what ``bridge events replay`` runs
    flash(f"{ident[0].capitalize()} event {ident[1]} queued for processing again.")
    return redirect(url_for("console.failed"), code=303)


@bp.post("/failed/jobs/<int:job_id>/retry")
@needs("failed")
def retry_dead_job(job_id: int):
    rt = _rt()
    with rt.sessions.begin() as s:
        ok = retry_job(s, job_id, rt.clock())
    if not ok:
        return render_template("console/error.html", title="Not retried",
                               message=f"Job {job_id} is not dead (already retried, or gone)."), 409
    flash(f"Job {job_id} queued again.")
    return redirect(url_for("console.failed"), code=303)


@bp.post("/failed/notices/<path:license_id>/resend")
@needs("failed")
def resend_notices(license_id: str):
    rt = _rt()
    with rt.sessions.begin() as s:
        n = resend_undelivered(s, rt.clock(), license_id=license_id)  # what ``bridge notices resend`` runs
    flash(f"{n} undelivered notice(s) of license {license_id} queued for delivery.")
    return redirect(url_for("console.failed"), code=303)
