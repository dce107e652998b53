"""One sentence a support agent can paste to the buyer, built from the rows' ``because``."""
from __future__ import annotations

from typing import Callable, Iterable, Optional, Sequence

from bridge.domain.money import format_amount

from .vocab import MONEY_LABELS


def money_labels(names: Sequence[str], label: Optional[Callable[[str], str]] = None) -> str:
    """How the amounts (or time facts) a rule waits for are named: the standard labels, else
    the policy's own (``label``), else the name in words."""
    out = []
    for n in names:
        if n in MONEY_LABELS:
            out.append(MONEY_LABELS[n])
        elif label is not None:
            out.append(label(n))
        else:
            out.append(n.replace("_", " "))
    return join(out)


def missing_phrase(names: Sequence[str], label: Optional[Callable[[str], str]] = None) -> str:
    return f"{money_labels(names, label)} {'is' if len(names) == 1 else 'are'} not known yet"


def join(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _fee_part(fee: int, currency: str) -> str:
    if not fee:
        return ""
    return f", after keeping the non-refundable processing fee of {format_amount(fee, currency)},"


def item_sentence(item, currency: str) -> str:
    """``sentence`` of one item, without the grouping (every item of every decision's
    ``to_dict`` is explained on its own)."""
    outcome = item.outcome
    if outcome == "approved":
        return (f"We will refund {format_amount(item.refund_amount, currency)}"
                f"{_fee_part(item.fee_deducted, currency)} because {item.because}.")
    if outcome == "denied":
        return f"We cannot refund this purchase because {item.because}."
    return f"Your request needs a review by our team because {item.because}."


def sentence(items: Sequence, currency: str) -> str:
    if len(items) == 1:
        return item_sentence(items[0], currency)
    groups: dict[tuple[str, str], list] = {}
    for item in items:
        groups.setdefault((item.outcome, item.because), []).append(item)
    if len(groups) == 1:
        (outcome, because), members = next(iter(groups.items()))
        if outcome == "approved":
            refund = sum(m.refund_amount for m in members)
            fee = sum(m.fee_deducted for m in members)
            return (f"We will refund {format_amount(refund, currency)}"
                    f"{_fee_part(fee, currency)} because {because}.")
        if outcome == "denied":
            what = "this purchase" if len(members) == 1 else "these items"
            return f"We cannot refund {what} because {because}."
        return f"Your request needs a review by our team because {because}."
    order = {"approved": 0, "review": 1, "denied": 2}
    parts = []
    for (outcome, because), members in sorted(groups.items(), key=lambda g: order[g[0][0]]):
        names = join([m.label for m in members])
        if outcome == "approved":
            refund = sum(m.refund_amount for m in members)
            fee = sum(m.fee_deducted for m in members)
            parts.append(f"we will refund {format_amount(refund, currency)} for {names}"
                         f"{_fee_part(fee, currency)} because {because}")
        elif outcome == "denied":
            parts.append(f"{names} cannot be refunded because {because}")
        else:
            verb = "needs" if len(members) == 1 else "need"
            parts.append(f"{names} {verb} a review by our team because {because}")
    text = "; ".join(parts)
    if text.startswith("we "):
        return "W" + text[1:] + "."
    return "Of the items in your request, " + text + "."


def labels(items: Iterable) -> str:
    return join([i.label for i in items])
