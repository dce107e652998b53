"""The policy package's exceptions. Only ``bridge/web`` turns them into HTTP codes."""
from __future__ import annotations


class PolicyError(Exception):
    """Base of every error this package raises on purpose."""


class PolicyFileError(PolicyError, ValueError):
    """A policy file that cannot be used: unreadable, not TOML, or not a valid policy.

    ``path`` is the file, ``key`` the dotted key path inside it (``categories.license.rows[1].
    outcome``; empty when the problem is the whole file), ``problem`` what is wrong.
    """

    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.key:
            return f"{self.path}: {self.key}: {self.problem}"
        return f"{self.path}: {self.problem}"


class PolicyInputError(PolicyError, ValueError):
    """An order, payment or request that does not validate (the web layer answers 422).

    ``field`` is the path of the offending value in the request body, e.g.
    ``order.items[0].paid_at`` or ``request.requested_at``; ``message`` says what is wrong.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class UnknownPolicyError(PolicyError, KeyError):
    """No policy with that id is loaded (the web layer answers 404)."""

    def __init__(self, policy_id: str, known: tuple[str, ...] = ()) -> None:
        self.policy_id = policy_id
        self.known = tuple(known)
        super().__init__(policy_id)

    def __str__(self) -> str:
        known = ", ".join(self.known) or "none"
        return f"unknown policy {self.policy_id!r} (loaded: {known})"
