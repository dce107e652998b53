"""The fake Paddle's reports API, as much as the payout reconciliation report needs
(reference/payouts.md P3), complete enough for paddle-python-sdk 1.16.1 to parse every answer.

Routes (mixed into ``FakePaddle``): ``POST /reports`` (``type`` ``payout_reconciliation``,
``filters`` of ``remittance_reference`` / ``transaction_updated_at`` / ``balance_movement_date``
(mutually exclusive) and ``balance_movement_type``; 201, ``pending``), ``GET /reports``
(``status`` comma list, default pending and ready; ``per_page`` up to 200; paged like every
Paddle list), ``GET /reports/{id}`` (a report turns ``ready`` on the ``report_polls``-th read:
"after a poll or two"), ``GET /reports/{id}/download-url`` (only when ready: a link to
``/report-files/<token>`` that lives 3 minutes on the fake's clock). The file is served
without the API key, like a presigned storage link: an expired link answers 403 with an
S3-like XML body, a request carrying an ``Authorization`` header 400.

Knobs: ``report_polls`` (reads of a report before it is ready; a large number keeps it
pending), ``stale_links`` (the next n links are handed out already past their life, as if the
caller sat on them). Rows are the payouts' balance movements (``paddle_books.pay_out``),
amounts written in major units of their currency.
"""
from __future__ import annotations

import csv
import io
import string
from typing import Any, Optional

from flask import Flask, Response, request

from bridge.domain.money import major_units
from bridge.fakes.paddle_books import _iso

LINK_TTL = 180.0                  # the download URL expires after 3 minutes
_ID_CHARS = string.ascii_lowercase + string.digits
_PRIMARY = ("remittance_reference", "transaction_updated_at", "balance_movement_date")
_FILTERS = _PRIMARY + ("balance_movement_type",)
COLUMNS = ("balance_movement_type", "balance_movement_date", "transaction_id", "adjustment_id",
           "balance_currency_code", "transaction_currency_code", "gross_in_transaction_currency",
           "gross_in_balance_currency", "tax_in_balance_currency", "paddle_fee_in_balance_currency",
           "fx_fee_in_balance_currency", "chargeback_fee_in_balance_currency",
           "payout_rebates_and_fees_in_balance_currency", "balance_movement_in_balance_currency")


def report_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        cur = r["balance_currency_code"]
        writer.writerow([r["balance_movement_type"], r["balance_movement_date"], r["transaction_id"],
                         r["adjustment_id"], cur, r["transaction_currency_code"],
                         major_units(r["gross"], r["transaction_currency_code"]), major_units(r["gross"], cur),
                         major_units(r["tax"], cur), major_units(r["paddle_fee"], cur), major_units(r["fx_fee"], cur),
                         major_units(r["chargeback_fee"], cur), major_units(r["rebates_and_fees"], cur),
                         major_units(r["_movement"], cur)])
    return out.getvalue()


