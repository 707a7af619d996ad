"""One definition of loopback and of ``host:port``, for validation and the API (issue 9)."""

from __future__ import annotations

import pytest

from runner import netaddr


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "[::1]", "localhost", "LOCALHOST"]
)
def test_loopback(host: str) -> None:
    assert netaddr.is_loopback(host)


@pytest.mark.parametrize(
    "host",
    ["0.0.0.0", "::", "[::]", "10.0.0.1", "::2", "example.com", "127.0.0.1.nip.io", ""],
)
def test_not_loopback(host: str) -> None:
    assert not netaddr.is_loopback(host)


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("[::1]:8080", ("::1", 8080)),
        ("localhost:1", ("localhost", 1)),
        ("0.0.0.0:99999", ("0.0.0.0", 99999)),  # the range is config's to judge
    ],
)
def test_split_listen(listen: str, expected: tuple[str, int]) -> None:
    assert netaddr.split_listen(listen) == expected


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("[::1]:8080", "::1"),
        ("[::1]", "::1"),
        ("localhost:80", "localhost"),
        ("127.0.0.2", "127.0.0.2"),
        ("evil.example:80", "evil.example"),
        ("", ""),
    ],
)
def test_host_of_a_host_header(header: str, host: str) -> None:
    assert netaddr.host_of(header) == host
