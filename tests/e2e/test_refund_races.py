"""Concurrent writers on one order (PostgreSQL runs them at once; SQLite serialises writers):
refund requests filed at the same moment never approve more than was paid. Without a lock
three of these eight were approved on PostgreSQL; with the orders' row versions alone (no lock)
one is approved and the others fail as concurrent updates; with the per-order lock
(bridge/ledger/locks.py) each waits for the one before and is answered on its merits. (The other
race the lock closes, a confirmation webhook applied while the worker records the same refund,
is what T7 in test_refund_faults.py caught; tests/integration/test_ledger_locks.py checks who
waits for whom.)"""
import threading
from collections import Counter

from tests.e2e.test_refund_flow import LICENSE_ITEM, fakes, pay_stripe, register, settle, shop  # noqa: F401


def test_simultaneous_requests_for_one_order_approve_once(shop, fakes):
    stripe, _ = fakes
    register(shop, "ord_race", "software-mor", [LICENSE_ITEM])
    pay_stripe(shop, stripe, "ord_race")
    n = 8
    barrier = threading.Barrier(n)
    answers = []

    def file(i):
        barrier.wait(10)
        r = shop.api("POST", "/refund-requests", {"order_id": "ord_race", "reason": "not_satisfied",
                                                  "requested_at": "2026-03-05T10:00:00Z"},
                     headers={"Idempotency-Key": f"race-{i}"})
        answers.append((r.status_code, r.json().get("status") or r.json()["error"]["code"]))

    threads = [threading.Thread(target=file, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    got = Counter(answers)
    assert got[(201, "approved")] == 1, got
    assert sum(v for (code, _), v in got.items() if code == 409) == n - 1, got
    # Each later request saw the approved one: refused for what it asks, not for having raced.
    assert {why for (code, why) in got if code == 409} <= {"nothing_to_refund", "exceeds_remaining"}, got
    approved = next(a for a in shop.api("GET", "/refund-requests?status=approved").json()["refund_requests"])
    done = settle(shop, stripe, approved["id"], "refunded")
    assert done["status"] == "refunded" and len(stripe.applied) == 1
