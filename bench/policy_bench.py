"""Throughput of the refund policy evaluator alone (no parsing, no I/O, one core).

Builds a few thousand varied, valid inputs across the shipped policies (every category, both
purchases, windows on both sides, facts, bundles, EU consumers), then evaluates them in a loop
for a few seconds and prints decisions per second.

    .venv/bin/python bench/policy_bench.py [--seconds 3] [--inputs 4000] [--to-dict]
        [--policies micromastery,mittrik,software-mor]

Facts are drawn from each policy's own boolean and money facts (the standard ones, and those a
policy declares). ``--policies`` limits the mix to some policies (the figures in
bench/README.md compare the three seed policies, the only ones older versions had).
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge.policy import Order, OrderItem, PolicyRegistry, RefundRequest, evaluate  # noqa: E402
from bridge.policy.vocab import REASONS  # noqa: E402

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
NOW = datetime(2028, 1, 1, tzinfo=timezone.utc)


def _names(policy, kind: str) -> list[str]:
    facts = getattr(policy, "facts", None)
    if not facts:                      # a version of the engine before declared facts
        from bridge.policy.vocab import BOOL_FACTS, MONEY_FACTS
        return list(BOOL_FACTS if kind == "bool" else MONEY_FACTS)
    return [n for n, f in facts.items() if f.type == kind]


def build_inputs(registry: PolicyRegistry, count: int, seed: int = 7, ids: list[str] | None = None) -> list:
    rng = random.Random(seed)
    policies = [registry.get(i) for i in (ids or registry.ids())]
    out = []
    for n in range(count):
        policy = policies[n % len(policies)]
        items = []
        paid = BASE + timedelta(seconds=rng.randrange(300 * 86400))
        for i in range(rng.choice((1, 1, 1, 2, 3))):
            category = policy.categories[rng.choice(sorted(policy.categories))]
            billing = rng.choice(sorted(category.billing))
            amount = rng.randrange(100, 2_000_000)
            bools, money = _names(policy, "bool"), _names(policy, "money")
            facts = {name: rng.random() < 0.3 for name in rng.sample(bools, min(len(bools), rng.randrange(4)))}
            for name in rng.sample(money, min(len(money), rng.randrange(3))):
                facts[name] = rng.randrange(0, amount)
            period_start = paid if billing != "one_time" and rng.random() < 0.7 else None
            period_end = None
            if period_start is not None and rng.random() < 0.5:
                period_end = period_start + timedelta(days=365 if billing == "annual" else 30)
            items.append(OrderItem(
                item_id=f"li_{i}", category=category.name, amount=amount, paid_at=paid,
                billing=billing, purchase=rng.choice(("initial", "initial", "renewal")),
                fee=None if rng.random() < 0.1 else amount * 3 // 100 + 30,
                period_start=period_start, period_end=period_end,
                already_refunded=0 if rng.random() < 0.9 else rng.randrange(amount),
                duplicate_charge=rng.random() < 0.05, facts=facts))
        order = Order(currency=rng.choice(("USD", "EUR", "JPY")), items=tuple(items),
                      bundle=len(items) > 1 and rng.random() < 0.5,
                      country=rng.choice(("US", "DE", "GB", "FR", None)), business=rng.random() < 0.2)
        requested_at = paid + timedelta(seconds=rng.choice((
            rng.randrange(86400), rng.randrange(8 * 86400), rng.randrange(40 * 86400), 7 * 86400, 30 * 86400 + 1)))
        wanted = None
        if len(items) > 1 and rng.random() < 0.3:
            wanted = (items[0].item_id,)
        req_facts = {}
        if rng.random() < 0.2:
            req_facts["technical_issue"] = True
            req_facts["problem_reported_at"] = paid + timedelta(seconds=rng.randrange(10 * 86400))
            if req_facts["problem_reported_at"] > requested_at:
                req_facts["problem_reported_at"] = requested_at
        reasons = list(getattr(policy, "reasons", None) or REASONS)
        request = RefundRequest(reason=rng.choice(reasons), requested_at=requested_at, items=wanted,
                                facts=req_facts)
        out.append((policy, order, request))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--inputs", type=int, default=4000)
    parser.add_argument("--to-dict", action="store_true", help="also build the api.md dict each time")
    parser.add_argument("--policies", help="comma-separated policy ids (default: every shipped policy)")
    args = parser.parse_args(argv)

    registry = PolicyRegistry.load(ROOT / "config" / "policies")
    ids = args.policies.split(",") if args.policies else None
    inputs = build_inputs(registry, args.inputs, ids=ids)
    outcomes = Counter(evaluate(p, o, r, NOW).outcome for p, o, r in inputs)   # warm-up + mix
    to_dict = args.to_dict

    done = 0
    start = time.perf_counter()
    deadline = start + args.seconds
    while True:
        for policy, order, request in inputs:
            decision = evaluate(policy, order, request, NOW)
            if to_dict:
                decision.to_dict()
        done += len(inputs)
        if time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - start
    rate = done / elapsed
    mix = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    print(f"inputs: {len(inputs)} across {', '.join(ids or registry.ids())} (outcomes: {mix})")
    print(f"{done} decisions in {elapsed:.2f} s{' (with to_dict)' if to_dict else ''}")
    print(f"{rate:,.0f} decisions/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
