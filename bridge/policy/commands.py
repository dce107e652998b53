"""What ``bridge policy check [FILE]`` and ``bridge policy evaluate FILE.json`` run."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Optional, Sequence

from .errors import PolicyFileError, PolicyInputError
from .loader import load_policy
from .model import Policy
from .registry import PolicyRegistry, policy_files


def check(paths: Optional[Sequence[str]], policies_dir: str | Path) -> tuple[int, list[str]]:
    """Validate the given files (or every ``*.toml`` in ``policies_dir``).

    Returns ``(exit_code, lines)``: 0 when every file is valid, 1 otherwise; one line per file,
    ``ok: PATH: ...`` or ``error: PATH: KEY: PROBLEM``.
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
    return code, lines


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
