"""Prometheus metrics: the figures an operator alerts on, and their text at ``GET /metrics``.

Two kinds of figures:

- Counted where they happen, by the process they happen in: webhook deliveries by provider and
  outcome, intake latency, job run time, refund submissions by outcome, provider API calls,
  the last successful sync per provider. Under gunicorn (several worker processes) and beside a
  ``bridge worker``, prometheus-client's multiprocess mode keeps each process's values in its
  own files in ``PROMETHEUS_MULTIPROC_DIR`` and a scrape, whichever process answers it, adds
  them up (``bridge.metrics_dir`` prepares the directory, ``bridge.gunicorn_conf`` removes a dead
  worker's files). Without that variable (``bridge serve``: one process) the values stay in
  memory.
- Read from the database at scrape time: jobs by kind and state, the age of the oldest ready
  job, refunds by status, notices undelivered. The same from every process, wherever the
  worker runs.

The intake hot path does one dictionary look-up, a counter increment and a histogram
observation per delivery (``Metrics.intake``); everything else happens at scrape.
"""
from __future__ import annotations

import functools
import logging
import os
from datetime import datetime
from typing import Callable, Iterable, Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from bridge.ledger import operations
from bridge.metrics_dir import VARIABLE as MULTIPROC_VARIABLE

log = logging.getLogger("bridge.metrics")

CONTENT_TYPE = CONTENT_TYPE_LATEST
_INTAKE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_SYNC_TIMESTAMP = "bridge_sync_last_success_timestamp_seconds"


class NullMetrics:
    """Metrics switched off (``BRIDGE_METRICS=off``): every call is a no-op."""

    enabled = False

    def intake(self, provider: str, code: str, status: int, seconds: float) -> None:
        pass

    def job_ran(self, kind: str, outcome: str, seconds: float) -> None:
        pass

    def refund(self, provider: str, outcome: str) -> None:
        pass

    def provider_call(self, operation: str, status: str) -> None:
        pass

    def sync_succeeded(self, provider: str, at: datetime) -> None:
        pass


class Metrics(NullMetrics):
    """The bridge's metrics of one process. ``multiprocess_dir``: values live in files there
    (prometheus-client must have been imported with ``PROMETHEUS_MULTIPROC_DIR`` set)."""

    enabled = True

    def __init__(self, multiprocess_dir: Optional[str] = None):
        self.multiprocess_dir = multiprocess_dir
        # In multiprocess mode the metrics belong to no registry: the files are the truth and
        # a scrape reads them all. Otherwise each Metrics has its own registry (tests build
        # many runtimes in one process).
        reg = None if multiprocess_dir else CollectorRegistry(auto_describe=True)
        self._registry = reg
        self.webhooks = Counter(
            "bridge_webhooks_received", "Webhook deliveries answered, by provider and outcome "
            "(stored, duplicate, rejected or error) and the reason of a rejection or error",
            ("provider", "outcome", "reason"), registry=reg)
        self.intake_seconds = Histogram(
            "bridge_webhook_intake_seconds", "Time to verify, store and answer one webhook delivery",
            ("provider",), buckets=_INTAKE_BUCKETS, registry=reg)
        self.job_seconds = Histogram(
            "bridge_job_run_seconds", "Run time of one job attempt, by kind and outcome "
            "(done, rescheduled, postponed, retry, dead, lease_lost)",
            ("kind", "outcome"), buckets=_JOB_BUCKETS, registry=reg)
        self.refunds = Counter(
            "bridge_refund_submissions", "Refunds sent to a provider, by outcome (submitted, refused, "
            "outcome_unknown, transient_error)", ("provider", "outcome"), registry=reg)
        self.provider_calls = Counter(
            "bridge_provider_api_calls", "HTTP calls to the providers' APIs, by provider, operation "
            "and status (ok, the HTTP status of an error, network_error, outcome_unknown)",
            ("provider", "operation", "status"), registry=reg)
        self.sync_success = Gauge(
            _SYNC_TIMESTAMP, "Unix time of the last successful sync with the provider",
            ("provider",), multiprocess_mode="max", registry=reg)
        self._intake: dict = {}

    # --- recording ------------------------------------------------------------------------
    def intake(self, provider: str, code: str, status: int, seconds: float) -> None:
        """One webhook answer: ``code`` is ``stored``, ``duplicate`` or the error code."""
        pair = self._intake.get((provider, code))
        if pair is None:
            pair = self._intake_children(provider, code, status)
        pair[0].inc()
        pair[1].observe(seconds)

    def _intake_children(self, provider: str, code: str, status: int):
        if code in ("stored", "duplicate"):
            outcome, reason = code, ""
        else:
            outcome, reason = ("error" if status >= 500 else "rejected"), code
        pair = (self.webhooks.labels(provider, outcome, reason), self.intake_seconds.labels(provider))
        return self._intake.setdefault((provider, code), pair)

    def job_ran(self, kind: str, outcome: str, seconds: float) -> None:
        self.job_seconds.labels(kind, outcome).observe(seconds)

    def refund(self, provider: str, outcome: str) -> None:
        self.refunds.labels(provider, outcome).inc()

    def provider_call(self, operation: str, status: str) -> None:
        """``operation`` as the provider clients name it: ``"stripe create_refund"``."""
        provider, _, op = operation.partition(" ")
        self.provider_calls.labels(provider, op or provider, status).inc()

    def sync_succeeded(self, provider: str, at: datetime) -> None:
        self.sync_success.labels(provider).set(at.timestamp())

    # --- exposition -----------------------------------------------------------------------
    def render(self, reads: Callable, now: datetime) -> bytes:
        """The Prometheus text of every figure: this process's (or, in multiprocess mode,
        every process's) counters, and the database's figures read now."""
        source = CollectorRegistry(auto_describe=False)
        if self.multiprocess_dir:
            from prometheus_client.multiprocess import MultiProcessCollector
            MultiProcessCollector(source, path=self.multiprocess_dir)
        else:
            for collector in (self.webhooks, self.intake_seconds, self.job_seconds, self.refunds,
                              self.provider_calls, self.sync_success):
                source.register(collector)
        families = list(source.collect())
        families += _sync_ages(families, now)
        families += _database_figures(reads, now)
        out = CollectorRegistry(auto_describe=False)
        out.register(_Fixed(families))
        return generate_latest(out)


