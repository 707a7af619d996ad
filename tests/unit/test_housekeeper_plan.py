"""The housekeeper's pure planning step: tables of candidates in, deletions out (no I/O)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.housekeeper import MIB, Candidate, Deletion, plan
from runner.specs import CleanupSpec

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
DAY = 86400.0
DEFAULT_RETENTION = 30.0


def file(name: str, age_days: float, size: int = 1) -> Candidate:
    """A candidate ``age_days`` old at NOW (inode from the name: unique enough here)."""
    mtime = NOW.timestamp() - age_days * DAY
    return Candidate(name, size, mtime, device=1, inode=abs(hash(name)))


def policy(
    retention_days: float | None = None,
    max_files: int | None = None,
    max_size_mb: float | None = None,
) -> CleanupSpec:
    return CleanupSpec(
        name="p",
        directory="/srv/logs",
        retention_days=retention_days,
        max_files=max_files,
        max_size_mb=max_size_mb,
    )


def deleted(
    candidates: list[Candidate], spec: CleanupSpec, default: float = DEFAULT_RETENTION
) -> list[tuple[str, str]]:
    """(name, reason) of each deletion, in the order plan() gives them."""
    return [(d.candidate.path, d.reason) for d in plan(candidates, spec, NOW, default)]


# --- one limit at a time ----------------------------------------------------------------


def test_age_only_deletes_files_older_than_the_retention() -> None:
    files = [file("new", 1), file("week", 6.9), file("old", 7.1), file("ancient", 400)]
    assert deleted(files, policy(retention_days=7)) == [("old", "age"), ("ancient", "age")]


def test_age_exactly_at_the_cutoff_is_kept() -> None:
    cutoff = (NOW - timedelta(days=7)).timestamp()
    at = Candidate("at", 1, cutoff, 1, 1)
    before = Candidate("before", 1, cutoff - 0.001, 1, 2)
    assert deleted([at, before], policy(retention_days=7)) == [("before", "age")]


def test_fractional_retention_days() -> None:
    files = [file("eleven-hours", 11 / 24), file("thirteen-hours", 13 / 24)]
    assert deleted(files, policy(retention_days=0.5)) == [("thirteen-hours", "age")]


def test_count_only_keeps_the_newest() -> None:
    files = [file("c", 3), file("a", 1), file("d", 4), file("b", 2), file("e", 500)]
    result = deleted(files, policy(max_files=2))
    assert result == [("c", "count"), ("d", "count"), ("e", "count")]


def test_count_zero_deletes_everything_and_count_above_total_nothing() -> None:
    files = [file("a", 1), file("b", 2)]
    assert deleted(files, policy(max_files=0)) == [("a", "count"), ("b", "count")]
    assert deleted(files, policy(max_files=5)) == []


def test_size_exactly_at_the_limit_keeps_everything() -> None:
    files = [file("new", 1, MIB // 2), file("old", 2, MIB // 4), file("older", 3, MIB // 4)]
    assert deleted(files, policy(max_size_mb=1)) == []


def test_size_one_byte_over_the_limit_deletes_the_oldest() -> None:
    files = [file("new", 1, MIB // 2), file("old", 2, MIB // 4), file("older", 3, MIB // 4 + 1)]
    assert deleted(files, policy(max_size_mb=1)) == [("older", "size")]


def test_size_keeps_the_newest_even_when_an_older_file_would_fit() -> None:
    # Newest first: big (0.9 MiB) fits, medium (0.2 MiB) does not; tiny would fit after it,
    # but "newest kept" means everything older than the first file that overflows goes.
    files = [file("big", 1, 9 * MIB // 10), file("medium", 2, MIB // 5), file("tiny", 3, 10)]
    assert deleted(files, policy(max_size_mb=1)) == [("medium", "size"), ("tiny", "size")]


def test_size_limit_is_in_mebibytes_and_may_be_fractional() -> None:
    files = [file("a", 1, MIB // 2), file("b", 2, 1)]
    assert deleted(files, policy(max_size_mb=0.5)) == [("b", "size")]


def test_size_zero_deletes_every_non_empty_file() -> None:
    files = [file("empty", 1, 0), file("full", 2, 1)]
    assert deleted(files, policy(max_size_mb=0)) == [("full", "size")]


# --- combined, defaults, ties -----------------------------------------------------------


def test_all_three_limits_apply_in_order_age_count_size() -> None:
    files = [
        file("f1", 1, 400_000),
        file("f2", 2, 400_000),
        file("f3", 3, 400_000),  # kept by count (3 newest), dropped by size (1.2 MB > 1 MiB)
        file("f4", 4, 10),  # beyond max_files
        file("f5", 5, 10),  # beyond max_files
        file("f6", 20, 10),  # older than the retention
    ]
    spec = policy(retention_days=10, max_files=3, max_size_mb=1)
    assert deleted(files, spec) == [
        ("f6", "age"),
        ("f4", "count"),
        ("f5", "count"),
        ("f3", "size"),
    ]


def test_count_is_applied_after_age_not_to_all_files() -> None:
    # Two files are too old; max_files counts what is left, so only one more goes.
    files = [file(f"f{i}", i) for i in range(1, 6)]
    spec = policy(retention_days=3.5, max_files=2)
    assert deleted(files, spec) == [("f4", "age"), ("f5", "age"), ("f3", "count")]


def test_default_retention_applies_when_no_limit_is_set() -> None:
    files = [file("recent", 29), file("stale", 31)]
    assert deleted(files, policy()) == [("stale", "age")]
    assert deleted(files, policy(), default=10) == [("recent", "age"), ("stale", "age")]


@pytest.mark.parametrize("spec", [policy(max_files=10), policy(max_size_mb=100)])
def test_default_retention_does_not_apply_when_another_limit_is_set(spec: CleanupSpec) -> None:
    files = [file("recent", 1), file("ancient", 10_000)]
    assert deleted(files, spec) == []


def test_ties_in_age_are_broken_by_name_whatever_the_input_order() -> None:
    same = [file(name, 5) for name in ("b", "d", "a", "c")]
    for order in itertools.permutations(same):
        assert deleted(list(order), policy(max_files=2)) == [("c", "count"), ("d", "count")]


def test_ties_by_name_use_the_relative_path() -> None:
    same = [file("z/app.log", 5), file("a/app.log", 5), file("m.log", 5)]
    assert deleted(same, policy(max_files=1)) == [("m.log", "count"), ("z/app.log", "count")]


def test_ties_in_size_trimming_are_broken_by_name() -> None:
    same = [file("b", 5, MIB // 2), file("a", 5, MIB // 2), file("c", 5, MIB // 2)]
    assert deleted(same, policy(max_size_mb=1)) == [("c", "size")]


def test_nothing_to_plan() -> None:
    assert plan([], policy(retention_days=1, max_files=0, max_size_mb=0), NOW, 30) == []


def test_plan_accepts_a_generator_and_returns_deletions_of_the_given_candidates() -> None:
    files = [file("a", 1), file("b", 40)]
    result = plan((c for c in files), policy(), NOW, DEFAULT_RETENTION)
    assert result == [Deletion(files[1], "age")]


def test_candidate_identity_is_kept_in_the_deletion() -> None:
    # The deletion must carry device and inode: clean() checks them before unlinking.
    original = file("a", 100)
    moved = replace(original, inode=original.inode + 1)
    (deletion,) = plan([moved], policy(retention_days=1), NOW, 30)
    assert deletion.candidate is moved


# --- properties -------------------------------------------------------------------------

NAMES = st.text(alphabet="abcdef/", min_size=1, max_size=6)
CANDIDATES = st.dictionaries(
    NAMES,
    st.tuples(
        st.integers(min_value=0, max_value=40),  # age in days (small range: many ties)
        st.integers(min_value=0, max_value=3 * MIB),
    ),
    max_size=25,
).map(lambda table: [file(name, age, size) for name, (age, size) in table.items()])


@settings(max_examples=300, deadline=None)
@given(
    candidates=CANDIDATES,
    retention=st.one_of(st.none(), st.integers(min_value=1, max_value=35)),
    max_files=st.one_of(st.none(), st.integers(min_value=0, max_value=30)),
    max_size_mb=st.one_of(st.none(), st.integers(min_value=0, max_value=20)),
)
def test_plan_properties(
    candidates: list[Candidate],
    retention: int | None,
    max_files: int | None,
    max_size_mb: int | None,
) -> None:
    spec = policy(retention_days=retention, max_files=max_files, max_size_mb=max_size_mb)
    deletions = plan(candidates, spec, NOW, DEFAULT_RETENTION)
    gone = [d.candidate for d in deletions]
    assert len(set(gone)) == len(gone), "a file is deleted once"
    assert set(gone) <= set(candidates)
    kept = [c for c in candidates if c not in gone]
    newest_first = sorted(candidates, key=lambda c: (-c.mtime, c.path))

    # The same plan whatever order the scan found the files in.
    assert plan(reversed(candidates), spec, NOW, DEFAULT_RETENTION) == deletions

    days: float | None = retention
    if retention is None and max_files is None and max_size_mb is None:
        days = DEFAULT_RETENTION
    cutoff = NOW.timestamp() - days * DAY if days is not None else None
    young = [c for c in newest_first if cutoff is None or c.mtime >= cutoff]

    # Deletions never include one of the newest max_files files younger than the
    # retention; only the size limit may take such a file.
    protected = young if max_files is None else young[:max_files]
    for deletion in deletions:
        if deletion.candidate in protected:
            assert deletion.reason == "size", deletion
            assert max_size_mb is not None
    if max_size_mb is None:
        assert not set(protected) & set(gone)

    # What is kept obeys every limit.
    assert cutoff is None or all(c.mtime >= cutoff for c in kept)
    assert max_files is None or len(kept) <= max_files
    if max_size_mb is not None:
        assert sum(c.size for c in kept) <= max_size_mb * MIB

    # Newest kept: every kept file is newer (ties: name first) than every file deleted
    # for count or size, and nothing is deleted that the limits did not require.
    order = {c: i for i, c in enumerate(newest_first)}
    trimmed = [d.candidate for d in deletions if d.reason != "age"]
    if kept and trimmed:
        assert max(order[c] for c in kept) < min(order[c] for c in trimmed)
    assert {d.candidate for d in deletions if d.reason == "age"} == set(candidates) - set(young)
    if max_size_mb is not None and any(d.reason == "size" for d in deletions):
        first_dropped = min(
            (d.candidate for d in deletions if d.reason == "size"), key=lambda c: order[c]
        )
        assert sum(c.size for c in kept) + first_dropped.size > max_size_mb * MIB
    if max_size_mb is None:
        expected = 0 if max_files is None else max(0, len(young) - max_files)
        assert len(trimmed) == expected
