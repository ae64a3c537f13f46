"""Durations, sizes and shards as users write them."""

from __future__ import annotations

import pytest

from ci_orchestrator.units import parse_duration, parse_shard, parse_size


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
        ("0.001", 0.001),
    ],
)
def test_durations_read_as_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "m", "30m1h", "1.2.3s", "ten"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="use seconds or a form like 90s, 2m, 1h30m"):
        parse_duration(text)


@pytest.mark.parametrize("value", ["0", 0, "0s", "0h0m", 0.0, "-5", -1, "nan"])
def test_a_duration_is_above_0(value: str | float) -> None:
    # Every duration is a timeout: 0 would stop its step at once.
    with pytest.raises(ValueError, match="must be a finite number of seconds above 0"):
        parse_duration(value)


@pytest.mark.parametrize("value", ["inf", float("inf"), 10**400, "9" * 400, "169h", 7 * 24 * 3600 + 1])
def test_a_duration_is_at_most_seven_days(value: str | float) -> None:
    # Longer than any CI job runs, and far inside what the system's waits and clocks hold.
    with pytest.raises(ValueError, match=r"at most 168h \(7 days\)"):
        parse_duration(value)


@pytest.mark.parametrize("value", [True, None, [90], {"s": 90}])
def test_a_value_of_another_type_is_not_a_duration(value: object) -> None:
    with pytest.raises(TypeError, match="invalid duration"):
        parse_duration(value)


def test_a_long_value_is_shown_cut() -> None:
    with pytest.raises(ValueError, match="duration") as caught:
        parse_duration("1" * 100 + "x")
    assert str(caught.value) == f"invalid duration '{'1' * 36}...: use seconds or a form like 90s, 2m, 1h30m"


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


@pytest.mark.parametrize(("text", "shard"), [("1/1", (1, 1)), ("2/3", (2, 3)), (" 3 / 3 ", (3, 3))])
def test_shards_are_read(text: str, shard: tuple[int, int]) -> None:
    assert parse_shard(text) == shard


@pytest.mark.parametrize(
    "text", ["", "2", "0/3", "4/3", "1/0", "a/b", "-1/3", "1/3/4", "1.5/3", "1/257", "1/99999999999999"]
)
def test_bad_shards_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid shard"):
        parse_shard(text)