class _Fixed:
    def __init__(self, families: list[Metric]):
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _sync_ages(families: list[Metric], now: datetime) -> list[Metric]:
    age = GaugeMetricFamily("bridge_sync_age_seconds", "Seconds since the last successful sync "
                            "with the provider", labels=("provider",))
    for family in families:
        if family.name == _SYNC_TIMESTAMP:
            for sample in family.samples:
                if sample.value > 0:
                    age.add_metric((sample.labels["provider"],), max(0.0, now.timestamp() - sample.value))
    return [age]


def _database_figures(reads: Callable, now: datetime) -> list[Metric]:
    up = GaugeMetricFamily("bridge_metrics_database_up", "1 if the database figures below could be read")
    try:
        with reads() as session:
            jobs = operations.job_counts(session)
            oldest = operations.oldest_ready_since(session, now)
            refunds = operations.refund_counts(session)
            notices = operations.undelivered_notices(session)
    except SQLAlchemyError as err:
        log.warning("metrics: database figures unavailable: %s", type(err).__name__)
        up.add_metric((), 0)
        return [up]
    up.add_metric((), 1)
    by_state = GaugeMetricFamily("bridge_jobs", "Jobs by kind and state (ready, running, dead; done "
                                 "jobs are counted by bridge_job_run_seconds_count)", labels=("kind", "state"))
    for kind, state, n in jobs:
        by_state.add_metric((kind, state), n)
    age = GaugeMetricFamily("bridge_jobs_oldest_ready_age_seconds",
                            "How long the longest-waiting due job has waited (0: none waits)")
    age.add_metric((), max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
    ref = GaugeMetricFamily("bridge_refunds", "Refunds in the ledger by provider and status",
                            labels=("provider", "status"))
    for provider, status, n in refunds:
        ref.add_metric((provider, status), n)
    undelivered = GaugeMetricFamily("bridge_notices_undelivered",
                                    "License notices the merchant's app has not accepted yet")
    undelivered.add_metric((), notices)
    return [up, by_state, age, ref, undelivered]


@functools.lru_cache(maxsize=None)
def _multiprocess_metrics(path: str, pid: int) -> Metrics:
    # One Metrics per process in multiprocess mode: two sets of metric objects in one process
    # would each keep their own copy of a value and overwrite each other's file entry.
    return Metrics(multiprocess_dir=path)


def for_settings(settings) -> NullMetrics:
    """The metrics a runtime built from ``settings`` records to."""
    if not settings.metrics_enabled:
        return NullMetrics()
    # prometheus-client's own contract: the variable, read when it was imported, decides.
    path = os.environ.get(MULTIPROC_VARIABLE)
    if path and getattr(values.ValueClass, "_multiprocess", False):
        return _multiprocess_metrics(path, os.getpid())
    if path:
        log.warning("%s was set after prometheus-client was imported: metrics of this process only",
                    MULTIPROC_VARIABLE)
    return Metrics()


def record_sync_success(metrics: NullMetrics, provider: str, at: datetime) -> None:
    """For the sync code: the provider's sync succeeded at ``at`` (feeds bridge_sync_age_seconds)."""
    metrics.sync_succeeded(provider, at)

