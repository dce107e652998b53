"""The directory of prometheus-client's multiprocess mode, set up before anything imports
prometheus-client (it decides at import, from ``PROMETHEUS_MULTIPROC_DIR``, whether each
process keeps its values in files there).

The processes of one host share it: gunicorn's workers and a ``bridge worker`` each write
their own ``<kind>_<pid>.db`` files and a scrape of ``GET /metrics`` adds them up. This module
imports nothing of prometheus-client, so the entry points (``bridge.gunicorn_conf``, ``bridge
worker``) can call it first.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import MutableMapping, Optional

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_PID_FILE = re.compile(r"^[a-z_]+_(\d+)\.db$")


def default_dir(instance_dir: Path) -> Path:
    return Path(instance_dir) / "metrics"


def prepare(default: Optional[Path], env: Optional[MutableMapping[str, str]] = None) -> Optional[Path]:
    """Use ``PROMETHEUS_MULTIPROC_DIR``, else ``default`` (written to the environment, so the
    library and every child process see it); None leaves single-process mode on. Creates the
    directory and removes the files of processes that no longer run (a previous start's:
    their counters would otherwise add up for ever, one file per process ever started)."""
    env = os.environ if env is None else env
    raw = env.get(VARIABLE)
    if not raw and default is None:
        return None
    path = Path(raw or default)
    path.mkdir(parents=True, exist_ok=True)
    env[VARIABLE] = str(path)
    remove_dead(path)
    return path


def remove_dead(path: Path) -> int:
    """Delete the value files of processes that are gone. Returns how many."""
    removed = 0
    for entry in path.iterdir():
        m = _PID_FILE.match(entry.name)
        if m and not _alive(int(m.group(1))):
            try:
                entry.unlink()
                removed += 1
            except FileNotFoundError:  # another process cleaned it at the same moment
                pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
