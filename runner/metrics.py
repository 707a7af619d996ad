"""Prometheus metrics of one runner process (a registry of its own, not the global one)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)


class Metrics:
    """What ``/metrics`` shows. The loop, the reconciler and the housekeeper record here."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Counts by event wait here until someone reads the registry (see _flush).
        self._ran: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._seconds: defaultdict[str, float] = defaultdict(float)
        r = self.registry
        r.register(_Flush(self))  # first: whoever collects the registry sees every count
        self.executions = Counter(
            "runner_executions",
            "Occurrences by event and outcome.",
            ["event", "outcome"],
            registry=r,
        )
        # Per event a sum beside the count above (their ratio is the mean duration); the
        # distribution is one histogram for all runs, so a new event costs one counter,
        # not a histogram's buckets.
        self.run_seconds = Counter(
            "runner_execution_seconds", "Time spent running, by event.", ["event"], registry=r
        )
        self.duration = Histogram(
            "runner_execution_duration_seconds", "Run durations, all events.", registry=r
        )
        self.lateness = Histogram(
            "runner_lateness_seconds",
            "Start time minus scheduled time of scheduled runs.",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.running = Gauge("runner_running_executions", "Runs in progress here.", registry=r)
        self.events = Gauge("runner_events", "Events by status.", ["status"], registry=r)
        self.reloads = Counter(
            "runner_config_reloads", "Config reloads by result.", ["result"], registry=r
        )
        self.config_error = Gauge(
            "runner_config_error", "1 while the latest config could not be applied.", registry=r
        )
        self.heartbeat = Gauge(
            "runner_heartbeat_timestamp_seconds", "When the loop last ran (Unix time).", registry=r
        )
        self.cleanup_files = Counter(
            "runner_cleanup_deleted_files", "Files deleted by policy.", ["policy"], registry=r
        )
        self.cleanup_bytes = Counter(
            "runner_cleanup_freed_bytes", "Bytes freed by policy.", ["policy"], registry=r
        )
        self.cleanup_errors = Counter(
            "runner_cleanup_errors", "Housekeeping errors by policy.", ["policy"], registry=r
        )
        self.info = Gauge(
            "runner_info",
            "This runner and its config revision.",
            ["runner_id", "revision"],
            registry=r,
        )

    def count(self, event: str, outcome: str) -> None:
        """One more occurrence of ``event`` with ``outcome``."""
        self._ran[event, outcome] += 1

    def ran(self, event: str, outcome: str, seconds: float) -> None:
        """A run of ``event`` ended with ``outcome`` after ``seconds``."""
        self.count(event, outcome)
        self._seconds[event] += seconds
        self.duration.observe(seconds)

    def _flush(self) -> None:
        """Add the counts by event to their labelled series. A burst of 10k distinct
        events would otherwise make (and lock) two labelled children per run, in the
        loop; here they are made when the metrics are read, once per event."""
        ran, self._ran = self._ran, defaultdict(int)
        seconds, self._seconds = self._seconds, defaultdict(float)
        for (event, outcome), n in ran.items():
            self.executions.labels(event, outcome).inc(n)
        for event, total in seconds.items():
            self.run_seconds.labels(event).inc(total)

    def render(self) -> bytes:
        """The Prometheus text exposition format."""
        return generate_latest(self.registry)


class _Flush:
    """A collector of no series of its own: collecting the registry flushes the counts
    that :class:`Metrics` keeps aside first."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        self._metrics._flush()
        return iter(())
