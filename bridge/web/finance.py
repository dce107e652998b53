"""``GET /api/v1/reconciliation``: totals, discrepancies, and the ledger lines as CSV."""
from __future__ import annotations

import csv
import io

from flask import Response, current_app, request

from bridge.domain.money import major_units
from bridge.ledger import provider_reconciliation as provider_rec
from bridge.ledger import reconciliation as rec
from bridge.ledger import sync_state
from bridge.ledger.views import iso
from bridge.web.api import bp
from bridge.web.auth import require
from bridge.web.contract import operation, respond
from bridge.web.errors import ApiError
from bridge.web.models.finance import ReconciliationQuery, ReconciliationWithRecord


def ledger_csv(session, period: rec.Period, units: str = "minor") -> str:
    """The period's ledger lines as CSV (also the console's month download); ``units="major"``
    writes each amount in its currency's major unit (49.00 USD, 4900 JPY) for accountants."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["occurred_at", "provider", "kind", "amount", "currency", "order_id", "provider_ref", "effect_key"])
    for occurred_at, provider, kind, amount, currency, *rest in rec.lines(session, period):
        shown = major_units(amount, currency) if units == "major" else amount
        w.writerow([iso(occurred_at), provider, kind, shown, currency, *rest])
    return buf.getvalue()


@bp.get("/reconciliation")
@require("finance:read")
@operation(query=ReconciliationQuery, responses={200: ReconciliationWithRecord}, csv=True, tags=("finance",))
def reconciliation(query: ReconciliationQuery):
    """Totals by provider and currency, and discrepancies, for ``from <= time < to``;
    ``format=csv`` (or ``Accept: text/csv``) for the ledger lines."""
    rt = current_app.extensions["bridge"]
    if query.provider is not None and query.provider not in rt.providers:
        raise ApiError(422, "invalid_field", f"provider: one of {', '.join(rt.providers)}", field="provider")
    period = rec.Period(query.from_, query.to, query.provider, query.currency)
    want_csv = query.format == "csv" or (query.format is None and request.accept_mimetypes.best == "text/csv")
    if query.units == "major" and not want_csv:  # the JSON's amounts stay integers (minor units)
        raise ApiError(422, "invalid_field", "units: major units are for the CSV (format=csv); the JSON is in minor "
                       "units", field="units")
    with rt.reads() as session:
        if want_csv:
            return Response(ledger_csv(session, period, query.units or "minor"), mimetype="text/csv")
        body = {"from": request.args["from"], "to": request.args["to"], "totals": rec.totals(session, period),
                "discrepancies": rec.discrepancies(session, period, rt.clock())
                + provider_rec.discrepancies(session, period),
                # How fresh the provider's record is that the comparison used.
                "provider_record": [{"provider": f.provider, "last_sync_at": iso(f.last_started_at),
                                     "last_success_at": iso(f.last_success_at), "last_error": f.last_error}
                                    for f in sync_state.freshness(session)
                                    if query.provider is None or f.provider == query.provider]}
    return respond(ReconciliationWithRecord, body)
