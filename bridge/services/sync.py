"""``bridge sync``: bring the provider's own record into the inbox, so no lost webhook goes
unbooked.

For one provider (its ``ProviderBooks``): with ``since`` older than the provider's events
window, first the objects of that older history (``list_objects``, kind by kind, payments
first), then the Events list from the window's start (or from where the last sync got to).
Every document is stored in the inbox exactly as a delivery would be, marked
``source='sync'``: the unique index on the provider's event id makes an event already
delivered (or a later webhook of an event sync stored) a duplicate, and the worker applies
what is new the usual way (``process_event`` jobs).

Incremental and resumable: each listing's cursor is committed after the page it points past
was stored (``bridge.ledger.sync_state``); a run killed at any point goes on from the last
committed page, and storing a page twice stores nothing twice. A finished listing leaves a
watermark (Stripe: the time it began; the next one starts a little before it) or a resume
point (Paddle: ``after`` the newest event seen).

Rate limits and outages are the provider clients' (``bridge.providers.retry``: Retry-After
honoured, tenacity backoff); an error that outlasts them ends the run with the cursors where
they were, recorded in ``sync_status`` and raised to the caller (the worker's scheduler
retries at its next interval).
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Optional, Protocol

from bridge.ledger import sync_state
from bridge.ledger.inbox import Delivery
from bridge.ledger.replay import requeue_parked
from bridge.ledger.sync_state import Cursor
from bridge.providers.base import BookPage, ProviderBooks
from bridge.providers.outcomes import PermanentProviderError
from bridge.services.payouts import import_payouts

# The events window is the provider's; start a little inside it, so the first page asked for
# is still there when the provider answers.
WINDOW_MARGIN = timedelta(hours=1)
# A listing that starts from a watermark goes back this far before it: an event the provider
# made visible late, or with a creation time a little in the past, is still seen.
WATERMARK_OVERLAP = timedelta(minutes=10)
EVENTS = "events"
log = logging.getLogger("bridge.sync")


class Progress(Protocol):
    def update(self, n: int = 1) -> object: ...


@dataclass
class SyncReport:
    provider: str
    seen: Counter = field(default_factory=Counter)      # event type -> documents listed
    new: Counter = field(default_factory=Counter)       # event type -> newly stored
    unreadable: int = 0                                  # documents without an id or type
    pages: int = 0
    requeued: int = 0                                    # parked events given another go
    payouts: dict = field(default_factory=dict)          # {"payouts": n, "itemized": n, "waiting": n}

    def as_dict(self) -> dict:
        return {"seen": dict(self.seen), "new": dict(self.new), "unreadable": self.unreadable,
                "pages": self.pages, "requeued": self.requeued, "payouts": self.payouts}

    def lines(self) -> list[str]:
        """What it saw and what was new, by type (the CLI prints these)."""
        out = [f"{self.provider}: {sum(self.seen.values())} seen, {sum(self.new.values())} new"
               f" ({self.pages} pages)"]
        for event_type in sorted(self.seen):
            out.append(f"  {event_type}: {self.seen[event_type]} seen, {self.new[event_type]} new")
        if self.payouts:
            waiting = self.payouts.get("waiting")
            out.append(f"  payouts: {self.payouts['payouts']} seen, {self.payouts['itemized']} itemized"
                       + (f", {waiting} not ready at the provider (next sync)" if waiting else ""))
        if self.requeued:
            out.append(f"  {self.requeued} parked event(s) queued again")
        if self.unreadable:
            out.append(f"  {self.unreadable} without an event id or type (not stored)")
        return out


class SyncStopped(Exception):
    """``should_stop`` said so between two pages (the cursors are where the last page left them)."""


def sync_provider(rt, name: str, *, since: Optional[datetime] = None,
                  progress: Optional[Progress] = None,
                  should_stop: Callable[[], bool] = lambda: False) -> SyncReport:
    """Sync one provider; returns what it saw. Raises the provider's error if it stays down."""
    books = rt.providers[name]
    if not isinstance(books, ProviderBooks):
        raise TypeError(f"provider {name!r} cannot list its record")
    report = SyncReport(name)
    started = rt.clock()
    sync_state.mark_started(rt.engine, name, started)
    try:
        _run(rt, books, report, started, since, progress, should_stop)
    except BaseException as err:
        sync_state.mark_finished(rt.engine, name, rt.clock(), report.as_dict(),
                                 error=f"{type(err).__name__}: {err}"[:2000])
        raise
    if sum(report.new.values()):
        # What was new may be what parked events wait for (a refund whose payment's webhook
        # was lost): try those again now rather than after their backoff, or never (dead).
        with rt.sessions.begin() as session:
            report.requeued = requeue_parked(session, name, rt.clock(),
                                             max_attempts=rt.settings.job_max_attempts)
    finished = rt.clock()
    sync_state.mark_finished(rt.engine, name, finished, report.as_dict())
    # The durable record is ``sync_status.last_success_at``; the process's gauge feeds
    # ``bridge_sync_age_seconds`` (bridge.metrics).
    rt.metrics.sync_succeeded(name, finished)
    return report


