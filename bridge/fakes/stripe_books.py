"""The fake Stripe's books: what it did, listed the way Stripe lists it, and the calls that make
history (a dashboard refund, a dispute and its outcome, an automatic payout).

Routes (mixed into ``FakeStripe``): ``GET /v1/events`` (the 30-day horizon of the fake's own
clock, ``types[]`` or ``type`` with ``*``, ``created[gte|gt|lt|lte]``), ``GET /v1/charges``
(``expand[]=data.balance_transaction``), ``GET /v1/disputes``, ``GET /v1/balance_transactions``
(``payout``, ``type``, ``source``, ``currency``, ``created``), ``GET /v1/payouts``
(``status``, ``created``), ``GET /v1/payouts/{id}``; ``GET /v1/refunds`` takes ``created`` too.
Every list is newest first with ``limit`` (1-100, default 10), ``starting_after`` (walks
older) or ``ending_before`` (the page just newer than the cursor) and ``has_more``.
"""
from __future__ import annotations

import json
import string
from typing import Any, Callable, Iterable, Optional

from flask import Flask, Response, request

EVENTS_HORIZON = 30 * 86400        # Stripe lists events of the last 30 days only
_ID_CHARS = string.ascii_letters + string.digits
DISPUTE_FEE = 1500                 # Stripe's dispute fee in the fakes (minor units)


