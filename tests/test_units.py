"""Durations and sizes as users write them."""

from __future__ import annotations

import pytest

from ci_orchestrator.units import parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("1.5", 1.5),
        (42, 42),
        (2.5, 2.5),
        ("90s", 90),
        ("2m", 120),
        ("1h30m", 5400),
        ("1h", 3600),
        ("1m30s", 90),
        (" 2M ", 120),
        ("1h 5s", 3605),
        ("0", 0),
    ],
)
def test_durations_read_as_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "m", "-5", "30m1h", "1.2.3s", "inf", "nan", "ten"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_a_boolean_is_not_a_duration() -> None:
    with pytest.raises(TypeError):
        parse_duration(True)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (1024, 1024),
        ("512", 512),
        ("2GiB", 2 * 2**30),
        ("2G", 2 * 2**30),
        ("500MB", 500_000_000),
        ("1.5k", 1536),
        ("10 KiB", 10240),
        ("3b", 3),
    ],
)
def test_sizes_read_as_bytes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "2 gigs", "0", "-1G", "G"])
def test_malformed_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)
