"""UTCDateTime on SQLite: aware UTC in, naive UTC text to the microsecond stored (it sorts
and compares as time), aware UTC out; naive datetimes refused."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.dialects import sqlite

from runner.store.tables import UTCDateTime

DIALECT = sqlite.dialect()
TYPE = UTCDateTime().dialect_impl(DIALECT)
BIND = TYPE.bind_processor(DIALECT)
RESULT = TYPE.result_processor(DIALECT, None)
AT = datetime(2026, 12, 1, 9, 30, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (AT, "2026-12-01 09:30:00.123456"),
        (AT.replace(microsecond=0), "2026-12-01 09:30:00.000000"),
        (AT.astimezone(ZoneInfo("Europe/Paris")), "2026-12-01 09:30:00.123456"),
        (None, None),
    ],
)
def test_an_instant_is_stored_as_naive_utc_text(value: datetime | None, text: str | None) -> None:
    assert BIND is not None
    assert RESULT is not None
    assert BIND(value) == text
    assert UTCDateTime().process_bind_param(value, DIALECT) == text
    read = RESULT(text)
    assert read == value
    assert read is None or read.tzinfo is UTC


def test_a_naive_datetime_is_refused() -> None:
    assert BIND is not None
    with pytest.raises(ValueError, match="naive datetime"):
        BIND(AT.replace(tzinfo=None))


@pytest.mark.parametrize(
    "text",
    ["2026-12-01 09:30:00", "2026-12-01 10:30:00+01:00", "2026-12-01T09:30:00.000+00:00"],
)
def test_text_written_otherwise_is_read_as_its_instant(text: str) -> None:
    assert RESULT is not None
    read = RESULT(text)
    assert read == AT.replace(microsecond=0)
    assert read.tzinfo is UTC
