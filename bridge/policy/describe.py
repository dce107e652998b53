"""``bridge policy explain ID``: a policy as a person reads it, so a merchant can check the
file says what their document says: per category, the rows in order with their conditions in
words, the outcome and amount, what they cite and the sentence the buyer reads."""
from __future__ import annotations

from typing import Any, Mapping

from .model import Clause, Policy, Row, Tier
from .windows import AFTER_KEYS, WITHIN_KEYS, Window, clock_words

_MEASURED = {"requested_at": "the request"}


def describe(policy: Policy) -> str:
    lines = [f"{policy.name} (policy {policy.id!r}, version {policy.version}, sha256 {policy.hash[:16]})"]
    if policy.source:
        lines.append(f"Source: {policy.source}")
    lines.append("")
    fees = ("the processing fee is not refunded: each refund keeps its share, "
            "ceil(share x refund / amount), never more than the fee in all"
            if policy.fees.deducts else "no processing fee is kept")
    lines.append(f"Fees: {fees}{_cites(policy.fees.cite)}.")
    if policy.bundle is not None:
        lines.append(f"Bundles: {policy.bundle.because}{_cites(policy.bundle.cite)}.")
    o = policy.overlay
    if o.enabled:
        lines.append(f"Statutory rights: for consumers in {', '.join(sorted(o.countries))}, a denial "
                     f"within {o.days} days of the payment becomes a review{_cites(o.cite)}.")
    else:
        lines.append("Statutory rights overlay: off.")
    cb = policy.chargeback
    lines.append(f"Chargebacks: while open, {cb.while_open.replace('_', ' ')}; when lost, "
                 f"{cb.when_lost.replace('_', ' ')}{_cites(cb.cite)}.")
    lines.append(f"A refund: license {policy.refund.license_action}{_cites(policy.refund.cite)}.")
    efw = policy.fraud_warning
    lines.append(f"An early fraud warning: {efw.action}{_cites(efw.cite)}.")
    own = [f for f in policy.facts.values() if f.declared]
    if own:
        lines.append("Facts this policy declares: " + "; ".join(f"{f.name} ({f.type}): {f.label}" for f in own) + ".")
    from .vocab import REASON_LABELS
    reasons = [(k, v) for k, v in policy.reasons.items() if k not in REASON_LABELS]
    if reasons:
        lines.append("Reasons this policy declares: " + "; ".join(f"{k}: {v}" for k, v in reasons) + ".")
    for category in policy.categories.values():
        lines.append("")
        billing = ", ".join(b.replace("_", "-") for b in sorted(category.billing))
        extra = f"; early fraud warning: {category.early_fraud_warning}" if category.early_fraud_warning else ""
        lines.append(f"{category.label} (category {category.name!r}, billed {billing}{extra})")
        for n, row in enumerate(category.rows, 1):
            lines.append(f"  {n}. [{row.id}] {conditions(row, policy)} -> {outcome(row, policy)}"
                         f"{_cites(row.cite)}.")
            lines.append(f"     \"... because {row.because}.\"")
        lines.append("  Otherwise: a review (no row applies)." if category.rows[-1].checks else "")
        if not lines[-1]:
            lines.pop()
    return "\n".join(lines) + "\n"


def conditions(row: Row, policy: Policy) -> str:
    when: Mapping[str, Any] = row.when
    parts = []
    if "reason" in when:
        parts.append("the reason is " + _or([f"\"{policy.reasons.get(r, r)}\" ({r})" for r in when["reason"]]))
    if "category" in when:
        parts.append("the category is " + _or(when["category"]))
    if "billing" in when:
        parts.append("billed " + _or([b.replace("_", "-") for b in when["billing"]]))
    if "purchase" in when:
        parts.append("a renewal payment" if when["purchase"] == "renewal" else "the initial purchase")
    if "duplicate_charge" in when:
        parts.append("the payment is " + ("" if when["duplicate_charge"] else "not ") + "flagged as a duplicate charge")
    for name, value in when.get("facts", {}).items():
        parts.append(f"{policy.label(name)}: {'yes' if value else 'no'}")
    if "any_fact" in when:
        parts.append("any of: " + "; ".join(policy.label(n) for n in when["any_fact"]))
    for key in (*WITHIN_KEYS, *AFTER_KEYS):
        if key in when:
            direction, unit = key.split("_", 1)
            window = Window(unit, when[key], when.get("clock", "paid_at"), when.get("measured_at", "requested_at"))
            parts.append(window_phrase(window, direction == "within", policy))
    if "known" in when:
        parts.append(" and ".join(_label(n, policy) for n in when["known"]) + " known")
    if "unknown" in when:
        parts.append(_or([_label(n, policy) for n in when["unknown"]]) + " not known")
    if row.tiers:
        parts.append("the request falls in one of the tiers below")
    return "If " + "; and ".join(parts) if parts else "In every other case"


def window_phrase(window: Window, within: bool, policy: Policy) -> str:
    measured = _MEASURED.get(window.measured) or policy.label(window.measured)
    clock = clock_words(window.clock, {window.clock: policy.label(window.clock)})
    if window.unit == "month_end":
        bound = window.phrase(clock)
        return f"{measured} comes {bound}" if within else f"{measured} does not come {bound}"
    return f"{measured} is {'within' if within else 'more than'} {window.words()} {'of' if within else 'after'} {clock}"


def outcome(row: Row, policy: Policy) -> str:
    if row.outcome == "denied":
        return "denied"
    if row.outcome == "review":
        return "review by a person"
    amount = {"full": "the full amount", "pro_rated": "pro-rated by the days left in the period"}.get(row.amount or "")
    if row.amount == "amount_minus":
        amount = "the amount less " + " and ".join(_label(n, policy) for n in row.minus)
    elif row.amount == "percent" and row.percent is not None:
        amount = f"{row.percent.percent}% of the price"
    elif row.amount == "tiered":
        amount = "; ".join(_tier(t, policy) for t in row.tiers) + "; past the last tier this row does not apply"
    fee = ", no fee kept" if row.waive_fee else ""
    return f"approved, {amount}{fee}"


def _tier(tier: Tier, policy: Policy) -> str:
    clock = clock_words(tier.window.clock, {tier.window.clock: policy.label(tier.window.clock)})
    return f"{tier.percent}% of the price {tier.window.phrase(clock)}"


def _label(name: str, policy: Policy) -> str:
    from .vocab import MONEY_LABELS
    return MONEY_LABELS.get(name) or policy.label(name)


def _or(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _cites(clauses: tuple[Clause, ...]) -> str:
    if not clauses:
        return ""
    refs = []
    for c in clauses:
        refs.append(f"{c.section} ({c.row})" if c.row else f"{c.section} ({c.title})")
    return "; cites " + ", ".join(refs)
