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


def stripe_month(fake: FakeStripe, *, start: float, days: float = 30, payments: int = 200,
                 refunds: int = 20, disputes: int = 3, seed: int = 1, prefix: str = "") -> None:
    """``payments`` charges over ``days`` from ``start`` (unix seconds), ``refunds`` refunds
    (every other one partial), ``disputes`` disputes (the first won, the second lost, the
    rest left open)."""
    rng = random.Random(seed)
    refunded, disputed = _plan(rng, payments, refunds, disputes)
    step = days * 86400 / max(1, payments)
    fake.set_time(start)
    charges = []
    for i in range(payments):
        currency, amount, fee = CURRENCIES[i % 2]
        amount += 100 * rng.randrange(0, 5)
        cid = f"ch_{prefix}{i:06d}"
        stripe_charge(fake, charge_id=cid, amount=amount, currency=currency, fee=fee + i % 7,
                      order_id=f"ord_{prefix}s{i:06d}", customer=f"cus_{prefix}{i % 50}")
        charges.append((cid, amount))
        fake.advance(step * 0.5)
        if i in refunded:
            fake.refund(cid, None if len(refunded) % 2 else amount // 2)
            refunded.discard(i)
        fake.advance(step * 0.5)
    for n, i in enumerate(disputed):
        du = fake.dispute(charges[i][0])
        fake.advance(3600)
        if n < 2:
            fake.close_dispute(du["id"], won=(n == 0))
            fake.advance(3600)


def paddle_month(fake: FakePaddle, *, start: float, days: float = 30, payments: int = 200,
                 refunds: int = 20, disputes: int = 3, seed: int = 1, prefix: str = "") -> None:
    """The same shape at Paddle: completed transactions, approved refunds, chargebacks (the
    first one reversed)."""
    rng = random.Random(seed)
    refunded, disputed = _plan(rng, payments, refunds, disputes)
    step = days * 86400 / max(1, payments)
    fake.set_time(start)
    txns = []
    for i in range(payments):
        currency, amount, fee = PADDLE_CURRENCIES[i % 2]
        amount += 100 * rng.randrange(0, 5)
        tid = f"txn_{prefix}{i:06d}"
        fake.sell(tid, currency, [(f"txnitm_{prefix}{i:06d}", amount)], fee + i % 7,
                  order_id=f"ord_{prefix}p{i:06d}", customer_id=f"ctm_{prefix}{i % 50}")
        txns.append((tid, amount))
        fake.advance(step * 0.5)
        if i in refunded:
            fake.refund(tid, None if len(refunded) % 2 else amount // 2)
            refunded.discard(i)
        fake.advance(step * 0.5)
    for n, i in enumerate(disputed):
        fake.chargeback(txns[i][0])
        fake.advance(3600)
        if n == 0:
            fake.chargeback(txns[i][0], reverse=True)
            fake.advance(3600)
