"""The key that signs console session cookies: ``BRIDGE_SECRET_KEY``, or else one generated
once into the instance folder (``console-secret-key``, mode 0600), so ``bridge serve`` on a
laptop needs no setup and every process on that machine agrees on it. Several machines (web
dynos) must share ``BRIDGE_SECRET_KEY``: each would otherwise generate its own."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

MIN_LENGTH = 32
FILE_NAME = "console-secret-key"


class SecretKeyError(ValueError):
    """BRIDGE_SECRET_KEY is set but too short to sign sessions safely."""


def resolve(settings) -> str:
    if settings.secret_key is not None:
        if len(settings.secret_key) < MIN_LENGTH:
            raise SecretKeyError(f"BRIDGE_SECRET_KEY must be at least {MIN_LENGTH} characters")
        return settings.secret_key
    return _instance_key(Path(settings.instance_dir) / FILE_NAME)


def _instance_key(path: Path) -> str:
    try:
        key = path.read_text().strip()
        if len(key) >= MIN_LENGTH:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    try:
        # Atomic and first-wins: two processes starting at once both end up with the key that
        # landed first (link fails if the file exists), never with half a file.
        os.link(tmp, path)
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        tmp.unlink()
    return key
