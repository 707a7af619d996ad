"""Metrics: the counts by event reach every reader of the registry, however read."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from runner.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_runs_and_occurrences_are_counted_by_event_and_outcome() -> None:
    metrics = Metrics()
    metrics.ran("a", "succeeded", 0.5)
    metrics.ran("a", "succeeded", 0.25)
    metrics.ran("a", "failed", 1.0)
    metrics.count("b", "skipped")
    shown = samples(metrics)
    assert shown["runner_executions_total", (("event", "a"), ("outcome", "succeeded"))] == 2
    assert shown["runner_executions_total", (("event", "a"), ("outcome", "failed"))] == 1
    assert shown["runner_executions_total", (("event", "b"), ("outcome", "skipped"))] == 1
    assert shown["runner_execution_seconds_total", (("event", "a"),)] == 1.75
    assert shown["runner_execution_duration_seconds_count", ()] == 3


def test_counts_add_up_across_reads() -> None:
    metrics = Metrics()
    metrics.ran("a", "succeeded", 1.0)
    samples(metrics)
    metrics.ran("a", "succeeded", 2.0)
    shown = samples(metrics)
    assert shown["runner_executions_total", (("event", "a"), ("outcome", "succeeded"))] == 2
    assert shown["runner_execution_seconds_total", (("event", "a"),)] == 3.0


def test_the_registry_read_directly_sees_every_count() -> None:
    metrics = Metrics()
    metrics.count("c", "missed")
    value = metrics.registry.get_sample_value(
        "runner_executions_total", {"event": "c", "outcome": "missed"}
    )
    assert value == 1
