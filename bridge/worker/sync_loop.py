"""The worker's own ``bridge sync``: every ``BRIDGE_SYNC_INTERVAL`` seconds, for each provider
whose API key is set, in a thread of its own beside the job loops (a long import never holds
up webhook processing).

Several worker processes coordinate through ``sync_status``: a provider is synced when its
last run started more than an interval ago, by the one process that takes its lease (renewed
after every page, so a process killed mid-sync frees it within ``LEASE_SECONDS``). A provider
that is down fails the run (recorded in ``sync_status.last_error``, cursors kept) and is tried
again an interval later; nothing here ever stops the worker.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta
from typing import Optional

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bridge.ledger import sync_state
from bridge.ledger.models import SyncStatus
from bridge.runtime import Runtime
from bridge.services.sync import SyncStopped, sync_provider

log = logging.getLogger("bridge.worker.sync")
LEASE_SECONDS = 120.0


class SyncScheduler:
    def __init__(self, rt: Runtime, interval: float, *, tick: Optional[float] = None,
                 owner: Optional[str] = None):
        if interval <= 0:
            raise ValueError("the sync interval must be positive (0 turns the scheduler off)")
        self.rt = rt
        self.interval = interval
        self.tick = tick if tick is not None else min(30.0, interval)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:sync"

    def providers(self) -> list[str]:
        return [n for n in self.rt.providers if getattr(self.rt.providers[n], "books_configured", False)]

    def _due(self, name: str) -> bool:
        with Session(self.rt.engine) as session:
            row = session.get(SyncStatus, name)
            started = row.last_started_at if row is not None else None
        return started is None or self.rt.clock() - started >= timedelta(seconds=self.interval)

    def run_once(self, stop: Optional[threading.Event] = None) -> list[str]:
        """Sync every provider that is due and not being synced elsewhere; returns their names."""
        ran = []
        for name in self.providers():
            if stop is not None and stop.is_set():
                break
            try:
                if not self._due(name) or not sync_state.take_lease(
                        self.rt.engine, name, self.owner, self.rt.clock(), LEASE_SECONDS):
                    continue
            except DBAPIError as err:
                log.warning("sync of %s skipped: database unavailable (%s)", name, type(err.orig).__name__)
                continue
            ran.append(name)
            try:
                report = sync_provider(self.rt, name, should_stop=lambda n=name: self._renew(n, stop))
                log.info("sync of %s: %d seen, %d new", name, sum(report.seen.values()),
                         sum(report.new.values()))
            except SyncStopped:
                log.info("sync of %s stopped with the worker; the next run goes on from its cursor", name)
            except Exception as err:  # the provider is down, or the database: tried again later
                log.warning("sync of %s failed, tried again in %.0f s: %s: %s", name, self.interval,
                            type(err).__name__, err)
            finally:
                try:
                    sync_state.release_lease(self.rt.engine, name, self.owner)
                except DBAPIError:
                    pass  # the lease expires on its own
        return ran

    def _renew(self, name: str, stop: Optional[threading.Event]) -> bool:
        """Between two pages: stop with the worker, else keep the lease."""
        if stop is not None and stop.is_set():
            return True
        sync_state.take_lease(self.rt.engine, name, self.owner, self.rt.clock(), LEASE_SECONDS)
        return False

    def run_forever(self, stop: threading.Event) -> None:
        log.info("sync every %.0f s for %s", self.interval, ", ".join(self.providers()) or "no provider")
        while not stop.is_set():
            try:
                self.run_once(stop)
            except Exception:  # never let the scheduler take the worker down
                log.exception("sync scheduler: unexpected error; going on")
            stop.wait(self.tick)


def start_scheduler(rt: Runtime, stop: threading.Event) -> Optional[threading.Thread]:
    """The scheduler thread for this process, or None when ``BRIDGE_SYNC_INTERVAL`` is 0."""
    if rt.settings.sync_interval_seconds <= 0:
        return None
    scheduler = SyncScheduler(rt, rt.settings.sync_interval_seconds)
    t = threading.Thread(target=scheduler.run_forever, args=(stop,), name="bridge-sync", daemon=True)
    t.start()
    return t
