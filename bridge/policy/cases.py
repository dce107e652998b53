"""Cases beside a policy: ``config/policies/<id>.cases.toml`` lists example requests with the
outcome, amounts, cited sections and deadline the policy must give; ``bridge policy test``
runs them and ``bridge policy check`` runs them too, so a broken edit fails before it is
deployed. The loader reads the file; running a case is the pure evaluator (the simulator's
path: the order and request bodies of ``POST /api/v1/policies/{id}/evaluate``).

Format::

    policy = "software-mor"             # optional: the file name before .cases.toml
    now = 2030-01-01T00:00:00Z          # optional: "now" of every case (default: far future)

    [defaults]                          # optional: merged under every case's order/request
    order = { currency = "USD", customer = { country = "US" } }

    [[case]]
    name = "example 1: license on day 19"
    order = { items = [{ item_id = "li_1", category = "license", amount = 4900, fee = 172,
                         paid_at = 2026-03-01T10:00:00Z }] }
    request = { reason = "not_satisfied", requested_at = 2026-03-20T10:00:00Z }
    [case.expect]
    outcome = "approved"                # required: approved | denied | review
    refund_amount = 4728                # the other keys are checked when given
    fee_deducted = 172
    cites = ["3", "2"]                  # the section numbers cited, in order, each once
    rows = ["Software licenses / one-time purchases"]   # section rows cited (any order)
    rule = "license#2"                  # the deciding row of each item ("a, b" or an array)
    deadline = 2026-03-31T10:00:00Z     # or "none"
    missing = ["fee"]
    explanation = "47.28 USD"           # text the explanation contains
    error = "request.requested_at"      # instead of the rest: the input error's field

TOML dates and times are written as TOML values; they are passed on as ISO 8601 strings.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional

from .errors import PolicyFileError, PolicyInputError
from .evaluator import evaluate
from .inputs import parse_evaluation
from .model import Policy
from .vocab import OUTCOMES

SUFFIX = ".cases.toml"
DEFAULT_NOW = datetime(2100, 1, 1, tzinfo=timezone.utc)
EXPECT_KEYS = ("outcome", "refund_amount", "fee_deducted", "cites", "rows", "rule", "deadline",
               "missing", "explanation", "error")


@dataclass(frozen=True)
class Case:
    name: str
    body: Mapping[str, Any]           # {"order": ..., "request": ...} as JSON values
    expect: Mapping[str, Any]
    key: str                          # where it is in the file: case[3]


@dataclass(frozen=True)
class CaseFile:
    path: str
    policy_id: str
    now: datetime
    cases: tuple[Case, ...]


@dataclass(frozen=True)
class CaseResult:
    case: Case
    problems: tuple[str, ...]         # empty: passed
    got: str                          # "approved 4728 (fee 172) cites 3, 2" or "error FIELD"
    decision: Optional[dict] = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems


def cases_path(policy_path: str | Path) -> Path:
    path = Path(policy_path)
    return path.with_name(path.name[:-len(".toml")] + SUFFIX) if path.name.endswith(".toml") else path


def is_cases_file(path: Path) -> bool:
    return path.name.endswith(SUFFIX)


def _json(value: Any) -> Any:
    """TOML values as the JSON the API takes: dates and times as ISO 8601 strings."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"time {value.isoformat()} has no time zone (add Z or an offset)")
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_cases(path: str | Path) -> CaseFile:
    name = str(path)
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyFileError(name, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise PolicyFileError(name, "", f"cannot read the file: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise PolicyFileError(name, "", f"not valid TOML: {err}") from None
    for key in doc:
        if key not in ("policy", "now", "defaults", "case"):
            raise PolicyFileError(name, key, "unknown key (allowed here: policy, now, defaults, case)")
    stem = Path(path).name[:-len(SUFFIX)] if Path(path).name.endswith(SUFFIX) else Path(path).stem
    policy_id = doc.get("policy", stem)
    if not isinstance(policy_id, str) or not policy_id:
        raise PolicyFileError(name, "policy", "expected a policy id")
    now = doc.get("now", DEFAULT_NOW)
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise PolicyFileError(name, "now", "expected a TOML date-time with a time zone (2030-01-01T00:00:00Z)")
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict) or set(defaults) - {"order", "request"}:
        raise PolicyFileError(name, "defaults", "expected a table with order and/or request")
    raw_cases = doc.get("case", [])
    if not isinstance(raw_cases, list) or not raw_cases:
        raise PolicyFileError(name, "case", "expected [[case]] tables")
    cases = []
    names: set[str] = set()
    for i, raw in enumerate(raw_cases):
        key = f"case[{i}]"
        if not isinstance(raw, dict):
            raise PolicyFileError(name, key, "expected a table")
        for k in raw:
            if k not in ("name", "order", "request", "expect"):
                raise PolicyFileError(name, f"{key}.{k}", "unknown key (allowed here: name, order, request, expect)")
        case_name = raw.get("name")
        if not isinstance(case_name, str) or not case_name.strip():
            raise PolicyFileError(name, f"{key}.name", "every case needs a name")
        if case_name in names:
            raise PolicyFileError(name, f"{key}.name", f"duplicate case name {case_name!r}")
        names.add(case_name)
        expect = raw.get("expect")
        if not isinstance(expect, dict):
            raise PolicyFileError(name, f"{key}.expect", "missing [case.expect] table")
        for k in expect:
            if k not in EXPECT_KEYS:
                raise PolicyFileError(name, f"{key}.expect.{k}", f"unknown key (allowed here: {', '.join(EXPECT_KEYS)})")
        if "error" not in expect and expect.get("outcome") not in OUTCOMES:
            raise PolicyFileError(name, f"{key}.expect.outcome", f"expected one of {', '.join(OUTCOMES)}")
        try:
            body = {"order": _json(_merge(defaults.get("order", {}), raw.get("order", {}))),
                    "request": _json(_merge(defaults.get("request", {}), raw.get("request", {})))}
            expect = _json(expect)
        except ValueError as err:
            raise PolicyFileError(name, key, str(err)) from None
        cases.append(Case(case_name, body, expect, key))
    return CaseFile(name, policy_id, now, tuple(cases))


def run_case(policy: Policy, case: Case, now: datetime) -> CaseResult:
    """Decide the case under ``policy`` and compare with what it expects."""
    want = case.expect
    try:
        order, request = parse_evaluation(case.body, now, policy.fact_types, policy.reasons,
                                          allow_future=True)
        decision = evaluate(policy, order, request, now, allow_future=True).to_dict()
    except PolicyInputError as err:
        got = f"error {err.field}"
        if "error" in want:
            problems = () if err.field == want["error"] else (f"error field {err.field}, expected {want['error']}",)
            return CaseResult(case, problems, got)
        return CaseResult(case, (f"input error {err.field}: {err.message}",), got)
    if "error" in want:
        return CaseResult(case, (f"expected an input error on {want['error']}, got a decision",),
                          _summary(decision), decision)
    problems = []
    if decision["outcome"] != want["outcome"]:
        problems.append(f"outcome {decision['outcome']}, expected {want['outcome']}")
    for key in ("refund_amount", "fee_deducted"):
        if key in want and decision[key] != want[key]:
            problems.append(f"{key} {decision[key]}, expected {want[key]}")
    if "cites" in want:
        cites = list(dict.fromkeys(c["section"] for c in decision["clauses"]))
        if cites != list(want["cites"]):
            problems.append(f"cites {', '.join(cites) or 'nothing'}, expected {', '.join(want['cites']) or 'nothing'}")
    if "rows" in want:
        rows = {c["row"] for c in decision["clauses"] if "row" in c}
        lacking = [r for r in want["rows"] if r not in rows]
        if lacking:
            problems.append(f"does not cite the row(s) {', '.join(lacking)}")
    if "rule" in want:
        rules = [i["rule"] for i in decision["items"]]
        wanted = want["rule"] if isinstance(want["rule"], list) else [r.strip() for r in want["rule"].split(",")]
        if rules != wanted:
            problems.append(f"rule {', '.join(rules)}, expected {', '.join(wanted)}")
    if "deadline" in want:
        wanted = None if want["deadline"] in ("none", "") else want["deadline"]
        if decision["deadline"] != wanted:
            problems.append(f"deadline {decision['deadline'] or 'none'}, expected {wanted or 'none'}")
    if "missing" in want and decision.get("missing", []) != list(want["missing"]):
        problems.append(f"missing {decision.get('missing', [])}, expected {want['missing']}")
    if "explanation" in want:
        texts = want["explanation"] if isinstance(want["explanation"], list) else [want["explanation"]]
        for text in texts:
            if text not in decision["explanation"]:
                problems.append(f"explanation lacks {text!r}: {decision['explanation']}")
    explanation = decision["explanation"]
    if not explanation.endswith(".") or ". " in explanation:
        problems.append(f"the explanation is not one sentence: {explanation}")
    return CaseResult(case, tuple(problems), _summary(decision), decision)


def _summary(d: Mapping[str, Any]) -> str:
    cites = ", ".join(dict.fromkeys(c["section"] for c in d["clauses"])) or "-"
    fee = f" (fee {d['fee_deducted']})" if d["fee_deducted"] else ""
    deadline = f" until {d['deadline']}" if d.get("deadline") else ""
    return f"{d['outcome']} {d['refund_amount']}{fee} cites {cites}{deadline}"


def expected_summary(case: Case) -> str:
    want = case.expect
    if "error" in want:
        return f"error {want['error']}"
    parts = [want["outcome"]]
    if "refund_amount" in want:
        parts.append(str(want["refund_amount"]))
    if want.get("fee_deducted"):
        parts.append(f"(fee {want['fee_deducted']})")
    if "cites" in want:
        parts.append("cites " + (", ".join(want["cites"]) or "-"))
    if want.get("deadline") not in (None, "none", ""):
        parts.append(f"until {want['deadline']}")
    return " ".join(parts)


def run_file(policy: Policy, cases: CaseFile) -> list[CaseResult]:
    return [run_case(policy, case, cases.now) for case in cases.cases]
