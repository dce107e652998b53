"""A local fake of the Stripe refund API, shaped like the documented one (API 2026-10-28.endive).

Routes: ``POST /v1/refunds`` (form-encoded as stripe-python sends it), ``GET /v1/refunds``
(``charge=``/``payment_intent=``, ``limit``, ``starting_after``), ``GET /v1/refunds/{id}``,
``GET /v1/charges/{id}`` (``expand[]=balance_transaction``), ``GET /v1/balance_transactions/{id}``.

Behaviour that matters to the bridge, as Stripe documents it (../shared/reference/stripe.md A3):

- **Idempotency-Key.** The first answer of the endpoint for a key is saved and replayed
  (``Idempotent-Replayed: true``), errors included; the same key with other parameters is
  ``400 idempotency_error``; parameter-validation errors are not saved. Injected faults model
  failures in front of Stripe and are not saved, unless ``Fault.http(500, saved=True)``.
- **Validation.** ``resource_missing`` (404, unknown charge/refund), ``charge_already_refunded``
  (nothing left), ``amount_too_large`` (more than the unrefunded remainder; pending refunds count).
- **Pending refunds.** ``fake.refund_status_on_create = "pending"`` makes new refunds pending;
  ``fake.settle_refund(id, "succeeded"|"failed")`` settles one (a failed refund frees its amount).
- **Webhooks.** With ``webhook_url``/``webhook_secret``: ``refund.created`` and
  ``charge.refunded`` on creation; ``refund.updated`` (and ``refund.failed``) on settlement.
"""
from __future__ import annotations

import json
import string
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from flask import Flask, Response, request

from bridge.fakes.base import AppliedRefund, Fault, FakeProviderServer
from bridge.providers.stripe.signature import sign_stripe

API_VERSION = "2026-10-28.endive"  # the line stripe-python 16.1.0 pins
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
_ID_CHARS = string.ascii_letters + string.digits


@dataclass
class FakeCharge:
    id: str
    payment_intent: Optional[str]
    amount: int
    currency: str
    balance_transaction: Optional[str]
    created: int
    metadata: dict[str, str] = field(default_factory=dict)


class _ParamError(Exception):
    def __init__(self, message: str, param: Optional[str], code: Optional[str] = None):
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


