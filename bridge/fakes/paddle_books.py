"""The fake Paddle's books: what it did, listed the way Paddle lists it, and the calls that make
history (a completed sale, a refund Paddle approved, a chargeback and its reversal).

Routes (mixed into ``FakePaddle``): ``GET /events`` (90-day horizon of the fake's own clock,
``event_type`` comma list, ``order_by`` ``id[ASC]``/``id[DESC]`` (default DESC), ``per_page``
up to 200, default 50), ``GET /transactions`` (``status``, ``id``, ``created_at[GTE|GT|LT|LTE]``,
``per_page`` up to 30, the default). Both, like ``GET /adjustments``, page with ``after`` (the
last id seen) and ``meta.pagination`` (``next`` to follow verbatim, ``has_more``,
``estimated_total``). Event ids sort by creation time, as Paddle's do, so ``after`` an event
that has aged out of the horizon still goes on from the right place.
"""
from __future__ import annotations

import functools
import json
import string
from datetime import datetime, timezone
from typing import Any, Callable, Optional, Sequence
from urllib.parse import urlencode

from flask import Flask, Response, request

EVENTS_HORIZON = 90 * 86400        # Paddle keeps events for 90 days
CHARGEBACK_FEE = 1500
_ID_CHARS = string.ascii_lowercase + string.digits
_B32 = "0123456789abcdefghjkmnpqrstvwxyz"


