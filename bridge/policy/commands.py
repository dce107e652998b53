"""What ``bridge policy check [FILE]``, ``test [ID]``, ``explain ID``, ``lock`` and
``evaluate FILE.json`` run (each returns its exit code and lines; the CLI prints them)."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Optional, Sequence

from .cases import CaseResult, cases_path, expected_summary, is_cases_file, load_cases, run_file
from .describe import describe
from .errors import PolicyFileError, PolicyInputError
from .loader import load_policy
from .lock import changed_under_version, read_lock, unlocked, write_lock
from .model import Policy
from .registry import PolicyRegistry, policy_files


def check(paths: Optional[Sequence[str]], policies_dir: str | Path) -> tuple[int, list[str]]:
    """Validate the given files (or every policy file in ``policies_dir``), run the cases
    beside each (``<id>.cases.toml``) and compare each with ``versions.lock`` (when the
    directory has one).

    Returns ``(exit_code, lines)``: 0 when every file is valid, every case passes and no file
    changed under a recorded version (nor has a version not recorded yet), 1 otherwise; one
    line per file, ``ok: PATH: ...`` or ``error: PATH: KEY: PROBLEM``, and per cases file.
    """
    if paths:
        files = [Path(p) for p in paths]
    else:
        try:
            files = policy_files(policies_dir)
        except PolicyFileError as err:
            return 1, [f"error: {err}"]
        if not files:
            return 1, [f"error: {policies_dir}: no policy files (*.toml)"]
    code = 0
    lines: list[str] = []
    seen: dict[str, Path] = {}
    for path in files:
        if is_cases_file(path):
            policy_file = path.with_name(path.name[:-len(".cases.toml")] + ".toml")
            if policy_file in files:
                continue                 # run with its policy below
            try:
                policy = load_policy(policy_file)
            except PolicyFileError as err:
                code = 1
                lines.append(f"error: {err}")
                continue
            code |= _check_cases(policy, path, lines)
            continue
        try:
            policy = load_policy(path)
        except PolicyFileError as err:
            code = 1
            lines.append(f"error: {err}")
            continue
        if policy.id in seen:
            code = 1
            lines.append(f"error: {path}: id: duplicate policy id {policy.id!r} (also in {seen[policy.id]})")
            continue
        seen[policy.id] = path
        lines.append(f"ok: {path}: {_describe(policy)}")
        try:
            lock = read_lock(path.parent)
        except PolicyFileError as err:
            code = 1
            lines.append(f"error: {err}")
            lock = None
        if lock is not None:
            for problem in (changed_under_version(policy, lock), unlocked(policy, lock)):
                if problem:
                    code = 1
                    lines.append(f"error: {path}: version: {problem}")
                    break
        cases = cases_path(path)
        if cases.is_file():
            code |= _check_cases(policy, cases, lines)
    return code, lines


def _check_cases(policy: Policy, path: Path, lines: list[str]) -> int:
    try:
        case_file = load_cases(path)
    except PolicyFileError as err:
        lines.append(f"error: {err}")
        return 1
    if case_file.policy_id != policy.id:
        lines.append(f"error: {path}: policy: the cases are for {case_file.policy_id!r}, the file beside "
                     f"them is {policy.id!r}")
        return 1
    results = run_file(policy, case_file)
    failed = [r for r in results if not r.ok]
    for r in failed:
        lines.append(f"error: {path}: {r.case.key} {r.case.name!r}: {'; '.join(r.problems)}")
    if not failed:
        lines.append(f"ok: {path}: {len(results)} cases pass")
    return 1 if failed else 0


def test(policy_ids: Optional[Sequence[str]], policies_dir: str | Path) -> tuple[int, list[str]]:
    """``bridge policy test [ID ...]``: run the cases of the named policies (default: every
    policy with a cases file) and print a table: case, expected, got, result."""
    try:
        registry = PolicyRegistry.load(policies_dir)
    except PolicyFileError as err:
        return 1, [f"error: {err}"]
    ids = list(policy_ids) if policy_ids else [p.id for p in registry if cases_path(p.path).is_file()]
    if not ids:
        return 1, [f"error: {policies_dir}: no cases files (<id>.cases.toml)"]
    rows: list[tuple[str, str, str, str, str]] = []
    code = 0
    notes: list[str] = []
    for policy_id in ids:
        if policy_id not in registry:
            return 1, [f"error: unknown policy {policy_id!r} (loaded: {', '.join(registry.ids())})"]
        policy = registry.get(policy_id)
        path = cases_path(policy.path)
        if not path.is_file():
            code = 1
            notes.append(f"error: {policy_id}: no cases file ({path})")
            continue
        try:
            case_file = load_cases(path)
        except PolicyFileError as err:
            code = 1
            notes.append(f"error: {err}")
            continue
        for r in run_file(policy, case_file):
            rows.append((policy_id, r.case.name, expected_summary(r.case), r.got, _verdict(r)))
            if not r.ok:
                code = 1
    lines = _table(("policy", "case", "expected", "got", "result"), rows)
    passed = sum(1 for r in rows if r[4] == "ok")
    lines.append(f"{passed} of {len(rows)} cases pass")
    return code, lines + notes


def _verdict(result: CaseResult) -> str:
    return "ok" if result.ok else "FAIL: " + "; ".join(result.problems)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell))
    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row)).rstrip()
    return [fmt(header), fmt(tuple("-" * w for w in widths[:-1]) + ("-" * 6,))] + [fmt(r) for r in rows]


def explain(policy_id: str, policies_dir: str | Path) -> tuple[int, list[str]]:
    """``bridge policy explain ID``: the policy as a person reads it (``describe.py``)."""
    try:
        registry = _registry_for(policy_id, policies_dir)
        policy = registry.get(policy_id)
    except PolicyFileError as err:
        return 1, [f"error: {err}"]
    except KeyError:
        return 1, [f"error: unknown policy {policy_id!r}"]
    return 0, describe(policy).rstrip("\n").split("\n")


def lock(policies_dir: str | Path) -> tuple[int, list[str]]:
    """``bridge policy lock``: record each policy's version and hash in ``versions.lock``."""
    try:
        policies = [load_policy(p) for p in policy_files(policies_dir)]
        added, unchanged = write_lock(policies_dir, policies)
    except PolicyFileError as err:
        return 1, [f"error: {err}"]
    lines = [f"recorded: {a}" for a in added] + [f"unchanged: {u}" for u in unchanged]
    return 0, lines