class PaddleReports:
    """Mixin of ``FakePaddle`` (uses its lock, clock, ids, ``_error``, ``_meta``, ``_paddle_page``)."""

    def _init_reports(self) -> None:
        self.reports: dict[str, dict[str, Any]] = {}
        self.report_reads: dict[str, int] = {}
        self.report_files: dict[str, tuple[str, float]] = {}   # token -> (report id, expires at)
        self.payout_rows: dict[str, list[dict[str, Any]]] = {}  # remittance reference -> rows
        self.report_polls = 2
        self.stale_links = 0

    def _report_routes(self, app: Flask) -> None:
        app.post("/reports")(self._create_report)
        app.get("/reports")(self._list_reports)
        app.get("/reports/<report_id>")(self._get_report)
        app.get("/reports/<report_id>/download-url")(self._report_download_url)
        app.get("/report-files/<token>")(self._report_file)

    def _auth_ok(self) -> bool:
        # The file behind a download link is storage, not the API: the link is its own key.
        if request.path.startswith("/report-files/"):
            return True
        return super()._auth_ok()  # type: ignore[misc]

    # --- control -----------------------------------------------------------------------------

    def make_ready(self, report_id: Optional[str] = None) -> None:
        """Paddle finishes a report (all pending ones when no id is given)."""
        with self.lock:
            for rid, report in self.reports.items():
                if report_id in (None, rid) and report["status"] == "pending":
                    self._ready(report)

    def _ready(self, report: dict[str, Any]) -> None:  # under the lock
        report["status"] = "ready"
        report["rows"] = len(self._rows_of(report))
        report["updated_at"] = self._iso_now()
        report["expires_at"] = _iso(self.time() + 14 * 86400)   # downloadable for 14 days

    def _rows_of(self, report: dict[str, Any]) -> list[dict[str, Any]]:
        refs = next((f["value"] for f in report["filters"] if f["name"] == "remittance_reference"), None)
        kinds = next((f["value"] for f in report["filters"] if f["name"] == "balance_movement_type"), None)
        rows = [r for ref, found in self.payout_rows.items() if refs is None or ref in refs for r in found]
        return [r for r in rows if kinds is None or r["balance_movement_type"] in kinds]

    # --- routes ------------------------------------------------------------------------------

    def _create_report(self) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self._error(400, "bad_request", "Invalid request body: expected a JSON object.")
        if body.get("type") != "payout_reconciliation":
            return self._error(400, "invalid_field", "type: only payout_reconciliation is supported by this fake.")
        filters = body.get("filters") or []
        if not isinstance(filters, list) or len(filters) > 10:
            return self._error(400, "invalid_field", "filters: at most 10 filters.")
        clean = []
        for n, f in enumerate(filters):
            if not isinstance(f, dict) or f.get("name") not in _FILTERS:
                return self._error(400, "invalid_field", f"filters[{n}].name is not a filter of this report.")
            if f["name"] in ("remittance_reference", "balance_movement_type"):
                if not isinstance(f.get("value"), list) or f.get("operator") is not None:
                    return self._error(400, "invalid_field", f"filters[{n}]: an array value, operator null.")
            clean.append({"name": f["name"], "operator": f.get("operator"), "value": f.get("value")})
        if sum(1 for f in clean if f["name"] in _PRIMARY) > 1:
            return self._error(400, "invalid_field", "remittance_reference, transaction_updated_at and "
                                                     "balance_movement_date cannot be combined.")
        with self.lock:
            now = self._iso_now()
            report = {"id": self.new_id("rep_", 26, _ID_CHARS), "status": "pending", "rows": None,
                      "type": "payout_reconciliation", "filters": clean, "expires_at": None,
                      "created_at": now, "updated_at": now}
            self.reports[report["id"]] = report
            self.report_reads[report["id"]] = 0
            meta = self._meta()
            snapshot = dict(report)
        return self.json_response({"data": snapshot, "meta": meta}, 201)

    def _list_reports(self) -> Response:
        raw = request.args.get("status")
        statuses = set(raw.split(",")) if raw else {"pending", "ready"}
        with self.lock:
            rows = [dict(r) for r in self.reports.values() if r["status"] in statuses]
        return self._paddle_page(rows, "/reports", 200, 50)

    def _get_report(self, report_id: str) -> Response:
        with self.lock:
            report = self.reports.get(report_id)
            if report is None:
                return self._error(404, "not_found", f"Report {report_id} not found.")
            self.report_reads[report_id] += 1
            if report["status"] == "pending" and self.report_reads[report_id] >= self.report_polls:
                self._ready(report)
            snapshot, meta = dict(report), self._meta()
        return self.json_response({"data": snapshot, "meta": meta})

    def _report_download_url(self, report_id: str) -> Response:
        with self.lock:
            report = self.reports.get(report_id)
            if report is None:
                return self._error(404, "not_found", f"Report {report_id} not found.")
            if report["status"] != "ready":
                return self._error(400, "report_not_ready", f"Report {report_id} is {report['status']}.")
            token = self.new_id("", 32, _ID_CHARS)
            expires = self.time() + LINK_TTL
            if self.stale_links > 0:
                self.stale_links -= 1
                expires = self.time() - 1
            self.report_files[token] = (report_id, expires)
            meta = self._meta()
        url = f"{request.host_url.rstrip('/')}/report-files/{token}?X-Amz-Expires=180&X-Amz-Signature={token[:16]}"
        return self.json_response({"data": {"url": url}, "meta": meta})

    def _report_file(self, token: str) -> Response:
        if request.headers.get("Authorization"):
            return Response("<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed"
                            "</Message></Error>", status=400, mimetype="application/xml")
        with self.lock:
            found = self.report_files.get(token)
            if found is None or self.time() > found[1]:
                return Response("<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                                status=403, mimetype="application/xml")
            rows = self._rows_of(self.reports[found[0]])
            text = report_csv(rows)
        return Response(text, mimetype="text/csv")
