"""``GET /api/v1/reconciliation``: totals, discrepancies, and the ledger lines as CSV."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timezone

from flask import Response, current_app, jsonify, request

from bridge.ledger import reconciliation as rec
from bridge.ledger.views import iso
from bridge.web.api import bp
from bridge.web.auth import require
from bridge.web.errors import ApiError


def _day(name: str) -> datetime:
    raw = request.args.get(name)
    if not raw:
        raise ApiError(422, "invalid_field", f"{name}: a date (YYYY-MM-DD) is required", field=name)
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time(), timezone.utc)
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, "invalid_field", f"{name}: not a date: {raw!r}", field=name)
    if value.tzinfo is None:
        raise ApiError(422, "invalid_field", f"{name}: a time needs a zone (Z)", field=name)
    return value.astimezone(timezone.utc)


@bp.get("/reconciliation")
@require("finance:read")
def reconciliation():
    rt = current_app.extensions["bridge"]
    start, end = _day("from"), _day("to")
    if end <= start:
        raise ApiError(422, "invalid_field", "to: must be after from", field="to")
    provider = request.args.get("provider")
    if provider is not None and provider not in rt.providers:
        raise ApiError(422, "invalid_field", f"provider: one of {', '.join(rt.providers)}", field="provider")
    currency = request.args.get("currency")
    period = rec.Period(start, end, provider, currency.upper() if currency else None)
    want_csv = request.args.get("format") == "csv" or request.accept_mimetypes.best == "text/csv"
    with rt.reads() as session:
        if want_csv:
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(["occurred_at", "provider", "kind", "amount", "currency", "order_id", "provider_ref", "effect_key"])
            for row in rec.lines(session, period):
                w.writerow([iso(row[0]), *row[1:]])
            return Response(buf.getvalue(), mimetype="text/csv")
        body = {"from": request.args["from"], "to": request.args["to"], "totals": rec.totals(session, period),
                "discrepancies": rec.discrepancies(session, period, rt.clock())}
    return jsonify(body)