def _describe(policy: Policy) -> str:
    rows = {row.id for c in policy.categories.values() for row in c.rows}
    ncat = len(policy.categories)
    overlay = "on" if policy.overlay.enabled else "off"
    return (f"{policy.id} version {policy.version}, {ncat} categor{'y' if ncat == 1 else 'ies'}, "
            f"{len(rows)} rows, fees {policy.fees.treatment}, statutory overlay {overlay}, "
            f"sha256 {policy.hash[:16]}")


def evaluate_file(path: str | Path, policies_dir: str | Path, now: datetime) -> dict[str, Any]:
    """Decide the hypothetical request in a JSON file ``{"policy", "order", "request"}``
    (``policy`` may instead be ``order.policy``); returns the decision object of spec/api.md.

    Raises :class:`PolicyInputError` (bad JSON or input), :class:`UnknownPolicyError`,
    :class:`PolicyFileError`, ``OSError`` (unreadable file)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise PolicyInputError("body", f"{path}: not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise PolicyInputError("body", f"{path}: expected a JSON object with policy, order and request")
    order = body.get("order")
    policy_id = body.get("policy")
    if policy_id is None and isinstance(order, dict):
        policy_id = order.get("policy")
    if not isinstance(policy_id, str) or not policy_id:
        raise PolicyInputError("policy", 'required: give "policy" (or "order.policy") with a policy id')
    registry = _registry_for(policy_id, policies_dir)
    return registry.evaluate(policy_id, body, now).to_dict()


def _registry_for(policy_id: str, policies_dir: str | Path) -> PolicyRegistry:
    """The file named after the policy when there is one (a broken neighbour does not matter),
    else the whole directory."""
    candidate = Path(policies_dir) / f"{policy_id}.toml"
    if candidate.is_file():
        policy = load_policy(candidate)
        if policy.id == policy_id:
            return PolicyRegistry([policy], policies_dir)
    return PolicyRegistry.load(policies_dir)