def _copy(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


def _created_filter(args) -> Callable[[int], bool]:
    """``created`` exact or ``created[gte|gt|lte|lt]`` (unix seconds), as Stripe takes them."""
    tests: list[Callable[[int], bool]] = []
    ops = {"gte": lambda a, b: a >= b, "gt": lambda a, b: a > b,
           "lte": lambda a, b: a <= b, "lt": lambda a, b: a < b}
    for op, fn in ops.items():
        raw = args.get(f"created[{op}]")
        if raw is not None:
            bound = int(raw)
            tests.append(lambda c, fn=fn, bound=bound: fn(c, bound))
    if args.get("created") is not None:
        exact = int(args["created"])
        tests.append(lambda c: c == exact)
    return lambda c: all(t(c) for t in tests)


class StripeBooks:
    """Mixin of ``FakeStripe``: the book and its list endpoints (uses the fake's lock, clock,
    ids, ``_error``, ``emit``, ``_event``)."""

    def _init_books(self) -> None:
        self.disputes: dict[str, dict[str, Any]] = {}
        self.payouts: dict[str, dict[str, Any]] = {}
        self.bt_payout: dict[str, str] = {}        # balance transaction -> automatic payout

    def _book_routes(self, app: Flask) -> None:
        app.get("/v1/events")(self._list_events)
        app.get("/v1/charges")(self._list_charges)
        app.get("/v1/disputes")(self._list_disputes)
        app.get("/v1/balance_transactions")(self._list_balance_transactions)
        app.get("/v1/payouts")(self._list_payouts)
        app.get("/v1/payouts/<payout_id>")(self._get_payout)

    # --- history-making calls (what a dashboard, a bank or Stripe itself does) ---------------

    def refund(self, charge_id: str, amount: Optional[int] = None,
               reason: str = "requested_by_customer") -> dict[str, Any]:
        """A refund made in the dashboard: booked and announced like one made through the API."""
        with self.lock:
            params = {"charge": charge_id, "payment_intent": None, "amount": amount,
                      "reason": reason, "metadata": {}}
            response, events = self._apply_refund(params, None)
            if response.status_code != 200:
                raise ValueError(response.get_data(as_text=True))
            refund = json.loads(response.get_data(as_text=True))
        for event in events:
            self.emit(event)
        return refund

    def dispute(self, charge_id: str, *, reason: str = "fraudulent",
                fee: int = DISPUTE_FEE) -> dict[str, Any]:
        """The cardholder disputes the whole charge: ``charge.dispute.created``, then the
        withdrawal of the amount and the dispute fee (``charge.dispute.funds_withdrawn``)."""
        with self.lock:
            charge = self.charges[charge_id]
            now = int(self.time())
            du_id = self.new_id("du_", 24, _ID_CHARS)
            bt = self._add_bt(-charge.amount, fee, charge.currency, du_id, "adjustment", "dispute",
                              "Chargeback withdrawal for " + charge_id)
            dispute = {
                "id": du_id, "object": "dispute", "amount": charge.amount, "currency": charge.currency,
                "charge": charge_id, "payment_intent": charge.payment_intent, "created": now,
                "reason": reason, "status": "needs_response", "balance_transactions": [bt],
                "evidence_details": {"due_by": now + 7 * 86400, "has_evidence": False,
                                     "past_due": False, "submission_count": 0},
                "is_charge_refundable": False, "livemode": False, "metadata": {},
            }
            self.disputes[du_id] = dispute
            snapshot = _copy(dispute)
        self.emit(self._event("charge.dispute.created", {**snapshot, "balance_transactions": []}))
        self.emit(self._event("charge.dispute.funds_withdrawn", snapshot))
        return snapshot

    def close_dispute(self, dispute_id: str, *, won: bool) -> dict[str, Any]:
        """Stripe decides: won gives back the amount and the fee (``funds_reinstated``)."""
        with self.lock:
            dispute = self.disputes[dispute_id]
            previous = dispute["status"]
            if won:
                fee = dispute["balance_transactions"][0]["fee"]
                bt = self._add_bt(dispute["amount"], -fee, dispute["currency"], dispute_id,
                                  "adjustment", "dispute_reversal",
                                  "Chargeback reversal for " + dispute["charge"])
                dispute["balance_transactions"].append(bt)
            dispute["status"] = "won" if won else "lost"
            snapshot = _copy(dispute)
        if won:
            self.emit(self._event("charge.dispute.funds_reinstated", snapshot))
        self.emit(self._event("charge.dispute.closed", snapshot, previous={"status": previous}))
        return snapshot

    def set_fee(self, charge_id: str, fee: int) -> None:
        """The fee knob: from now on Stripe's record says ``fee`` for this charge (e.g. after
        the bridge booked another one)."""
        with self.lock:
            bt = self.balance_transactions[self.charges[charge_id].balance_transaction]
            if bt["id"] in self.bt_payout:  # the book stays consistent: paid-out money is final
                raise ValueError(f"{charge_id} is already in payout {self.bt_payout[bt['id']]}")
            bt["fee"] = fee
            bt["net"] = bt["amount"] - fee
            bt["fee_details"] = [{"amount": fee, "application": None, "currency": bt["currency"],
                                  "description": "Stripe processing fees", "type": "stripe_fee"}]

    def pay_out(self, currency: str = "usd") -> Optional[dict[str, Any]]:
        """An automatic payout of every balance transaction of ``currency`` not yet paid out
        (``payout.created`` then ``payout.paid``); None when there is nothing to pay."""
        currency = currency.lower()
        with self.lock:
            now = int(self.time())
            open_bts = [bt for bt_id, bt in self.balance_transactions.items()
                        if bt_id not in self.bt_payout and bt["currency"] == currency
                        and bt["type"] not in ("payout", "payout_failure", "payout_cancel")]
            amount = sum(bt["net"] for bt in open_bts)
            if not open_bts or amount <= 0:
                return None
            po_id = self.new_id("po_", 24, _ID_CHARS)
            po_bt = self._add_bt(-amount, 0, currency, po_id, "payout", "payout", "STRIPE PAYOUT")
            for bt in open_bts:
                self.bt_payout[bt["id"]] = po_id
                bt["status"] = "available"
            payout = {
                "id": po_id, "object": "payout", "amount": amount, "currency": currency,
                "arrival_date": now + 2 * 86400, "automatic": True, "balance_transaction": po_bt["id"],
                "created": now, "description": "STRIPE PAYOUT", "failure_balance_transaction": None,
                "failure_code": None, "method": "standard", "reconciliation_status": "completed",
                "source_type": "card", "status": "paid", "type": "bank_account", "livemode": False,
                "metadata": {},
            }
            self.payouts[po_id] = payout
            snapshot = _copy(payout)
        self.emit(self._event("payout.created", {**snapshot, "status": "pending"}))
        self.emit(self._event("payout.paid", snapshot))
        return snapshot

    def fail_payout(self, payout_id: str, code: str = "account_closed") -> dict[str, Any]:
        """The bank returns a paid payout (Stripe moves it from paid to failed): its funds come
        back to the balance (``payout_failure``) and ``payout.failed`` is sent."""
        with self.lock:
            payout = self.payouts[payout_id]
            bt = self._add_bt(payout["amount"], 0, payout["currency"], payout_id, "payout_failure",
                              "payout_reversal", "STRIPE PAYOUT FAILURE")
            payout.update(status="failed", failure_code=code, failure_balance_transaction=bt["id"])
            snapshot = _copy(payout)
        self.emit(self._event("payout.failed", snapshot, previous={"status": "paid"}))
        return snapshot

    def _add_bt(self, amount: int, fee: int, currency: str, source: str, type_: str,
                category: str, description: str) -> dict[str, Any]:
        now = int(self.time())
        bt_id = self.new_id("txn_", 24, _ID_CHARS)
        bt = {"id": bt_id, "object": "balance_transaction", "amount": amount, "available_on": now,
              "created": now, "currency": currency, "description": description, "exchange_rate": None,
              "fee": fee, "fee_details": [{"amount": fee, "application": None, "currency": currency,
                                           "description": "Dispute fee", "type": "stripe_fee"}]
              if fee else [], "net": amount - fee, "reporting_category": category, "source": source,
              "status": "available", "type": type_}
        self.balance_transactions[bt_id] = bt
        return _copy(bt)

    # --- lists -------------------------------------------------------------------------------

    def _page(self, rows: Iterable[dict[str, Any]], url: str, what: str,
              render: Optional[Callable[[dict[str, Any]], dict[str, Any]]] = None) -> Response:
        """One Stripe list page of ``rows`` (any order in; newest first out). ``render``: each
        row of the page made into the object shown (rows then need only ``id`` and ``created``),
        so that a page of a large history costs its rows, not the whole list."""
        args = request.args
        try:
            limit = min(100, max(1, int(args.get("limit", "10"))))
            keep = _created_filter(args)
        except ValueError:
            return self._error(400, "parameter_invalid_integer", "Invalid integer", param="limit")
        indexed = list(enumerate(rows))
        # Newest first; among equal times the later-made first (Stripe's order is by creation).
        found = [r for _, r in sorted(indexed, key=lambda p: (p[1]["created"], p[0]), reverse=True)
                 if keep(r["created"])]
        ids = [r["id"] for r in found]
        after, before = args.get("starting_after"), args.get("ending_before")
        if after or before:
            cursor = after or before
            if cursor not in ids:
                return self._error(404, "resource_missing", f"No such {what}: '{cursor}'",
                                   param="starting_after" if after else "ending_before")
            i = ids.index(cursor)
            if after:
                rest = found[i + 1:]
                page, has_more = rest[:limit], len(rest) > limit
            else:
                rest = found[:i]
                page, has_more = rest[-limit:], len(rest) > limit
        else:
            page, has_more = found[:limit], len(found) > limit
        if render is not None:
            page = [render(r) for r in page]
        return self.json_response({"object": "list", "data": _copy(page), "has_more": has_more,
                                   "url": url})

    def _list_events(self) -> Response:
        args = request.args
        types = [v for k, v in args.items(multi=True) if k.startswith("types[")]
        one = args.get("type")
        if types and one:
            return self._error(400, None, "You may only specify one of these parameters: type, types.")
        horizon = int(self.time()) - EVENTS_HORIZON

        def wanted(event_type: str) -> bool:
            if types:
                return event_type in types
            if one:
                if one.endswith("*"):
                    return event_type.startswith(one[:-1])
                return event_type == one
            return True

        with self.lock:
            rows = [e for e in self.events if e["created"] >= horizon and wanted(e["type"])]
            return self._page(rows, "/v1/events", "event")

    def _list_charges(self) -> Response:
        expand = [v for k, v in request.args.items(multi=True) if k.startswith("expand")]
        with self.lock:
            rows = [{"id": c.id, "created": c.created, "charge": c} for c in self.charges.values()]
            return self._page(rows, "/v1/charges", "charge", lambda r: self._charge_object(
                r["charge"], "data.balance_transaction" in expand))

    def _list_disputes(self) -> Response:
        charge = request.args.get("charge")
        with self.lock:
            rows = [d for d in self.disputes.values() if not charge or d["charge"] == charge]
            return self._page(rows, "/v1/disputes", "dispute")

    def _list_balance_transactions(self) -> Response:
        args = request.args
        with self.lock:
            payout = args.get("payout")
            if payout and payout not in self.payouts:
                return self._error(404, "resource_missing", f"No such payout: '{payout}'", param="payout")
            rows = [bt for bt in self.balance_transactions.values()
                    if (not payout or self.bt_payout.get(bt["id"]) == payout)
                    and (not args.get("type") or bt["type"] == args["type"])
                    and (not args.get("source") or bt["source"] == args["source"])
                    and (not args.get("currency") or bt["currency"] == args["currency"].lower())]
            expand = [v for k, v in args.items(multi=True) if k.startswith("expand")]
            render = (lambda bt: {**bt, "source": self._source_object(bt["source"])}) if "data.source" in expand else None
            return self._page(rows, "/v1/balance_transactions", "balance transaction", render)

    def _source_object(self, source_id: str) -> Any:
        """What ``expand[]=data.source`` puts in a balance transaction (under the lock)."""
        if source_id in self.charges:
            return self._charge_object(self.charges[source_id])
        for book in (self.refunds, self.disputes, self.payouts):
            if source_id in book:
                return book[source_id]
        return source_id

    def _list_payouts(self) -> Response:
        status = request.args.get("status")
        with self.lock:
            rows = [p for p in self.payouts.values() if not status or p["status"] == status]
            return self._page(rows, "/v1/payouts", "payout")

    def _get_payout(self, payout_id: str) -> Response:
        with self.lock:
            payout = self.payouts.get(payout_id)
            if payout is None:
                return self._error(404, "resource_missing", f"No such payout: '{payout_id}'", param="id")
            return self.json_response(payout)


def book_totals(fake) -> dict[tuple[str, str], tuple[int, int]]:
    """What the fake Stripe's record says happened, in the ledger's terms: ``(kind, currency)``
    -> ``(count, signed sum)`` (sale +, fee -, refund -, chargeback -, ...)."""
    out: dict[tuple[str, str], list[int]] = {}

    def add(kind: str, currency: str, amount: int) -> None:
        row = out.setdefault((kind, currency.upper()), [0, 0])
        row[0] += 1
        row[1] += amount

    with fake.lock:
        for charge in fake.charges.values():
            add("sale", charge.currency, charge.amount)
            bt = fake.balance_transactions.get(charge.balance_transaction or "")
            if bt and bt["fee"] and bt["currency"] == charge.currency:  # else unknown to the ledger
                add("fee", charge.currency, -bt["fee"])
        for refund in fake.refunds.values():
            if refund["status"] == "succeeded":
                add("refund", refund["currency"], -refund["amount"])
        for dispute in fake.disputes.values():
            for bt in dispute["balance_transactions"]:
                if bt["amount"] < 0:
                    add("chargeback", dispute["currency"], bt["amount"])
                    if bt["fee"]:
                        add("chargeback_fee", dispute["currency"], -bt["fee"])
                else:
                    add("chargeback_reversal", dispute["currency"], bt["amount"])
                    if bt["fee"] < 0:
                        add("chargeback_fee_reversal", dispute["currency"], -bt["fee"])
    return {k: (v[0], v[1]) for k, v in out.items()}