def _run(rt, books, report: SyncReport, now: datetime, since: Optional[datetime],
         progress: Optional[Progress], should_stop: Callable[[], bool]) -> None:
    window_start = now - books.events_window + WINDOW_MARGIN
    if since is not None and since < window_start:
        for kind in books.object_kinds:
            _objects(rt, books, report, kind, since, window_start + WINDOW_MARGIN, now,
                     progress, should_stop)
    _events(rt, books, report, window_start, now, since, progress, should_stop)
    # Payouts (and, once itemizable, their lines) of the same period, as the provider now
    # says: re-listed each run so that a payout that failed after paying shows so, and one
    # whose lines were not ready at the provider last time is asked for again.
    report.payouts = import_payouts(rt, books.name, min(since or window_start, window_start))


def _objects(rt, books, report, kind: str, since: datetime, until: datetime, now: datetime,
             progress, should_stop) -> None:
    stream = f"objects:{kind}"
    cursor = sync_state.load_cursor(rt.engine, books.name, stream)
    if cursor.under_way and cursor.lower == since:
        until = cursor.upper or until       # go on with the listing a killed run began
        position: Optional[str] = cursor.position
    else:
        position = None
        cursor = Cursor(books.name, stream, None, since, until, None, cursor.watermark)
        sync_state.save_cursor(rt.engine, Cursor(books.name, stream, "", since, until, None,
                                                 cursor.watermark), rt.clock())
    while True:
        if should_stop():
            raise SyncStopped(stream)
        page = books.list_objects(kind, since, until, position or None)
        _store(rt, books, report, page, progress)
        position = page.cursor
        done = position is None
        sync_state.save_cursor(rt.engine, Cursor(
            books.name, stream, None if done else position, since, until, None,
            max(filter(None, (cursor.watermark, until))) if done else cursor.watermark), rt.clock())
        if done:
            return


def _events(rt, books, report, window_start: datetime, now: datetime, since: Optional[datetime],
            progress, should_stop) -> None:
    cursor = sync_state.load_cursor(rt.engine, books.name, EVENTS)
    if cursor.under_way:
        # A killed run's listing: finish it with its own bounds (its first pages are stored).
        lower, upper, position = cursor.lower or window_start, cursor.upper or now, cursor.position
    else:
        upper = now
        if since is not None:
            lower, position = max(since, window_start), None
        elif cursor.resume:
            lower, position = window_start, cursor.resume
        elif cursor.watermark is not None:
            lower, position = max(cursor.watermark - WATERMARK_OVERLAP, window_start), None
        else:
            lower, position = window_start, None
        # "" marks the listing under way before its first page is asked for.
        sync_state.save_cursor(rt.engine, Cursor(books.name, EVENTS, position or "", lower, upper,
                                                 cursor.resume, cursor.watermark), rt.clock())
    resume = cursor.resume
    while True:
        if should_stop():
            raise SyncStopped(EVENTS)
        try:
            page = books.list_events(lower, position or None)
        except PermanentProviderError as err:
            if not position or err.http_status not in (400, 404):
                raise
            # The cursor's event aged out of the provider's window while the listing waited
            # (a sync killed long ago): list the window again from its start; what is
            # already stored is a duplicate.
            log.warning("%s: the sync cursor is gone at the provider (%s); listing the window again",
                        books.name, err.code)
            lower, position, resume = window_start, None, None
            continue
        _store(rt, books, report, page, progress)
        position = page.cursor
        resume = page.resume or resume
        done = position is None
        sync_state.save_cursor(rt.engine, Cursor(
            books.name, EVENTS, None if done else position, lower, upper, resume,
            upper if done else cursor.watermark), rt.clock())
        if done:
            return


def _store(rt, books, report: SyncReport, page: BookPage, progress: Optional[Progress]) -> None:
    """Store a page's documents in the inbox, oldest first (fewer events wait, parked, for the
    payment they refer to)."""
    report.pages += 1
    envelopes = []
    for doc in page.items:
        env = books.envelope(doc)
        if not isinstance(env.event_id, str) or not env.event_id \
                or not isinstance(env.event_type, str) or not env.event_type:
            report.unreadable += 1
            continue
        envelopes.append((env, doc))
    envelopes.sort(key=lambda pair: (pair[0].occurred_at is None, pair[0].occurred_at or datetime.min))
    for env, doc in envelopes:
        body = json.dumps(doc, separators=(",", ":")).encode()
        new = rt.inbox.store(Delivery(books.name, env.event_id, env.event_type, body, {},
                                      env.occurred_at, source="sync"), rt.clock())
        report.seen[env.event_type] += 1
        if new:
            report.new[env.event_type] += 1
    if progress is not None:
        progress.update(len(page.items))
