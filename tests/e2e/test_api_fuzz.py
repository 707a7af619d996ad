"""Fuzz the HTTP API from its own OpenAPI document with schemathesis, against a real
``runner run`` process.

The document is read from the running server (``/openapi.json``). Each operation gets
generated requests, valid (positive) and invalid (negative) ones, sent with the bearer
token so that the mutating endpoints are exercised past authentication. Two tests per
operation and mode, at most ``MAX_EXAMPLES`` cases each:

- ``test_no_request_makes_the_server_fail``: no 5xx (schemathesis's ``not_a_server_error``)
  and a JSON error body for every refusal. Some cases are steered past the first refusals
  (names of events that exist; an allowed function, a valid name and schedule for a new
  event), so that the other fields reach the service and the database.
- ``test_responses_conform_to_the_openapi_document``: every check schemathesis applies by
  default (documented status codes, content types and response schemas, invalid data
  rejected, ...), on unsteered cases. None is suppressed.

The figures (cases per operation, statuses) are printed at the end of the module.

schemathesis's lazy pytest integration (``schemathesis.pytest.from_fixture``) does not
work under pytest 9 (it writes ``Node._nodeid``, which pytest 9 no longer has), and the
eager one needs the document at import time, before the server is up. So each test
takes one operation's Hypothesis strategy (``APIOperation.as_strategy``) and runs it
under ``@given``, calling ``case.call_and_validate``.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from tests.e2e.api_helpers import ECHO, PREFIX, ApiServer, auth, running_server

Case = schemathesis.Case[Any]
MAX_EXAMPLES = 25
EVENTS = f"{PREFIX}/events"
NAMED = f"{EVENTS}/{{name}}"
OPERATIONS = [
    ("GET", EVENTS),
    ("POST", EVENTS),
    ("GET", NAMED),
    ("DELETE", NAMED),
    ("GET", f"{NAMED}/executions"),
    ("POST", f"{NAMED}/run"),
    ("POST", f"{NAMED}/pause"),
    ("POST", f"{NAMED}/resume"),
    ("GET", f"{PREFIX}/cleanup"),
    ("POST", f"{PREFIX}/cleanup"),
    ("POST", f"{PREFIX}/cleanup/run"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]
# Operations with nothing that can be made invalid: no input at all, or only the event
# name in the path, which may be any string. Negative generation cannot produce a case.
NOTHING_TO_NEGATE = {
    ("GET", f"{PREFIX}/cleanup"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", NAMED),
    ("DELETE", NAMED),
    ("POST", f"{NAMED}/run"),
    ("POST", f"{NAMED}/pause"),
    ("POST", f"{NAMED}/resume"),
}
CASES_TO_RUN = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or (method, path) not in NOTHING_TO_NEGATE
]
# Names of events that exist, so that generated calls also reach past "not found".
KNOWN_EVENTS = ("cfg-hourly", "cfg-later")

# What ran, per operation and per status, reported at the end of the module.
CASES: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    cwd: Path = tmp_path_factory.mktemp("fuzz")
    (cwd / "logs").mkdir()
    events = [
        {"name": "cfg-hourly", "function": ECHO, "schedule": {"every": "1h"}},
        {"name": "cfg-later", "function": ECHO, "schedule": {"at": "2099-01-01T00:00:00Z"}},
    ]
    cleanup = [{"name": "logs", "directory": "logs", "retention_days": 30}]
    # Generated cleanup policies name whatever directory the generator draws: housekeeping
    # runs them as a dry run only, so the fuzzing deletes nothing anywhere.
    dry = {"dry_run": True}
    with running_server(cwd, events=events, cleanup=cleanup, housekeeper=dry) as (server, _):
        yield server
        log = server.log_text()
        assert server.alive, log
        assert "unhandled error" not in log, log
        assert "unexpected error" not in log, log


@pytest.fixture(scope="module")
def api_schema(fuzz_server: ApiServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzz_server.base_url}/openapi.json")


@pytest.fixture(scope="module", autouse=True)
def report_figures(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module: how many cases ran, per operation and status."""
    yield
    lines = [
        f"schemathesis: {sum(CASES.values())} cases over {len(CASES)} operation/mode pairs",
        *(f"  {label}: {count}" for label, count in sorted(CASES.items())),
        "  statuses: " + ", ".join(f"{s}={n}" for s, n in sorted(STATUSES.items())),
    ]
    capture: Any = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print("\n" + "\n".join(lines), flush=True)