class FakeStripe(FakeProviderServer):
    name = "stripe"
    signature_header = "Stripe-Signature"

    def __init__(self, **kwargs: Any):
        self.charges: dict[str, FakeCharge] = {}
        self.invoice_payments: dict[str, list[dict[str, Any]]] = {}
        self.balance_transactions: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}        # insertion order = creation order
        self._idempotency: dict[str, tuple[str, int, str]] = {}  # key -> (params, status, body)
        self.refund_status_on_create = "succeeded"
        super().__init__(**kwargs)

    # --- test set-up and control -----------------------------------------------------------

    def add_charge(self, charge_id: str, payment_intent_id: Optional[str] = None, amount: int = 1000,
                   currency: str = "usd", fee: Optional[int] = None,
                   balance_transaction_id: Optional[str] = None,
                   metadata: Optional[Mapping[str, str]] = None) -> FakeCharge:
        """Register a captured charge. ``fee=None`` and no ``balance_transaction_id``: the
        balance transaction does not exist yet (``automatic_async`` capture)."""
        with self.lock:
            if fee is not None and balance_transaction_id is None:
                balance_transaction_id = self.new_id("txn_", 24, _ID_CHARS)
            now = int(time.time())
            if balance_transaction_id is not None:
                fee = fee or 0
                self.balance_transactions[balance_transaction_id] = {
                    "id": balance_transaction_id, "object": "balance_transaction", "amount": amount,
                    "available_on": now + 2 * 86400, "created": now, "currency": currency.lower(),
                    "description": None, "exchange_rate": None, "fee": fee,
                    "fee_details": [{"amount": fee, "application": None, "currency": currency.lower(),
                                     "description": "Stripe processing fees", "type": "stripe_fee"}]
                    if fee else [],
                    "net": amount - fee, "reporting_category": "charge", "source": charge_id,
                    "status": "pending", "type": "charge",
                }
            charge = FakeCharge(charge_id, payment_intent_id, amount, currency.lower(),
                                balance_transaction_id, now, dict(metadata or {}))
            self.charges[charge_id] = charge
            return charge

    def settle_refund(self, refund_id: str, status: str, failure_reason: str = "declined") -> dict[str, Any]:
        """Settle a pending refund as ``succeeded`` or ``failed`` (and emit the events)."""
        if status not in ("succeeded", "failed", "canceled"):
            raise ValueError("status must be succeeded, failed or canceled")
        with self.lock:
            refund = self.refunds[refund_id]
            previous = refund["status"]
            refund["status"] = status
            if status == "failed":
                refund["failure_reason"] = failure_reason
                refund["failure_balance_transaction"] = self.new_id("txn_", 24, _ID_CHARS)
            if status != "pending":
                refund["pending_reason"] = None
            snapshot = json.loads(json.dumps(refund))
        self.emit(self._event("refund.updated", snapshot, previous={"status": previous}))
        if status == "failed":
            self.emit(self._event("refund.failed", snapshot, previous={"status": previous}))
        return snapshot

    def refunded_amount(self, charge_id: str) -> int:
        """What counts against the charge: pending and succeeded refunds."""
        with self.lock:
            return sum(r["amount"] for r in self.refunds.values()
                       if r["charge"] == charge_id and r["status"] in ("pending", "succeeded",
                                                                        "requires_action"))

    # --- shapes ----------------------------------------------------------------------------

    def _charge_object(self, charge: FakeCharge, expand_bt: bool = False) -> dict[str, Any]:
        refunded = self.refunded_amount(charge.id)
        bt: Any = charge.balance_transaction
        if expand_bt and bt is not None:
            bt = self.balance_transactions[bt]
        return {
            "id": charge.id, "object": "charge", "amount": charge.amount,
            "amount_captured": charge.amount, "amount_refunded": refunded,
            "balance_transaction": bt, "captured": True, "created": charge.created,
            "currency": charge.currency, "disputed": False, "livemode": False,
            "metadata": charge.metadata, "paid": True, "payment_intent": charge.payment_intent,
            "refunded": refunded >= charge.amount, "status": "succeeded",
        }

    def _event(self, event_type: str, obj: dict[str, Any], *,
               previous: Optional[dict[str, Any]] = None, via_api: bool = False,
               idempotency_key: Optional[str] = None) -> dict[str, Any]:
        """An event envelope; ``via_api``: caused by an API request (else by Stripe itself)."""
        data: dict[str, Any] = {"object": obj}
        if previous is not None:
            data["previous_attributes"] = previous
        return {
            "id": self.new_id("evt_", 24, _ID_CHARS), "object": "event", "api_version": API_VERSION,
            "created": int(time.time()), "data": data, "livemode": False, "pending_webhooks": 1,
            "request": {"id": self.new_id("req_", 14, _ID_CHARS) if via_api else None,
                        "idempotency_key": idempotency_key},
            "type": event_type,
        }

    def _event_id_type(self, payload: Mapping[str, Any]) -> tuple[str, str]:
        return payload.get("id", ""), payload.get("type", "")

    def sign(self, body: bytes, secret: str, timestamp: int) -> str:
        return sign_stripe(body, secret, timestamp)

    def _error(self, status: int, code: Optional[str], message: str, *,
               headers: Optional[Mapping[str, str]] = None, type: str = "invalid_request_error",
               param: Optional[str] = None, **extra: Any) -> Response:
        error: dict[str, Any] = {"type": type, "message": message}
        if code is not None:
            error["code"] = code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param is not None:
            error["param"] = param
        error.update(extra)
        hdrs = {"Request-Id": self.new_id("req_", 14, _ID_CHARS), **(headers or {})}
        return self.json_response({"error": error}, status, hdrs)

    def _fault_response(self, fault: Fault) -> Response:
        if fault.status == 429:
            response = self._error(429, "rate_limit",
                                   "Too many requests hit the API too quickly.",
                                   headers=fault.retry_after_header)
        else:
            response = self._error(fault.status, None,
                                   "An unknown error occurred while processing your request.",
                                   type="api_error")
        key = request.headers.get("Idempotency-Key")
        if fault.saved and key and request.method == "POST":
            with self.lock:
                self._idempotency.setdefault(key, (self._fingerprint(), response.status_code,
                                                   response.get_data(as_text=True)))
        return response

    def _auth_error(self) -> Response:
        return self._error(401, None, "Invalid API Key provided.")

    # --- routes ----------------------------------------------------------------------------

    def _routes(self, app: Flask) -> None:
        app.post("/v1/refunds")(self._create_refund)
        app.get("/v1/refunds")(self._list_refunds)
        app.get("/v1/refunds/<refund_id>")(self._get_refund)
        app.get("/v1/charges/<charge_id>")(self._get_charge)
        app.get("/v1/balance_transactions/<bt_id>")(self._get_balance_transaction)
        app.get("/v1/invoice_payments")(self._list_invoice_payments)

    @staticmethod
    def _fingerprint() -> str:
        items = sorted((k, v) for k, v in request.form.items(multi=True) if not k.startswith("expand"))
        return json.dumps(items)

    def _create_refund(self) -> Response:
        key = request.headers.get("Idempotency-Key")
        fingerprint = self._fingerprint()
        with self.lock:  # one request at a time: a concurrent same-key retry waits, then replays
            if key is not None and key in self._idempotency:
                saved_params, status, body = self._idempotency[key]
                if saved_params != fingerprint:
                    return self._error(
                        400, None,
                        "Keys for idempotent requests can only be used with the same parameters "
                        f"they were first used with. Try using a key other than '{key}' if you "
                        "meant to execute a different request.", type="idempotency_error")
                return Response(body, status=status, mimetype="application/json",
                                headers={"Idempotent-Replayed": "true",
                                         "Request-Id": self.new_id("req_", 14, _ID_CHARS)})
            try:
                params = self._refund_params()
            except _ParamError as exc:  # validation failures are not saved
                return self._error(400, exc.code, exc.message, param=exc.param)
            response, events = self._apply_refund(params, key)
            if key is not None:
                self._idempotency[key] = (fingerprint, response.status_code,
                                          response.get_data(as_text=True))
        for event in events:
            self.emit(event)
        return response

    def _refund_params(self) -> dict[str, Any]:
        form = request.form
        params: dict[str, Any] = {"metadata": {}}
        for k, v in form.items():
            if k.startswith("metadata[") and k.endswith("]"):
                params["metadata"][k[len("metadata["):-1]] = v
        params["charge"] = form.get("charge") or None
        params["payment_intent"] = form.get("payment_intent") or None
        if not params["charge"] and not params["payment_intent"]:
            raise _ParamError("One of the following params should be provided for this request: "
                              "payment_intent or charge.", None, "parameter_missing")
        amount = form.get("amount")
        if amount is not None:
            if not amount.isdigit() or int(amount) <= 0:
                raise _ParamError("Invalid positive integer", "amount", "parameter_invalid_integer")
            params["amount"] = int(amount)
        else:
            params["amount"] = None
        reason = form.get("reason")
        if reason is not None and reason not in REFUND_REASONS:
            raise _ParamError("Invalid reason: must be one of duplicate, fraudulent, or "
                              "requested_by_customer", "reason")
        params["reason"] = reason
        return params

    def _apply_refund(self, params: dict[str, Any], key: Optional[str]) -> tuple[Response, list]:
        """The endpoint proper (called under the lock). Its answers are saved for the key."""
        charge: Optional[FakeCharge] = None
        if params["charge"]:
            charge = self.charges.get(params["charge"])
            if charge is None:
                return self._error(404, "resource_missing",
                                   f"No such charge: '{params['charge']}'", param="charge"), []
        else:
            charge = next((c for c in self.charges.values()
                           if c.payment_intent == params["payment_intent"]), None)
            if charge is None:
                return self._error(404, "resource_missing",
                                   f"No such payment_intent: '{params['payment_intent']}'",
                                   param="payment_intent"), []
        remaining = charge.amount - self.refunded_amount(charge.id)
        if remaining <= 0:
            return self._error(400, "charge_already_refunded",
                               f"Charge {charge.id} has already been refunded.", param="charge"), []
        amount = params["amount"] if params["amount"] is not None else remaining
        if amount > remaining:
            return self._error(400, "amount_too_large",
                               f"Refund amount ({amount}) is greater than unrefunded amount on "
                               f"charge ({remaining})", param="amount"), []

        refund_id = self.new_id("re_", 24, _ID_CHARS)
        status = self.refund_status_on_create
        bt_id = self.new_id("txn_", 24, _ID_CHARS)
        now = int(time.time())
        self.balance_transactions[bt_id] = {
            "id": bt_id, "object": "balance_transaction", "amount": -amount, "available_on": now,
            "created": now, "currency": charge.currency, "description": "REFUND FOR CHARGE",
            "exchange_rate": None, "fee": 0, "fee_details": [], "net": -amount,
            "reporting_category": "refund", "source": refund_id, "status": "available",
            "type": "refund",
        }
        refund = {
            "id": refund_id, "object": "refund", "amount": amount, "balance_transaction": bt_id,
            "charge": charge.id, "created": now, "currency": charge.currency,
            "destination_details": None, "metadata": params["metadata"],
            "payment_intent": charge.payment_intent,
            "pending_reason": "processing" if status == "pending" else None,
            "reason": params["reason"], "receipt_number": None,
            "source_transfer_reversal": None, "status": status, "transfer_reversal": None,
        }
        self.refunds[refund_id] = refund
        self.applied.append(AppliedRefund(refund_id, charge.id, amount, charge.currency,
                                          time.monotonic(), key, params["reason"]))
        snapshot = json.loads(json.dumps(refund))
        events = [self._event("refund.created", snapshot, via_api=True, idempotency_key=key),
                  self._event("charge.refunded", self._charge_object(charge), via_api=True,
                              idempotency_key=key,
                              previous={"amount_refunded": charge.amount - remaining})]
        return self.json_response(snapshot, 200,
                                  {"Request-Id": self.new_id("req_", 14, _ID_CHARS)}), events

    def _list_refunds(self) -> Response:
        args = request.args
        try:
            limit = min(100, max(1, int(args.get("limit", "10"))))
        except ValueError:
            return self._error(400, "parameter_invalid_integer", "Invalid integer", param="limit")
        with self.lock:
            found = [r for r in reversed(list(self.refunds.values()))  # newest first
                     if (not args.get("charge") or r["charge"] == args["charge"])
                     and (not args.get("payment_intent") or r["payment_intent"] == args["payment_intent"])]
            after = args.get("starting_after")
            if after:
                ids = [r["id"] for r in found]
                if after not in ids:
                    return self._error(404, "resource_missing", f"No such refund: '{after}'",
                                       param="starting_after")
                found = found[ids.index(after) + 1:]
            page = json.loads(json.dumps(found[:limit]))
        return self.json_response({"object": "list", "data": page, "has_more": len(found) > limit,
                                   "url": "/v1/refunds"})

    def _get_refund(self, refund_id: str) -> Response:
        with self.lock:
            refund = self.refunds.get(refund_id)
            if refund is None:
                return self._error(404, "resource_missing", f"No such refund: '{refund_id}'", param="id")
            return self.json_response(refund)

    def _get_charge(self, charge_id: str) -> Response:
        expand = [v for k, v in request.args.items(multi=True) if k.startswith("expand")]
        with self.lock:
            charge = self.charges.get(charge_id)
            if charge is None:
                return self._error(404, "resource_missing", f"No such charge: '{charge_id}'", param="id")
            return self.json_response(self._charge_object(charge, "balance_transaction" in expand))

    def add_invoice_payment(self, invoice_id: str, payment_intent_id: str, amount: int,
                            currency: str = "usd") -> None:
        """An invoice paid by a payment intent (``GET /v1/invoice_payments?invoice=``)."""
        with self.lock:
            self.invoice_payments.setdefault(invoice_id, []).append({
                "id": self.new_id("inpay_", 24, _ID_CHARS), "object": "invoice_payment", "amount_paid": amount,
                "amount_requested": amount, "currency": currency.lower(), "invoice": invoice_id,
                "is_default": True, "livemode": False, "status": "paid",
                "payment": {"type": "payment_intent", "payment_intent": payment_intent_id},
                "created": int(time.time()),
                "status_transitions": {"paid_at": int(time.time()), "canceled_at": None}})

    def _list_invoice_payments(self) -> Response:
        invoice = request.args.get("invoice")
        with self.lock:
            data = list(self.invoice_payments.get(invoice or "", []))
        return self.json_response({"object": "list", "data": data, "has_more": False,
                                   "url": "/v1/invoice_payments"})

    def _get_balance_transaction(self, bt_id: str) -> Response:
        with self.lock:
            bt = self.balance_transactions.get(bt_id)
            if bt is None:
                return self._error(404, "resource_missing",
                                   f"No such balance transaction: '{bt_id}'", param="id")
            return self.json_response(bt)
