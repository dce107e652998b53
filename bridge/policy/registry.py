"""All policy files of a directory, loaded and validated once (for the web layer)."""
from __future__ import annotations

import builtins
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Optional

from .decision import Decision
from .errors import PolicyFileError, PolicyInputError, UnknownPolicyError
from .evaluator import evaluate
from .inputs import parse_evaluation
from .cases import is_cases_file
from .loader import load_policy
from .lock import enforce, read_lock
from .model import Policy


def policy_files(directory: str | Path) -> builtins.list[Path]:
    """The policy files of a directory: every ``*.toml`` but the cases beside them
    (``*.cases.toml``), sorted by name."""
    root = Path(directory)
    if not root.is_dir():
        raise PolicyFileError(str(root), "", "not a directory of policy files")
    return sorted(p for p in root.glob("*.toml") if p.is_file() and not is_cases_file(p))


class PolicyRegistry:
    """Policies by id. A broken file or a duplicate id fails the whole load, naming the file."""

    def __init__(self, policies: Iterable[Policy] = (), directory: Optional[str | Path] = None) -> None:
        self.directory = None if directory is None else Path(directory)
        self._by_id: dict[str, Policy] = {}
        for policy in policies:
            other = self._by_id.get(policy.id)
            if other is not None:
                raise PolicyFileError(policy.path, "id",
                                      f"duplicate policy id {policy.id!r} (also in {other.path})")
            self._by_id[policy.id] = policy

    @classmethod
    def load(cls, directory: str | Path) -> "PolicyRegistry":
        """Every policy file of ``directory``; with a ``versions.lock`` there, a file changed
        under a version it records is refused (``lock.py``)."""
        registry = cls((load_policy(p) for p in policy_files(directory)), directory)
        enforce(registry, read_lock(directory))
        return registry

    def get(self, policy_id: str) -> Policy:
        try:
            return self._by_id[policy_id]
        except KeyError:
            raise UnknownPolicyError(policy_id, tuple(sorted(self._by_id))) from None

    def list(self) -> builtins.list[dict[str, Any]]:
        """``[{"id", "version", "categories", ...}]`` sorted by id (GET /api/v1/policies)."""
        return [self._by_id[k].summary() for k in sorted(self._by_id)]

    def ids(self) -> builtins.list[str]:
        return sorted(self._by_id)

    def __contains__(self, policy_id: object) -> bool:
        return policy_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self):
        return iter([self._by_id[k] for k in sorted(self._by_id)])

    def fact_types(self, policy_id: str) -> dict[str, str]:
        """The facts orders under this policy accept, name -> ``bool`` | ``money`` | ``time``
        (the standard ones and the policy's own): what the facts API and refund requests
        validate against. Raises :class:`UnknownPolicyError`."""
        return self.get(policy_id).fact_types

    def reasons(self, policy_id: str) -> builtins.list[str]:
        """The reasons a refund request under this policy may give (standard and its own)."""
        return builtins.list(self.get(policy_id).reasons)

    def evaluate(self, policy_id: str, body: Any, now: datetime) -> Decision:
        """``POST /api/v1/policies/{policy_id}/evaluate``: validate ``{"order", "request"}`` and
        decide under the named policy (the URL's id wins over any ``order.policy``). A
        hypothetical request may be dated after ``now`` (policies.md: the simulator).

        Raises :class:`UnknownPolicyError` (404) or :class:`PolicyInputError` (422)."""
        policy = self.get(policy_id)
        order, request = parse_evaluation(body, now, policy.fact_types, policy.reasons,
                                          allow_future=True)
        return evaluate(policy, order, request, now, allow_future=True)
