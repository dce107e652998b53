"""A generated month (or year) of a shop at the fake providers: payments in two currencies,
refunds (full and partial), disputes (won, lost, open), spread over the fake's own clock.
Seeded, so a run is reproducible. The webhooks go wherever the fake sends them (with its
drop knob, some never do); the fake's book keeps everything (``book_totals``)."""
from __future__ import annotations

import random

from bridge.fakes.paddle_server import FakePaddle
from bridge.fakes.payments import stripe_charge
from bridge.fakes.stripe_server import FakeStripe

CURRENCIES = (("usd", 4900, 172), ("eur", 2900, 117))
PADDLE_CURRENCIES = (("USD", 4900, 245), ("EUR", 2900, 145))


def _plan(rng: random.Random, payments: int, refunds: int, disputes: int):
    refunded = set(rng.sample(range(payments), refunds))
    disputed = rng.sample(sorted(set(range(payments)) - refunded), disputes)
    return refunded, disputed


def _month(fake, sell, *, start: float, days: float, payments: int, refunds: int, disputes: int,
           seed: int):
    """The shared shape: ``payments`` sales (``sell(i, amount) -> provider id``) spread over
    ``days``, the planned refunds (every other one partial) among them; returns the ids of the
    sales to dispute, in order."""
    rng = random.Random(seed)
    refunded, disputed = _plan(rng, payments, refunds, disputes)
    step = days * 86400 / max(1, payments)
    fake.set_time(start)
    sold = []
    for i in range(payments):
        amount = rng.randrange(0, 5) * 100
        ref, amount = sell(i, amount)
        sold.append(ref)
        fake.advance(step * 0.5)
        if i in refunded:
            fake.refund(ref, None if len(refunded) % 2 else amount // 2)
            refunded.discard(i)
        fake.advance(step * 0.5)
    return [sold[i] for i in disputed]


def stripe_month(fake: FakeStripe, *, start: float, days: float = 30, payments: int = 200,
                 refunds: int = 20, disputes: int = 3, seed: int = 1, prefix: str = "") -> None:
    """``payments`` charges over ``days`` from ``start`` (unix seconds), ``refunds`` refunds
    (every other one partial), ``disputes`` disputes (the first won, the second lost, the
    rest left open)."""
    def sell(i, extra):
        currency, amount, fee = CURRENCIES[i % 2]
        cid = f"ch_{prefix}{i:06d}"
        stripe_charge(fake, charge_id=cid, amount=amount + extra, currency=currency, fee=fee + i % 7,
                      order_id=f"ord_{prefix}s{i:06d}", customer=f"cus_{prefix}{i % 50}")
        return cid, amount + extra

    to_dispute = _month(fake, sell, start=start, days=days, payments=payments, refunds=refunds,
                        disputes=disputes, seed=seed)
    for n, cid in enumerate(to_dispute):
        du = fake.dispute(cid)
        fake.advance(3600)
        if n < 2:
            fake.close_dispute(du["id"], won=(n == 0))
            fake.advance(3600)


def paddle_month(fake: FakePaddle, *, start: float, days: float = 30, payments: int = 200,
                 refunds: int = 20, disputes: int = 3, seed: int = 1, prefix: str = "") -> None:
    """The same shape at Paddle: completed transactions, approved refunds, chargebacks (the
    first one reversed)."""
    def sell(i, extra):
        currency, amount, fee = PADDLE_CURRENCIES[i % 2]
        tid = f"txn_{prefix}{i:06d}"
        fake.sell(tid, currency, [(f"txnitm_{prefix}{i:06d}", amount + extra)], fee + i % 7,
                  order_id=f"ord_{prefix}p{i:06d}", customer_id=f"ctm_{prefix}{i % 50}")
        return tid, amount + extra

    to_dispute = _month(fake, sell, start=start, days=days, payments=payments, refunds=refunds,
                        disputes=disputes, seed=seed)
    for n, tid in enumerate(to_dispute):
        fake.chargeback(tid)
        fake.advance(3600)
        if n == 0:
            fake.chargeback(tid, reverse=True)
            fake.advance(3600)
