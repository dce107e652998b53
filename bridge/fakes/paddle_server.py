"""A local fake of Paddle Billing's refund API (adjustments), shaped like the documented one
(API v1; ../shared/reference/paddle.md sections 3-4), complete enough for paddle-python-sdk
1.16.1 to parse every answer into its entities.

Routes: ``POST /adjustments`` (JSON: ``action`` refund, ``type`` full|partial, ``items``,
``transaction_id``, ``reason``), ``GET /adjustments`` (``transaction_id``, ``action``,
``status``, ``id``, ``after``, ``per_page``; paginated with ``meta.pagination.next``),
``GET /transactions/{id}``.

- Transactions are registered by tests: ``fake.add_transaction(txn_id, currency,
  line_items=[(txnitm_id, amount)], fee)``; amounts are minor units, tax included (tax 0).
- New refunds are ``pending_approval``; ``fake.decide(adj_id, "approved"|"rejected")`` decides
  one (a rejected refund frees its amount). ``auto_approve=True`` creates them ``approved``.
- One pending refund per transaction: another one is ``adjustment_pending_refund_request``.
  Over-refunds: ``adjustment_total_amount_above_remaining_allowed`` (whole transaction) and
  ``adjustment_amount_above_remaining_allowed`` (one line). Unknown transaction:
  ``transaction_not_found`` (404).
- No idempotency key (Paddle has none): the same request twice makes two adjustments.
- Webhooks (with ``webhook_url``/``webhook_secret``): ``adjustment.created`` on creation,
  ``adjustment.updated`` on a decision.
"""
from __future__ import annotations

import json
import string
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence
from urllib.parse import urlencode

from flask import Flask, Response, request

from bridge.fakes.base import AppliedRefund, Fault, FakeProviderServer
from bridge.providers.paddle.signature import sign_paddle

_ID_CHARS = string.ascii_lowercase + string.digits
_DOCS = "https://developer.paddle.com/errors"
_FAULT_CODES = {429: "too_many_requests", 500: "internal_error", 502: "bad_gateway",
                503: "service_unavailable", 504: "gateway_timeout"}
# Payout currencies (reference section 6); other transaction currencies pay out in USD.
_PAYOUT_CURRENCIES = {"AUD", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HUF", "PLN", "SEK",
                      "USD", "ZAR"}


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class FakeTransaction:
    id: str
    currency: str
    line_items: list[tuple[str, int]]
    fee: Optional[int]
    status: str
    customer_id: str
    created_at: str
    custom_data: Optional[dict[str, Any]] = None
    subscription_id: Optional[str] = None
    products: dict[str, tuple[str, str]] = field(default_factory=dict)  # item -> (price, product)

    @property
    def total(self) -> int:
        return sum(amount for _, amount in self.line_items)


