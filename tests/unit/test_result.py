"""The Result pattern of the module design, and the one table of error codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner.result import ERROR_CODES, Result, http_status

README = Path(__file__).parents[2] / "README.md"


def test_success_is_a_constructor_on_the_class_and_a_bool_on_a_result() -> None:
    result = Result.success(data={"event_id": 7})
    assert result.success is True
    assert result.data == {"event_id": 7}
    assert result.error is None
    assert (result.code, result.message) == (None, None)
    assert result.to_json() == {"success": True, "data": {"event_id": 7}}


def test_error_is_a_constructor_on_the_class_and_the_error_on_a_result() -> None:
    result = Result.error(code="not_found", message="no event named 'x'")
    assert result.success is False
    assert result.data is None
    assert result.error == {"code": "not_found", "message": "no event named 'x'"}
    assert (result.code, result.message) == ("not_found", "no event named 'x'")
    assert result.to_json() == {"success": False, "error": result.error}


def test_the_older_names_make_equal_results() -> None:
    assert Result.ok([1], total_count=3) == Result.success(data=[1], total_count=3)
    assert Result.ok([1], total_count=3).meta == {"total_count": 3}
    assert Result.fail("conflict", "taken") == Result.error(code="conflict", message="taken")
    assert Result.ok(1) != Result.ok(2)


def test_a_result_cannot_be_changed() -> None:
    result = Result.success(data=1)
    with pytest.raises(AttributeError):
        result.success = False
    assert result.success is True


def test_each_code_has_its_status_and_an_unknown_code_is_a_bad_request() -> None:
    assert http_status("not_found") == 404
    assert http_status("validation_error") == 422
    assert http_status("database_error") == 503
    assert http_status("no_such_code") == 400


def test_the_readme_table_lists_every_code_with_its_status() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", README.read_text(), re.MULTILINE)
    assert {code: int(status) for code, status in rows} == {
        code: error.status for code, error in ERROR_CODES.items()
    }
