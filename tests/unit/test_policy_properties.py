"""Properties over random orders, facts and requests across the three shipped policies: a
refund never exceeds what was paid minus what was already refunded, is never negative, the
outcome agrees with the amount, and the same input always gives the same decision."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.policy import Order, OrderItem, PolicyRegistry, RefundRequest, evaluate
from bridge.policy.vocab import BOOL_FACTS, MONEY_FACTS

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = PolicyRegistry.load(ROOT / "config" / "policies")
POLICIES = [REGISTRY.get(i) for i in REGISTRY.ids()]
BASE = datetime(2027, 12, 1, tzinfo=timezone.utc)          # spans the 2028 leap day
NOW = BASE + timedelta(days=900)


@st.composite
def facts(draw, policy=None) -> dict:
    """Standard facts, or the facts a policy accepts (its declared ones too)."""
    bools = [n for n, t in policy.fact_types.items() if t == "bool"] if policy else list(BOOL_FACTS)
    money = [n for n, t in policy.fact_types.items() if t == "money"] if policy else list(MONEY_FACTS)
    out = {}
    for name in draw(st.lists(st.sampled_from(bools), unique=True, max_size=4)):
        out[name] = draw(st.booleans())
    for name in draw(st.lists(st.sampled_from(money), unique=True, max_size=3)):
        out[name] = draw(st.integers(0, 2_000_000))
    return out


@st.composite
def cases(draw):
    policy = draw(st.sampled_from(POLICIES))
    n = draw(st.integers(1, 3))
    items = []
    latest_paid = BASE
    for i in range(n):
        category = policy.categories[draw(st.sampled_from(sorted(policy.categories)))]
        amount = draw(st.integers(0, 5_000_000))
        paid_at = BASE + timedelta(seconds=draw(st.integers(0, 400 * 86400)))
        latest_paid = max(latest_paid, paid_at)
        period_start = period_end = None
        if draw(st.booleans()):
            period_start = paid_at - timedelta(seconds=draw(st.integers(0, 86400)))
            if draw(st.booleans()):
                period_end = period_start + timedelta(days=draw(st.integers(1, 400)))
        items.append(OrderItem(
            item_id=f"li_{i}", category=category.name, amount=amount, paid_at=paid_at,
            billing=draw(st.sampled_from(sorted(category.billing))),
            purchase=draw(st.sampled_from(["initial", "renewal"])),
            fee=draw(st.none() | st.integers(0, amount + 500)),
            period_start=period_start, period_end=period_end,
            already_refunded=draw(st.integers(0, amount)),
            duplicate_charge=draw(st.booleans()), facts=draw(facts(policy))))
    order = Order(currency=draw(st.sampled_from(["USD", "EUR", "JPY", "KWD"])), items=tuple(items),
                  bundle=draw(st.booleans()), country=draw(st.sampled_from([None, "US", "DE", "GB", "NO"])),
                  business=draw(st.booleans()), facts=draw(facts(policy)))
    requested_at = latest_paid + timedelta(seconds=draw(st.integers(0, 60 * 86400)))
    wanted = None
    if draw(st.booleans()):
        wanted = tuple(draw(st.lists(st.sampled_from([it.item_id for it in items]), unique=True, min_size=1)))
    req_facts = draw(facts(policy))
    if draw(st.booleans()):
        req_facts["problem_reported_at"] = requested_at - timedelta(seconds=draw(st.integers(0, 20 * 86400)))
    request = RefundRequest(reason=draw(st.sampled_from(sorted(policy.reasons))), requested_at=requested_at,
                            items=wanted, facts=req_facts,
                            item_facts={items[0].item_id: draw(facts(policy))})
    return policy, order, request


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_refund_bounds_and_determinism(case):
    policy, order, request = case
    decision = evaluate(policy, order, request, NOW)
    by_id = {it.item_id: it for it in order.items}
    total_remaining = 0
    for result in decision.items:
        item = by_id[result.item_id]
        remaining = item.amount - item.already_refunded
        total_remaining += remaining
        assert 0 <= result.refund_amount <= remaining
        assert 0 <= result.fee_deducted and result.refund_amount + result.fee_deducted <= remaining
        assert result.outcome in ("approved", "denied", "review")
        if result.outcome == "approved":
            assert result.refund_amount > 0
        else:
            assert result.refund_amount == 0
        if remaining == 0:
            assert result.outcome == "denied"
    assert 0 <= decision.refund_amount <= total_remaining
    if decision.outcome == "approved":
        assert decision.refund_amount > 0
        assert decision.refund_amount == sum(r.refund_amount for r in decision.items)
    else:
        assert decision.refund_amount == 0
    assert decision.explanation.endswith(".") and ". " not in decision.explanation
    for result in decision.items:                    # a deadline only where one applies
        if result.outcome == "denied":
            assert result.deadline is None
        elif result.deadline is not None:
            assert result.deadline >= by_id[result.item_id].paid_at
    if decision.deadline is not None:
        assert decision.outcome != "denied"
        assert decision.deadline == min(r.deadline for r in decision.items if r.deadline is not None
                                        and r.outcome != "denied")
    again = evaluate(policy, order, request, NOW)
    assert again == decision
    assert again.to_dict() == decision.to_dict()


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10_000_000), st.integers(0, 1_000_000), st.integers(0, 10_000_000))
def test_fee_deduction_rounds_up_and_refund_down(amount, fee, minus):
    """software-mor amount_minus: fee_deducted = ceil(fee * base / amount), refund = base - fee."""
    policy = REGISTRY.get("software-mor")
    item = OrderItem(item_id="x", category="custom_development", amount=amount, fee=fee,
                     paid_at=BASE, facts={"work_started": True, "delivered_milestones_amount": minus,
                                          "documented_effort_amount": 0})
    d = evaluate(policy, Order(currency="USD", items=(item,)),
                 RefundRequest(reason="not_satisfied", requested_at=BASE + timedelta(days=3)), NOW)
    base = max(0, amount - minus)
    deducted = min(base, -(-(fee * base) // amount))
    if base - deducted > 0:
        assert (d.outcome, d.refund_amount, d.fee_deducted) == ("approved", base - deducted, deducted)
        assert d.fee_deducted * amount >= fee * base                 # never less than the exact share
    else:
        assert (d.outcome, d.refund_amount) == ("denied", 0)
