"""The pure decision: (policy, order, request, now) -> Decision. No clock, no I/O.

Per item: the first row of its category (common rows first) whose conditions hold decides;
the row's amount rule gives the refund base, capped at what remains unrefunded; a
fee-deducting policy keeps ``ceil(share * base / amount)``, never more than what earlier
refunds left of the item's fee share (``fees.py``). Then, order-wide: the bundle rule
(if the policy has one and the order is a bundle) and the statutory overlay (if switched on).
Money is integer minor units; refunds round down, deductions up. Every approved or reviewed
item carries the deadline of the window that gave it (``_deadline``), the decision its
earliest.
"""
from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Optional

from .decision import Decision, ItemDecision
from .errors import PolicyInputError
from .explain import join, missing_phrase, money_labels, sentence
from .model import Category, Clause, Policy, Row, dedupe_clauses
from .inputs import Order, OrderItem, RefundRequest
from .rules import Context
from .windows import Window, clock_words
_DAY = timedelta(days=1)
_US = timedelta(microseconds=1)
_DAY_US = 86_400_000_000
_SETTLED = "already_refunded"     # engine rule: nothing left to refund on the item


def evaluate(policy: Policy, order: Order, request: RefundRequest, now: datetime,
             allow_future: bool = False) -> Decision:
    """Decide ``request`` on ``order`` under ``policy`` at time ``now`` (aware datetime).

    ``allow_future``: the simulator decides hypothetical requests, so there ``requested_at``
    may be after ``now`` (policies.md); a real request's may not.

    Raises :class:`PolicyInputError` for inputs the policy cannot judge (unknown reason,
    category or item, a billing the category does not sell, a request time in the future or
    before an item's payment).
    """
    reason = request.reason
    if reason not in policy.reasons:
        raise PolicyInputError("request.reason", f"must be one of {', '.join(policy.reasons)}, got {reason!r}")
    requested_at = request.requested_at
    if requested_at > now and not allow_future:
        raise PolicyInputError("request.requested_at", f"{requested_at.isoformat()} is in the future")

    selected = _select(order, request)
    order_facts = order.facts
    req_facts = request.facts
    item_facts = request.item_facts
    results: list[ItemDecision] = []
    for index, item in selected:
        category = policy.categories.get(item.category)
        if category is None:
            raise PolicyInputError(
                f"order.items[{index}].category",
                f"{item.category!r} is not a category of policy {policy.id!r} "
                f"(one of {', '.join(policy.categories)})")
        billing = item.billing or category.default_billing
        if billing is None or billing not in category.billing:
            raise PolicyInputError(
                f"order.items[{index}].billing",
                f"{billing or 'missing'}: category {item.category!r} is billed "
                f"{' or '.join(sorted(category.billing))}")
        if requested_at < item.paid_at:
            raise PolicyInputError("request.requested_at",
                                   f"is before the payment of item {item.item_id!r}")
        extra = item_facts.get(item.item_id) if item_facts else None
        if item.facts or req_facts or extra:
            facts = {**order_facts, **item.facts, **req_facts, **(extra or {})}
        else:
            facts = order_facts
        results.append(_decide_item(policy, category, item, billing, facts, reason, requested_at))

    if policy.bundle is not None and order.bundle and len(order.items) > 1:
        results = _bundle(policy, order, request, results)
    overlay = policy.overlay
    if overlay.enabled and not order.business and order.country in overlay.countries:
        window = overlay.window
        for i, (_, item) in enumerate(selected):
            r = results[i]
            if (r.outcome == "denied" and r.rule != _SETTLED
                    and requested_at - item.paid_at <= window):
                results[i] = _with(r, outcome="review", clauses=dedupe_clauses(r.clauses + overlay.cite),
                                   because=overlay.because, statutory_overlay=True,
                                   deadline=item.paid_at + window)

    refund = fee = 0
    has_review = has_approved = False
    deadline = None
    for r in results:
        if r.outcome == "review":
            has_review = True
        elif r.outcome == "approved":
            has_approved = True
            refund += r.refund_amount
            fee += r.fee_deducted
        else:
            continue
        if r.deadline is not None and (deadline is None or r.deadline < deadline):
            deadline = r.deadline        # the order's decision holds until its first item's ends
    if has_review:
        outcome, refund, fee = "review", 0, 0
    elif has_approved:
        outcome = "approved"
    else:
        outcome, refund, fee = "denied", 0, 0
    if len(results) == 1:
        clauses = results[0].clauses
    else:
        clauses = dedupe_clauses(tuple(c for r in results for c in r.clauses))
    return Decision(outcome=outcome, refund_amount=refund, fee_deducted=fee,
                    currency=order.currency, policy_id=policy.id, policy_version=policy.version,
                    policy_hash=policy.hash, clauses=clauses,
                    explanation=sentence(results, order.currency), items=tuple(results),
                    reason=reason, requested_at=requested_at, deadline=deadline)