def _copy(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.lru_cache(maxsize=200_000)  # every list page filters the whole history by its times
def _parse_iso(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class PaddleBooks:
    """Mixin of ``FakePaddle`` (uses its lock, clock, ids, ``_error``, ``_meta``, ``emit``)."""

    def _book_routes(self, app: Flask) -> None:
        app.get("/events")(self._list_events)
        app.get("/transactions")(self._list_transactions)

    def _iso_now(self) -> str:
        return _iso(self.time())

    def sortable_id(self, prefix: str) -> str:
        """A Paddle-like id whose order is the order of creation (time first, then random)."""
        ms = int(self.time() * 1000)
        head = "".join(_B32[(ms >> (5 * i)) & 31] for i in range(9, -1, -1))
        return prefix + head + self.new_id("", 16, _ID_CHARS)

    # --- history-making calls ----------------------------------------------------------------

    def sell(self, txn_id: str, currency: str, line_items: Sequence[tuple[str, int]], fee: int, *,
             order_id: Optional[str] = None, customer_id: Optional[str] = None,
             webhook_fee: Optional[int] = None) -> dict[str, Any]:
        """A completed transaction, announced by ``transaction.completed``. ``webhook_fee``
        (the fee knob): the webhook says this fee while Paddle's record keeps ``fee``."""
        txn = self.add_transaction(txn_id, currency, line_items, fee, customer_id=customer_id,
                                   custom_data={"order_id": order_id} if order_id else None)
        with self.lock:
            data = self._transaction(txn)
        if webhook_fee is not None:
            for key in ("totals", "payout_totals"):
                totals = data["details"][key]
                totals["fee"] = str(webhook_fee)
                totals["earnings"] = str(int(totals["subtotal"]) - webhook_fee)
        event = self._event("transaction.completed", data)
        self.emit(event)
        return event

    def refund(self, txn_id: str, amount: Optional[int] = None,
               reason: str = "requested by the customer") -> dict[str, Any]:
        """A refund Paddle approved (its support, or the dashboard): ``adjustment.created``,
        approved. ``amount`` None refunds the whole transaction; else the first line."""
        with self.lock:
            txn = self.transactions[txn_id]
            body: dict[str, Any] = {"action": "refund", "transaction_id": txn_id, "reason": reason}
            if amount is None:
                body["type"] = "full"
            else:
                body["type"] = "partial"
                body["items"] = [{"item_id": txn.line_items[0][0], "type": "partial",
                                  "amount": str(amount)}]
            adjustment, _ = self._apply(body)
            adjustment["status"] = "approved"
            self.adjustments[adjustment["id"]] = adjustment
            snapshot = _copy(adjustment)
        self.emit(self._event("adjustment.created", snapshot))
        return snapshot

    def chargeback(self, txn_id: str, *, reverse: bool = False,
                   fee: int = CHARGEBACK_FEE) -> dict[str, Any]:
        """A chargeback of the whole transaction (money and Paddle's chargeback fee out), or
        with ``reverse`` its reversal (money back; the fee stays taken)."""
        with self.lock:
            txn = self.transactions[txn_id]
            lines = [(item_id, "full", amount) for item_id, amount in txn.line_items]
            adjustment = self._adjustment(txn, "chargeback", "full", lines, "approved")
            adjustment["action"] = "chargeback_reverse" if reverse else "chargeback"
            adjustment["payout_totals"]["chargeback_fee"] = (
                None if reverse else {"amount": str(fee), "original": None})
            self.adjustments[adjustment["id"]] = adjustment
            snapshot = _copy(adjustment)
        self.emit(self._event("adjustment.created", snapshot))
        return snapshot

    def pay_out(self, currency: str = "USD") -> Optional[dict[str, Any]]:
        """Paddle pays the balance of ``currency`` out: ``payout.created`` (unpaid), then
        ``payout.paid``. The entity has no timestamps (the events' ``occurred_at`` say when) and
        a ``remittance_reference``, sent as a number in ``payout.paid`` as Paddle's docs show.
        Each balance movement paid out is kept as its payout reconciliation report row
        (``paddle_reports``): sales net of Paddle's fee, refunds net of the fee share Paddle
        gives back, chargebacks with their fee, reversals."""
        currency = currency.upper()
        with self.lock:
            paid = getattr(self, "_paid_out", set())
            self._paid_out = paid
            movements = 0
            rows: list[dict[str, Any]] = []
            for txn in self.transactions.values():
                if txn.status == "completed" and txn.currency == currency and txn.id not in paid:
                    movements += txn.total - (txn.fee or 0)
                    rows.append(movement_row("sale", txn.id, None, currency, txn.total, fee=txn.fee or 0,
                                             when=txn.created_at))
                    paid.add(txn.id)
            for adj in self.adjustments.values():
                if adj["status"] == "approved" and adj["currency_code"] == currency and adj["id"] not in paid:
                    total = int(adj["totals"]["total"])
                    fee = int((adj["payout_totals"].get("chargeback_fee") or {}).get("amount") or 0)
                    if adj["action"] == "refund":  # Paddle gives its fee share back
                        share = total - int(adj["totals"]["earnings"])
                        row = movement_row("refund", adj["transaction_id"], adj["id"], currency, -total, fee=-share,
                                           when=adj["updated_at"])
                    elif adj["action"] == "chargeback_reverse":  # the chargeback fee stays taken
                        row = movement_row("chargeback_reverse", adj["transaction_id"], adj["id"], currency, total,
                                           when=adj["created_at"])
                    else:
                        row = movement_row(adj["action"], adj["transaction_id"], adj["id"], currency, -total,
                                           chargeback_fee=fee, when=adj["created_at"])
                    movements += row["_movement"]
                    rows.append(row)
                    paid.add(adj["id"])
            if movements <= 0:
                return None
            reference = str(10000 + len(getattr(self, "payouts", {})))
            self.payouts = getattr(self, "payouts", {})
            payout = {"id": self.new_id("payout_", 26, _ID_CHARS), "status": "unpaid", "amount": str(movements),
                      "currency_code": currency, "remittance_reference": reference}
            self.payouts[payout["id"]] = payout
            self.payout_rows[reference] = rows
        self.emit(self._event("payout.created", _copy(payout)))
        with self.lock:
            payout["status"] = "paid"
            snapshot = {**_copy(payout), "remittance_reference": int(reference)}
        self.emit(self._event("payout.paid", snapshot))
        return _copy(payout)

    # --- lists -------------------------------------------------------------------------------

    def _paddle_page(self, rows: list[dict[str, Any]], path: str, max_per_page: int,
                     default_per_page: int, *, sortable: bool = False,
                     render: Optional[Callable[[dict[str, Any]], dict[str, Any]]] = None) -> Response:
        """One page of ``rows``. ``render``: each row of the page made into the object shown
        (rows then need only their id), so that a page of a large history costs its rows."""
        args = request.args
        try:
            per_page = int(args.get("per_page", default_per_page))
        except ValueError:
            return self._error(400, "invalid_field", "per_page must be an integer.")
        if not 1 <= per_page <= max_per_page:
            return self._error(400, "invalid_field", f"per_page must be between 1 and {max_per_page}.")
        # Paddle takes the direction in either case (the SDK's Pager sends ``id[asc]``).
        order = args.get("order_by", "id[ASC]" if not sortable else "id[DESC]")
        order = order[:3] + order[3:].upper() if order.lower() in ("id[asc]", "id[desc]") else order
        if order not in ("id[ASC]", "id[DESC]"):
            return self._error(400, "invalid_field", "order_by must be id[ASC] or id[DESC].")
        descending = order == "id[DESC]"
        found = list(reversed(rows)) if descending else list(rows)
        after = args.get("after")
        if after:
            ids = [r[self._id_key(r)] for r in found]
            if after in ids:
                found = found[ids.index(after) + 1:]
            elif sortable:  # aged out of the horizon: go on by the id's own order
                found = [r for r, i in zip(found, ids) if (i < after if descending else i > after)]
            else:
                found = []
        with self.lock:
            page = _copy([render(r) for r in found[:per_page]] if render else found[:per_page])
            meta = self._meta()
        has_more = len(found) > per_page
        query = {k: v for k, v in args.items() if k != "after"}
        next_url = None
        if page:
            query["after"] = page[-1][self._id_key(page[-1])]
            next_url = f"{request.host_url.rstrip('/')}{path}?{urlencode(query)}"
        meta["pagination"] = {"per_page": per_page, "next": next_url, "has_more": has_more,
                              "estimated_total": len(found)}
        return self.json_response({"data": page, "meta": meta})

    @staticmethod
    def _id_key(row: dict[str, Any]) -> str:
        return "event_id" if "event_id" in row else "id"

    def _list_events(self) -> Response:
        raw_types = request.args.get("event_type")
        types = set(raw_types.split(",")) if raw_types else None
        horizon = self.time() - EVENTS_HORIZON
        with self.lock:
            rows = [{k: v for k, v in e.items() if k != "notification_id"} for e in self.events
                    if _parse_iso(e["occurred_at"]) >= horizon
                    and (types is None or e["event_type"] in types)]
        rows.sort(key=lambda e: e["event_id"])
        return self._paddle_page(rows, "/events", 200, 50, sortable=True)

    def _list_transactions(self) -> Response:
        args = request.args
        statuses = set(args["status"].split(",")) if args.get("status") else None
        ids = set(args["id"].split(",")) if args.get("id") else None
        bounds = []
        for op, fn in (("GTE", lambda a, b: a >= b), ("GT", lambda a, b: a > b),
                       ("LTE", lambda a, b: a <= b), ("LT", lambda a, b: a < b)):
            raw = args.get(f"created_at[{op}]")
            if raw:
                try:
                    bounds.append((fn, _parse_iso(raw)))
                except ValueError:
                    return self._error(400, "invalid_field", f"created_at[{op}] is not RFC 3339.")
        with self.lock:
            rows = [{"id": t.id, "transaction": t} for t in self.transactions.values()
                    if (statuses is None or t.status in statuses) and (ids is None or t.id in ids)
                    and all(fn(_parse_iso(t.created_at), b) for fn, b in bounds)]
        return self._paddle_page(rows, "/transactions", 30, 30, render=lambda r: self._transaction(r["transaction"]))


def movement_row(movement: str, txn_id: str, adj_id: Optional[str], currency: str, gross: int, *,
                 fee: int = 0, chargeback_fee: int = 0, when: str = "") -> dict[str, Any]:
    """One balance movement of a payout, in minor units (``paddle_reports`` writes the CSV).
    ``gross`` is signed (money in +); fees are positive when taken, negative when given back."""
    return {"balance_movement_type": movement, "balance_movement_date": when, "transaction_id": txn_id,
            "adjustment_id": adj_id or "", "balance_currency_code": currency, "transaction_currency_code": currency,
            "gross": gross, "tax": 0, "paddle_fee": fee, "fx_fee": 0, "chargeback_fee": chargeback_fee,
            "rebates_and_fees": 0, "_movement": gross - fee - chargeback_fee}


def book_totals(fake) -> dict[tuple[str, str], tuple[int, int]]:
    """What the fake Paddle's record says happened, in the ledger's terms: ``(kind, currency)``
    -> ``(count, signed sum)``."""
    out: dict[tuple[str, str], list[int]] = {}

    def add(kind: str, currency: str, amount: int) -> None:
        row = out.setdefault((kind, currency.upper()), [0, 0])
        row[0] += 1
        row[1] += amount

    with fake.lock:
        for txn in fake.transactions.values():
            if txn.status != "completed":
                continue
            add("sale", txn.currency, txn.total)
            if txn.fee:
                add("fee", txn.currency, -txn.fee)
        for adj in fake.adjustments.values():
            if adj["status"] != "approved":
                continue
            total = int(adj["totals"]["total"])
            if adj["action"] == "refund":
                add("refund", adj["currency_code"], -total)
            elif adj["action"] == "chargeback":
                add("chargeback", adj["currency_code"], -total)
                fee = (adj["payout_totals"].get("chargeback_fee") or {}).get("amount")
                if fee and int(fee):
                    add("chargeback_fee", adj["currency_code"], -int(fee))
            elif adj["action"] == "chargeback_reverse":
                add("chargeback_reversal", adj["currency_code"], total)
    return {k: (v[0], v[1]) for k, v in out.items()}
