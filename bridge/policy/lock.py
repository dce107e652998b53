"""Versions: ``config/policies/versions.lock`` records the sha256 of each policy file under
each version it was released with. A decision stores the policy's id, version and hash, so a
decision made under a version keeps citing what that version said; a file changed under a
version already recorded would make two different texts answer to one version string.

- ``PolicyRegistry.load`` refuses such a file (the service does not start on it; give the
  change a new version and record it with ``bridge policy lock``).
- ``bridge policy check`` reports it, and also a version not recorded yet (a release that
  forgot ``bridge policy lock``), so a CI run fails before a deploy.
- A directory without a lock file is not checked (tests, a merchant's scratch directory).

Old entries are kept when a new version is recorded, so going back to an earlier version
string with different content is refused too. The file is TOML::

    [micromastery]
    "2025-07-26" = "9f2c..."
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Iterable, Mapping

from .errors import PolicyFileError
from .model import Policy

LOCK_NAME = "versions.lock"
Lock = Mapping[str, Mapping[str, str]]


def lock_path(directory: str | Path) -> Path:
    return Path(directory) / LOCK_NAME


def read_lock(directory: str | Path) -> dict[str, dict[str, str]] | None:
    """The recorded hashes, or None when the directory has no lock file."""
    path = lock_path(directory)
    if not path.is_file():
        return None
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise PolicyFileError(str(path), "", f"not a valid lock file: {err}") from None
    out: dict[str, dict[str, str]] = {}
    for policy_id, versions in doc.items():
        if not isinstance(versions, dict) or not all(
                isinstance(v, str) and len(v) == 64 for v in versions.values()):
            raise PolicyFileError(str(path), policy_id, "expected a table of version = \"sha256 hex\"")
        out[policy_id] = dict(versions)
    return out


def changed_under_version(policy: Policy, lock: Lock) -> str | None:
    """The problem when ``policy``'s file differs from what its version recorded."""
    recorded = lock.get(policy.id, {}).get(policy.version)
    if recorded is None or recorded == policy.hash:
        return None
    return (f"changed since version {policy.version!r} was recorded (sha256 {recorded[:12]}... in "
            f"{LOCK_NAME}, {policy.hash[:12]}... now): give the change a new version and run "
            "`bridge policy lock`")


def unlocked(policy: Policy, lock: Lock) -> str | None:
    if policy.version in lock.get(policy.id, {}):
        return None
    return f"version {policy.version!r} is not recorded in {LOCK_NAME}: run `bridge policy lock`"


def enforce(policies: Iterable[Policy], lock: Lock | None) -> None:
    """Raise :class:`PolicyFileError` for the first file changed under a recorded version."""
    if lock is None:
        return
    for policy in policies:
        problem = changed_under_version(policy, lock)
        if problem:
            raise PolicyFileError(policy.path, "version", problem)


def write_lock(directory: str | Path, policies: Iterable[Policy]) -> tuple[list[str], list[str]]:
    """Record the current files' hashes (keeping earlier versions). Refuses (raises) when a
    file changed under a version already recorded. Returns (added, unchanged) as id@version."""
    lock = read_lock(directory) or {}
    added, unchanged = [], []
    policies = list(policies)
    enforce(policies, lock)
    for policy in policies:
        versions = lock.setdefault(policy.id, {})
        if policy.version in versions:
            unchanged.append(f"{policy.id}@{policy.version}")
        else:
            versions[policy.version] = policy.hash
            added.append(f"{policy.id}@{policy.version}")
    lines = ["# sha256 of each policy file per released version (bridge/policy/lock.py).",
             "# Written by `bridge policy lock`; a file changed under a recorded version is refused.", ""]
    for policy_id in sorted(lock):
        lines.append(f"[{_key(policy_id)}]")
        for version, digest in lock[policy_id].items():
            lines.append(f"{_key(version)} = \"{digest}\"")
        lines.append("")
    lock_path(directory).write_text("\n".join(lines), encoding="utf-8")
    return added, unchanged


def _key(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