def _select(order: Order, request: RefundRequest) -> list[tuple[int, OrderItem]]:
    if request.items is None:
        return list(enumerate(order.items))
    wanted = request.items
    positions = {item.item_id: i for i, item in enumerate(order.items)}
    out = []
    seen = set()
    for j, item_id in enumerate(wanted):
        i = positions.get(item_id)
        if i is None:
            raise PolicyInputError(f"request.items[{j}]", f"no item {item_id!r} in the order")
        if item_id in seen:
            raise PolicyInputError(f"request.items[{j}]", f"item {item_id!r} is listed twice")
        seen.add(item_id)
        out.append((i, order.items[i]))
    if not out:
        raise PolicyInputError("request.items", "names no item (omit it for the whole order)")
    out.sort()
    return out


def _decide_item(policy: Policy, category: Category, item: OrderItem, billing: str,
                 facts: Mapping[str, Any], reason: str, requested_at: datetime) -> ItemDecision:
    label = item.sku or item.item_id
    remaining = item.amount - item.already_refunded
    if remaining <= 0:
        because = ("nothing was paid for it" if item.amount == 0
                   else "it has already been refunded in full")
        return ItemDecision(item.item_id, "denied", 0, 0, (), _SETTLED, because, label,
                            facts=facts)
    ctx = Context(reason, billing, item.purchase, item.duplicate_charge, facts, item.fee,
                  item.paid_at, requested_at, item.period_start)
    matched = None
    for row in category.rows:            # Row.matches, inline: this loop is the hot path
        for check in row.checks:
            if not check(ctx):
                break
        else:
            matched = row
            break
    if matched is None:
        return ItemDecision(item.item_id, "review", 0, 0, category.cite, "no_rule",
                            "no rule of our refund policy covers this purchase", label, facts=facts)
    row = matched

    outcome = row.outcome
    if outcome == "denied":
        return ItemDecision(item.item_id, "denied", 0, 0, row.cite, row.id, row.because, label,
                            facts=facts)
    if row.deadline_delta is not None:
        deadline = item.paid_at + row.deadline_delta
    elif row.has_deadline:
        deadline = _deadline(row, ctx)
    else:
        deadline = None
    if outcome == "review":
        missing = tuple(n for n in row.unknown if ctx.money(n) is None) if row.unknown else ()
        because = row.because
        if missing:
            because = f"{because}, and {missing_phrase(missing, policy.label)}"
        return ItemDecision(item.item_id, "review", 0, 0, row.cite, row.id, because, label,
                            missing=missing, facts=facts, deadline=deadline)

    amount_rule = row.amount
    because = row.because
    if amount_rule == "full":
        base = remaining
    elif amount_rule == "pro_rated":
        base = min(_pro_rated(item, billing, requested_at), remaining)
    elif amount_rule == "amount_minus":
        missing = tuple(n for n in row.minus if facts.get(n) is None)
        if missing:
            return _missing(policy, item, row, row.cite, missing, label, facts, deadline)
        base = item.amount
        for name in row.minus:
            base -= facts[name]
        base = min(base, remaining)
    else:  # percent | tiered: a share of the price, rounded down (the merchant's favour)
        share = row.percent if amount_rule == "percent" else ctx.tier
        base = min(item.amount * share.numerator // share.denominator, remaining)
        if amount_rule == "tiered":
            because = share.because or (f"{because}, and {share.percent}% of the price is refunded "
                                        f"{share.window.phrase(_clock(policy, share.window))}")
    if base <= 0:
        return ItemDecision(item.item_id, "denied", 0, 0, row.cite, row.id,
                            f"{because}, which leaves nothing to refund", label, facts=facts)
    fee_deducted = 0
    clauses = row.cite
    if policy.fees.deducts and not row.waive_fee:
        if item.fee is None:
            return _missing(policy, item, row, row.cite_fee, ("fee",), label, facts, deadline)
        # fees.fee_to_keep, inline (the hot path): ceil(share * base / amount), capped at
        # what earlier refunds left of the share and at the base
        left = item.fee - item.fee_kept
        fee_deducted = min(-(-(item.fee * base) // item.amount), left, base) if left > 0 else 0
        if fee_deducted:
            clauses = row.cite_fee
    refund = base - fee_deducted
    if refund <= 0:
        return ItemDecision(item.item_id, "denied", 0, 0, clauses, row.id,
                            f"{because}, but the non-refundable processing fee leaves nothing "
                            "to refund", label, facts=facts)
    return ItemDecision(item.item_id, "approved", refund, fee_deducted, clauses, row.id,
                        because, label, full=base == remaining, facts=facts, deadline=deadline)


def _clock(policy: Policy, window: Window) -> str:
    return clock_words(window.clock, {n: policy.label(n) for n in (window.clock,)})


def _deadline(row: Row, ctx: Context) -> Optional[datetime]:
    """The last instant of the window that gave this outcome (policies.md, "Deadlines"): the
    row's own within_* windows (for tiers, the tier that applied), and the after_* window of
    an earlier row that would take over once it passes (a category whose "after 30 days:
    denied" row comes before its "not provisioned: approved" row)."""
    ends = []
    for window in row.within:
        end = ctx.window_end(window)
        if end is not None:
            ends.append(end)
    if row.tiers and ctx.tier is not None:
        end = ctx.window_end(ctx.tier.window)
        if end is not None:
            ends.append(end)
    for guard in row.guards:
        if all(check(ctx) for check in guard.plain):
            for window in guard.after:
                end = ctx.window_end(window)
                if end is not None:
                    ends.append(end)
    return min(ends) if ends else None


def _missing(policy: Policy, item: OrderItem, row: Row, clauses: tuple[Clause, ...],
             missing: tuple[str, ...], label: str, facts: Mapping[str, Any],
             deadline: Optional[datetime] = None) -> ItemDecision:
    """An amount the rule needs is unknown: a person decides, the engine never guesses."""
    verb = "is" if len(missing) == 1 else "are"
    because = (f"the refund amount depends on {money_labels(missing, policy.label)}, which {verb} "
               "not known yet")
    return ItemDecision(item.item_id, "review", 0, 0, clauses, row.id, because, label,
                        missing=missing, facts=facts, deadline=deadline)


def _pro_rated(item: OrderItem, billing: str, requested_at: datetime) -> int:
    """floor(amount * (period_days - used_days) / period_days), used_days >= 1 (policies.md)."""
    start = item.period_start or item.paid_at
    end = item.period_end or _one_period_after(start, billing)
    period_days = max(1, (end - start) // _DAY)
    elapsed_us = (requested_at - start) // _US
    used_days = max(1, -(-elapsed_us // _DAY_US))
    return item.amount * max(0, period_days - used_days) // period_days


def _one_period_after(start: datetime, billing: str) -> datetime:
    """The end of a period given only its start: one calendar month for monthly billing,
    otherwise one calendar year (365 or 366 days). A day that does not exist in the target
    month (29 February, 31st) is clamped to the month's last day."""
    if billing == "monthly":
        year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    else:
        year, month = start.year + 1, start.month
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def _bundle(policy: Policy, order: Order, request: RefundRequest,
            results: list[ItemDecision]) -> list[ItemDecision]:
    """Items already refunded in full are settled: they keep their own result and neither
    block nor count; the bundle rule judges the rest."""
    rule = policy.bundle
    assert rule is not None
    whole = request.items is None or len(set(request.items)) == len(order.items)
    if not whole:
        return [r if r.rule == _SETTLED else
                _with(r, outcome="denied", refund_amount=0, fee_deducted=0, clauses=rule.cite,
                      rule="bundle", because=f"{rule.because}, not in part", full=False,
                      missing=(), deadline=None) for r in results]
    blockers = [r for r in results if r.rule != _SETTLED and (
        r.outcome == "denied" or (r.outcome == "approved" and not r.full))]
    if blockers:
        clauses = dedupe_clauses(rule.cite + tuple(c for b in blockers for c in b.clauses))
        names = join([b.label for b in blockers])
        in_full = "" if all(b.outcome == "denied" for b in blockers) else " in full"
        own = "its" if len(blockers) == 1 else "their"
        details = "; ".join(b.because for b in blockers)
        because = f"{rule.because}, and {names} cannot be refunded{in_full} on {own} own ({details})"
        ids = tuple(b.item_id for b in blockers)
        return [r if r.rule == _SETTLED else
                _with(r, outcome="denied", refund_amount=0, fee_deducted=0, clauses=clauses,
                      rule="bundle", because=because, blocked_by=ids, full=False, missing=(),
                      deadline=None)
                for r in results]
    reviews = [r for r in results if r.outcome == "review"]
    if reviews:
        clauses = dedupe_clauses(rule.cite + tuple(c for b in reviews for c in b.clauses))
        names = join([b.label for b in reviews])
        details = "; ".join(b.because for b in reviews)
        because = (f"{rule.because}, and {names} {'needs' if len(reviews) == 1 else 'need'} "
                   f"a review ({details})")
        missing = tuple(dict.fromkeys(m for b in reviews for m in b.missing))
        ids = tuple(b.item_id for b in reviews)
        return [r if r.rule == _SETTLED else
                _with(r, outcome="review", refund_amount=0, fee_deducted=0, clauses=clauses,
                      rule="bundle", because=because, blocked_by=ids, missing=missing)
                for r in results]
    return results


def _with(item: ItemDecision, **changes: Any) -> ItemDecision:
    fields = {name: getattr(item, name) for name in ItemDecision.__slots__}
    fields.update(changes)
    return ItemDecision(**fields)

