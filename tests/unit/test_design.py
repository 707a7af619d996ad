"""The module design's arguments become the config's mappings (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runner import config as configs
from runner.design import cleanup_name, event_mapping
from runner.specs import Settings

T0 = datetime(2027, 1, 4, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("arguments", "schedule"),
    [
        ({"next_execution": T0}, {"at": "2027-01-04T10:00:00+00:00"}),
        (
            {"next_execution": "2027-01-04T10:00:00", "interval_type": "once"},
            {"at": "2027-01-04T10:00:00"},
        ),
        ({"recurring": True, "interval_type": "days", "interval_value": 1}, {"every": {"days": 1}}),
        ({"interval_type": "week", "interval_value": 2}, {"every": {"weeks": 2}}),
        (
            {"interval_type": "minutes", "interval_value": 15, "next_execution": T0},
            {"every": {"minutes": 15}, "start": "2027-01-04T10:00:00+00:00"},
        ),
        ({"interval_type": "cron", "interval_value": "0 9 * * 1"}, {"cron": "0 9 * * 1"}),
        (
            {
                "interval_type": "cron",
                "parameters": {"_cron_expression": "0 9 * * 1", "fmt": "pdf"},
            },
            {"cron": "0 9 * * 1"},
        ),
        (
            {"interval_type": "cron", "interval_value": "0 9 * * 1", "timezone": "Europe/Berlin"},
            {"cron": "0 9 * * 1", "timezone": "Europe/Berlin"},
        ),
    ],
)
def test_the_designs_schedules_become_config_schedules(
    arguments: dict[str, object], schedule: dict[str, object]
) -> None:
    declared, problems = event_mapping("e", "job", **arguments)  # type: ignore[arg-type]
    assert problems == []
    assert declared["schedule"] == schedule
    assert declared["function"] == "job"
    assert "_cron_expression" not in declared["parameters"]  # not a keyword of the job


def test_the_result_passes_the_configs_schema_with_the_config_fields_beside() -> None:
    declared, problems = event_mapping(
        "weekly-report",
        "generate_report",
        interval_type="cron",
        parameters={"_cron_expression": "0 9 * * 1", "format": "pdf"},
        module_id="reports",
        retry={"attempts": 2, "delay": 60},
        timeout=120,
        overlap="allow",
        jitter=30,
        description=None,
    )
    assert problems == []
    assert declared["parameters"] == {"format": "pdf"}
    report = configs.validate_data({"events": [declared]}, "<test>", T0, Settings())
    assert report.errors == []
    assert report.config is not None
    (spec,) = report.config.events
    assert (spec.retry.attempts, spec.timeout, spec.overlap, spec.jitter) == (2, 120, "allow", 30)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({}, "a one-time event needs next_execution"),
        (
            {"interval_type": "fortnights", "interval_value": 1},
            "interval_type is once, cron or one of",
        ),
        ({"interval_type": "days", "interval_value": "1"}, "interval_value must be an integer"),
        ({"interval_type": "cron"}, "interval_type cron needs the expression"),
        (
            {
                "interval_type": "cron",
                "interval_value": "0 9 * * 1",
                "parameters": {"_cron_expression": "0 8 * * *"},
            },
            "differ",
        ),
        ({"next_execution": T0, "schedule": {"every": "1h"}}, "give schedule or"),
        ({"next_execution": T0, "function": "other"}, "give function_name or function"),
    ],
)
def test_wrong_arguments_are_problems_not_exceptions(
    arguments: dict[str, object], problem: str
) -> None:
    declared, problems = event_mapping("e", "job", **arguments)  # type: ignore[arg-type]
    assert len(problems) == 1
    assert problem in problems[0]
    assert "schedule" in declared  # a stand-in, so the other fields are still checked


def test_a_cleanup_without_a_name_gets_a_stable_valid_one() -> None:
    name = cleanup_name("/var/log/app", "*.log")
    assert name == cleanup_name("/var/log/app", "*.log")
    assert name.startswith("var-log-app-.log-")
    assert name != cleanup_name("/var/log_app", "*.log")  # same slug, other directory
    assert name != cleanup_name("/var/log/app", "*.txt")
    assert (
        configs.validate_data(
            {"cleanup": [{"name": name, "directory": "/var/log/app"}]},
            "<t>",
            T0,
            Settings(),
        ).errors
        == []
    )
    assert len(cleanup_name("/" + "x" * 300, "*")) <= 100