class _Refusal(Exception):
    def __init__(self, status: int, code: str, detail: str,
                 errors: Optional[list[dict[str, str]]] = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.errors = status, code, detail, errors


class FakePaddle(FakeProviderServer):
    name = "paddle"
    signature_header = "Paddle-Signature"

    def __init__(self, *, auto_approve: bool = False, per_page: int = 50, **kwargs: Any):
        self.transactions: dict[str, FakeTransaction] = {}
        self.adjustments: dict[str, dict[str, Any]] = {}   # insertion order = creation order
        self.auto_approve = auto_approve
        self.per_page = per_page
        super().__init__(**kwargs)

    # --- test set-up and control -----------------------------------------------------------

    def add_transaction(self, txn_id: str, currency: str = "USD",
                        line_items: Sequence[tuple[str, int]] = (), fee: Optional[int] = None, *,
                        status: str = "completed", customer_id: Optional[str] = None,
                        custom_data: Optional[dict[str, Any]] = None,
                        subscription_id: Optional[str] = None) -> FakeTransaction:
        """Register a transaction; ``fee=None``: Paddle has not set it yet."""
        if not line_items:
            raise ValueError("a transaction needs at least one line item")
        with self.lock:
            txn = FakeTransaction(
                txn_id, currency.upper(), [(i, int(a)) for i, a in line_items], fee, status,
                customer_id or self.new_id("ctm_", 26, _ID_CHARS), _now_iso(), custom_data,
                subscription_id)
            for item_id, _ in txn.line_items:
                txn.products[item_id] = (self.new_id("pri_", 26, _ID_CHARS),
                                         self.new_id("pro_", 26, _ID_CHARS))
            self.transactions[txn_id] = txn
            return txn

    def decide(self, adjustment_id: str, status: str) -> dict[str, Any]:
        """Approve or reject a pending refund (emits ``adjustment.updated``)."""
        if status not in ("approved", "rejected"):
            raise ValueError("status must be approved or rejected")
        with self.lock:
            adjustment = self.adjustments[adjustment_id]
            if adjustment["status"] != "pending_approval":
                raise ValueError(f"{adjustment_id} is {adjustment['status']}, not pending_approval")
            adjustment["status"] = status
            adjustment["updated_at"] = _now_iso()
            snapshot = json.loads(json.dumps(adjustment))
        self.emit(self._event("adjustment.updated", snapshot))
        return snapshot

    def refunded_by_item(self, txn_id: str) -> dict[str, int]:
        """Per line: what pending and approved refunds take."""
        taken: dict[str, int] = {}
        with self.lock:
            for adj in self.adjustments.values():
                if adj["transaction_id"] == txn_id and adj["action"] == "refund" \
                        and adj["status"] in ("pending_approval", "approved"):
                    for item in adj["items"]:
                        taken[item["item_id"]] = taken.get(item["item_id"], 0) + int(item["amount"])
        return taken

    # --- shapes ----------------------------------------------------------------------------

    @staticmethod
    def _money_totals(total: int, fee: Optional[int], currency: str) -> dict[str, Any]:
        return {"subtotal": str(total), "tax": "0", "total": str(total),
                "fee": None if fee is None else str(fee),
                "earnings": None if fee is None else str(total - fee), "currency_code": currency}

    def _adjustment(self, txn: FakeTransaction, reason: str, kind: str,
                    lines: list[tuple[str, str, int]], status: str) -> dict[str, Any]:
        total = sum(amount for _, _, amount in lines)
        # Paddle returns the fee share of the refunded amount; rounded down here.
        fee = (txn.fee or 0) * total // txn.total if txn.total else 0
        now = _now_iso()
        totals = {"subtotal": str(total), "tax": "0", "total": str(total), "fee": str(fee),
                  "earnings": str(total - fee), "currency_code": txn.currency, "retained_fee": "0"}
        payout_currency = txn.currency if txn.currency in _PAYOUT_CURRENCIES else "USD"
        return {
            "id": self.new_id("adj_", 26, _ID_CHARS), "action": "refund", "type": kind,
            "transaction_id": txn.id, "subscription_id": txn.subscription_id,
            "customer_id": txn.customer_id, "reason": reason, "credit_applied_to_balance": None,
            "currency_code": txn.currency, "status": status,
            "items": [{"id": self.new_id("adjitm_", 26, _ID_CHARS), "item_id": item_id,
                       "type": item_type, "amount": str(amount), "proration": None,
                       "totals": {"subtotal": str(amount), "tax": "0", "total": str(amount)}}
                      for item_id, item_type, amount in lines],
            "totals": totals,
            "payout_totals": {**totals, "currency_code": payout_currency, "chargeback_fee": None},
            "tax_rates_used": [], "created_at": now, "updated_at": now,
        }

    def _transaction(self, txn: FakeTransaction) -> dict[str, Any]:
        total = txn.total
        taken = sum(self.refunded_by_item(txn.id).values())
        totals = {**self._money_totals(total, txn.fee, txn.currency), "discount": "0",
                  "credit": "0", "credit_to_balance": "0", "balance": "0",
                  "grand_total": str(total), "grand_total_tax": "0"}
        payout_currency = txn.currency if txn.currency in _PAYOUT_CURRENCIES else "USD"
        completed = txn.status == "completed"
        line_items, items = [], []
        for item_id, amount in txn.line_items:
            price_id, product_id = txn.products[item_id]
            money = {"subtotal": str(amount), "discount": "0", "tax": "0", "total": str(amount)}
            product = {"id": product_id, "name": f"Product {item_id}", "description": None,
                       "type": "standard", "tax_category": "standard", "image_url": None,
                       "custom_data": None, "status": "active", "created_at": txn.created_at,
                       "updated_at": txn.created_at, "import_meta": None}
            line_items.append({"id": item_id, "price_id": price_id, "quantity": 1,
                               "proration": None, "tax_rate": "0", "unit_totals": money,
                               "totals": money, "product": product})
            items.append({"price": {"id": price_id, "product_id": product_id, "name": None,
                                    "description": f"Price of {item_id}", "type": "standard",
                                    "billing_cycle": None, "trial_period": None,
                                    "tax_mode": "account_setting",
                                    "unit_price": {"amount": str(amount), "currency_code": txn.currency},
                                    "unit_price_overrides": [],
                                    "quantity": {"minimum": 1, "maximum": 1}, "status": "active",
                                    "custom_data": None, "import_meta": None,
                                    "created_at": txn.created_at, "updated_at": txn.created_at},
                          "quantity": 1, "proration": None})
        net = total - taken
        return {
            "id": txn.id, "status": txn.status, "customer_id": txn.customer_id, "address_id": None,
            "business_id": None, "custom_data": txn.custom_data, "origin": "web",
            "collection_mode": "automatic", "subscription_id": txn.subscription_id,
            "invoice_id": None, "invoice_number": None, "billing_details": None,
            "billing_period": None, "currency_code": txn.currency, "discount_id": None,
            "created_at": txn.created_at, "updated_at": txn.created_at,
            "billed_at": txn.created_at, "revised_at": None, "items": items,
            "details": {
                "tax_rates_used": [], "totals": totals, "line_items": line_items,
                "adjusted_totals": {"subtotal": str(net), "tax": "0", "total": str(net),
                                    "grand_total": str(net), "grand_total_tax": "0",
                                    "fee": totals["fee"], "earnings": totals["earnings"],
                                    "currency_code": txn.currency, "retained_fee": "0"},
                "payout_totals": ({**totals, "currency_code": payout_currency,
                                   "exchange_rate": "1.0", "fee_rate": "0.05"}
                                  if completed else None),
                "adjusted_payout_totals": None,
            },
            "payments": [], "checkout": None,
        }

    def _event(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"event_id": self.new_id("evt_", 26, _ID_CHARS),
                "notification_id": self.new_id("ntf_", 26, _ID_CHARS),
                "event_type": event_type, "occurred_at": _now_iso(), "data": data}

    def _event_id_type(self, payload: Mapping[str, Any]) -> tuple[str, str]:
        return payload.get("event_id", ""), payload.get("event_type", "")

    def sign(self, body: bytes, secret: str, timestamp: int) -> str:
        return sign_paddle(body, secret, timestamp)

    def _meta(self) -> dict[str, Any]:
        return {"request_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4))}

    def _error(self, status: int, code: Optional[str], message: str, *,
               headers: Optional[Mapping[str, str]] = None, type: str = "request_error",
               errors: Optional[list[dict[str, str]]] = None, **extra: Any) -> Response:
        code = code or "bad_request"
        section = {"adjustment": "adjustments", "transaction": "transactions"}.get(code.split("_")[0],
                                                                                 "shared")
        error: dict[str, Any] = {"type": type, "code": code, "detail": message,
                                 "documentation_url": f"{_DOCS}/{section}/{code}"}
        if errors:
            error["errors"] = errors
        with self.lock:
            meta = self._meta()
        return self.json_response({"error": error, "meta": meta}, status, headers)

    def _fault_response(self, fault: Fault) -> Response:
        code = _FAULT_CODES.get(fault.status, "internal_error")
        if fault.status == 429:
            return self._error(429, code, "Too many requests, please try again later.",
                               headers=fault.retry_after_header)
        return self._error(fault.status, code, "An unexpected error occurred.",
                           type="api_error" if fault.status >= 500 else "request_error")

    def _auth_error(self) -> Response:
        if not request.headers.get("Authorization"):
            return self._error(403, "authentication_missing",
                               "Authentication header missing.")
        return self._error(403, "authentication_malformed", "API key is not valid.")

    # --- routes ----------------------------------------------------------------------------

    def _routes(self, app: Flask) -> None:
        app.post("/adjustments")(self._create_adjustment)
        app.get("/adjustments")(self._list_adjustments)
        app.get("/transactions/<txn_id>")(self._get_transaction)

    def _create_adjustment(self) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self._error(400, "bad_request", "Invalid request body: expected a JSON object.")
        with self.lock:
            try:
                adjustment, txn = self._apply(body)
            except _Refusal as exc:
                return self._error(exc.status, exc.code, exc.detail, errors=exc.errors)
            self.adjustments[adjustment["id"]] = adjustment
            self.applied.append(AppliedRefund(adjustment["id"], txn.id,
                                              int(adjustment["totals"]["total"]), txn.currency,
                                              time.monotonic(), None, adjustment["reason"]))
            snapshot = json.loads(json.dumps(adjustment))
            meta = self._meta()
        self.emit(self._event("adjustment.created", snapshot))
        return self.json_response({"data": snapshot, "meta": meta}, 201)

    def _apply(self, body: dict[str, Any]) -> tuple[dict[str, Any], FakeTransaction]:
        """Validate as Paddle does and build the adjustment (called under the lock)."""
        invalid = []
        if body.get("action") != "refund":
            invalid.append({"field": "action", "message": "only refund is supported by this fake"})
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            invalid.append({"field": "reason", "message": "reason is required"})
        kind = body.get("type") or "partial"
        if kind not in ("full", "partial"):
            invalid.append({"field": "type", "message": "must be full or partial"})
        items = body.get("items")
        if kind == "full" and items:
            invalid.append({"field": "items", "message": "items are not allowed for a full refund"})
        if kind == "partial" and (not isinstance(items, list) or not 1 <= len(items) <= 100):
            invalid.append({"field": "items", "message": "1 to 100 items are required"})
        if invalid:
            raise _Refusal(400, "invalid_field", "Invalid request.", invalid)

        txn = self.transactions.get(str(body.get("transaction_id")))
        if txn is None:
            raise _Refusal(404, "transaction_not_found",
                           f"Transaction {body.get('transaction_id')} not found.")
        if txn.status != "completed":
            raise _Refusal(400, "adjustment_transaction_invalid_status_for_refund",
                           f"Transaction {txn.id} is {txn.status}; only completed transactions "
                           "can be refunded.")
        if any(a["transaction_id"] == txn.id and a["action"] == "refund"
               and a["status"] == "pending_approval" for a in self.adjustments.values()):
            raise _Refusal(400, "adjustment_pending_refund_request",
                           f"Transaction {txn.id} already has a refund pending approval.")

        taken = self.refunded_by_item(txn.id)
        remaining = {item_id: amount - taken.get(item_id, 0) for item_id, amount in txn.line_items}
        lines: list[tuple[str, str, int]] = []
        if kind == "full":
            if sum(taken.values()) > 0:
                raise _Refusal(400, "adjustment_total_amount_above_remaining_allowed",
                               "The total amount of the adjustment is above the amount remaining "
                               "to be adjusted on the transaction.")
            lines = [(item_id, "full", amount) for item_id, amount in txn.line_items]
        else:
            item_errors = []
            for n, item in enumerate(items):
                item_id = item.get("item_id") if isinstance(item, dict) else None
                item_type = item.get("type", "partial") if isinstance(item, dict) else None
                if item_id not in remaining:
                    item_errors.append({"field": f"items[{n}].item_id",
                                        "message": f"{item_id} is not an item of {txn.id}"})
                    continue
                if item_type == "full":
                    amount = remaining[item_id]
                    if amount <= 0:
                        item_errors.append({"field": f"items[{n}]",
                                            "message": f"{item_id} is already fully adjusted"})
                        continue
                else:
                    raw = str(item.get("amount") or "")
                    if not raw.isdigit():
                        item_errors.append({"field": f"items[{n}].amount",
                                            "message": "amount must be a string of digits"})
                        continue
                    amount = int(raw)
                    if amount == 0:
                        raise _Refusal(400, "adjustment_amount_cannot_be_zero",
                                       "Adjustment item amounts cannot be zero.")
                    if amount > remaining[item_id]:
                        raise _Refusal(400, "adjustment_amount_above_remaining_allowed",
                                       f"The amount for item {item_id} is above the amount "
                                       "remaining to be adjusted.")
                remaining[item_id] -= amount
                lines.append((item_id, item_type or "partial", amount))
            if item_errors:
                raise _Refusal(400, "adjustment_transaction_item_invalid",
                               "One or more items are invalid.", item_errors)
            if sum(a for _, _, a in lines) > txn.total - sum(taken.values()):
                raise _Refusal(400, "adjustment_total_amount_above_remaining_allowed",
                               "The total amount of the adjustment is above the amount remaining "
                               "to be adjusted on the transaction.")
        status = "approved" if self.auto_approve else "pending_approval"
        return self._adjustment(txn, reason, kind, lines, status), txn

    def _list_adjustments(self) -> Response:
        args = request.args

        def values(name: str) -> Optional[set[str]]:
            raw = args.get(name)
            return set(raw.split(",")) if raw else None

        txn_ids, ids, statuses = values("transaction_id"), values("id"), values("status")
        action = args.get("action")
        try:
            per_page = min(200, max(1, int(args.get("per_page", self.per_page))))
        except ValueError:
            return self._error(400, "invalid_field", "per_page must be an integer.")
        with self.lock:
            found = [a for a in self.adjustments.values()
                     if (txn_ids is None or a["transaction_id"] in txn_ids)
                     and (ids is None or a["id"] in ids)
                     and (statuses is None or a["status"] in statuses)
                     and (action is None or a["action"] == action)]
            after = args.get("after")
            if after:
                order = [a["id"] for a in found]
                found = found[order.index(after) + 1:] if after in order else []
            page = json.loads(json.dumps(found[:per_page]))
            meta = self._meta()
        has_more = len(found) > per_page
        query = {k: v for k, v in args.items() if k != "after"}
        next_url = None
        if page:
            query["after"] = page[-1]["id"]
            next_url = f"{request.host_url.rstrip('/')}/adjustments?{urlencode(query)}"
        meta["pagination"] = {"per_page": per_page, "next": next_url, "has_more": has_more,
                              "estimated_total": len(found)}
        return self.json_response({"data": page, "meta": meta})

    def _get_transaction(self, txn_id: str) -> Response:
        with self.lock:
            txn = self.transactions.get(txn_id)
            if txn is None:
                return self._error(404, "transaction_not_found", f"Transaction {txn_id} not found.")
            data = self._transaction(txn)
            meta = self._meta()
        return self.json_response({"data": data, "meta": meta})