def test_the_document_lists_exactly_the_fuzzed_operations(
    api_schema: schemathesis.BaseSchema,
) -> None:
    """A new endpoint must be added to OPERATIONS, or it would go unfuzzed."""
    listed = set()
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        listed.add((operation.method.upper(), operation.path))
    assert listed == set(OPERATIONS)


def _future(seconds: int) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def _merged(parts: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in parts:
        merged.update(part)
    return merged


UNITS = ["seconds", "minutes", "hours", "days", "weeks", "months"]
ALLOWED = st.fixed_dictionaries(
    {"function_name": st.just(ECHO), "name": st.from_regex(r"fz-[a-z0-9]{1,12}", fullmatch=True)}
)
VALID_SCHEDULE = st.tuples(
    st.one_of(
        st.fixed_dictionaries(
            {
                "recurring": st.just(False),
                "interval_type": st.none(),
                "next_execution": st.integers(60, 10 * 365 * 86400).map(_future),
            }
        ),
        st.fixed_dictionaries(
            {
                "recurring": st.just(True),
                "interval_type": st.sampled_from(UNITS),
                "interval_value": st.integers(1, 10_000),
            }
        ),
        st.fixed_dictionaries(
            {
                "recurring": st.just(True),
                "interval_type": st.just("cron"),
                "interval_value": st.sampled_from(["*/5 * * * *", "0 3 * * 1", "@daily"]),
            }
        ),
    ),
    st.fixed_dictionaries(
        {"timezone": st.sampled_from([None, "UTC", "Europe/Berlin", "America/New_York"])}
    ),
).map(_merged)
# What replaces part of a generated body: nothing, an allowed function and a valid name,
# or those and a valid schedule (so that the other fields reach the database).
BODY_OVERRIDES = st.one_of(st.just({}), ALLOWED, st.tuples(ALLOWED, VALID_SCHEDULE).map(_merged))


def steered(operation: Any, mode: GenerationMode) -> st.SearchStrategy[Case]:
    """Generated cases, some steered past the first refusals: calls on events that exist,
    and new events naming a function the API allows (the document cannot say which)."""
    strategy: st.SearchStrategy[Case] = operation.as_strategy(generation_mode=mode)
    if "{name}" in operation.path:
        known = [
            operation.as_strategy(generation_mode=mode, path_parameters={"name": name})
            for name in KNOWN_EVENTS
        ]
        return st.one_of(strategy, *known)
    if (operation.method.upper(), operation.path) == ("POST", EVENTS):

        def override(drawn: tuple[Case, dict[str, Any]]) -> Case:
            case, fields = drawn
            if fields and isinstance(case.body, dict):
                case.body = {**case.body, **fields}
            return case

        return st.tuples(strategy, BODY_OVERRIDES).map(override)
    return strategy


def assert_json_error(response: Any) -> None:
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"success", "error"}, body
        assert body["success"] is False, body
        assert set(body["error"]) == {"code", "message"}, body


FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize(("method", "path", "mode"), CASES_TO_RUN)
def test_no_request_makes_the_server_fail(
    api_schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    """No 5xx and a JSON error body for every refusal, whatever is sent (with the token)."""
    operation = api_schema[path][method]
    label = f"{method} {path} {mode.value}"

    @given(case=steered(operation, mode))
    @FUZZ_SETTINGS
    def check(case: Case) -> None:
        CASES[label] += 1
        response = case.call_and_validate(headers=auth(), checks=[not_a_server_error])
        STATUSES[response.status_code] += 1
        assert response.status_code < 500, response.text
        assert_json_error(response)

    check()
    assert CASES[label] > 0


@pytest.mark.parametrize(("method", "path", "mode"), CASES_TO_RUN)
def test_responses_conform_to_the_openapi_document(
    api_schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    """schemathesis's own checks: documented status codes, content types and schemas,
    invalid data rejected, valid data accepted."""
    operation = api_schema[path][method]
    label = f"{method} {path} {mode.value} (conformance)"

    @given(case=operation.as_strategy(generation_mode=mode))
    @FUZZ_SETTINGS
    def check(case: Case) -> None:
        CASES[label] += 1
        response = case.call_and_validate(headers=auth())
        STATUSES[response.status_code] += 1
        assert_json_error(response)

    check()
    assert CASES[label] > 0
