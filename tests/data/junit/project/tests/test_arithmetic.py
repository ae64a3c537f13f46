"""A fixture project's own tests (not this repository's): one of them is broken on purpose."""

import pytest


class TestSums:
    def test_small_numbers_add_up(self) -> None:
        assert 1 + 1 == 2

    def test_deliberately_broken(self) -> None:
        assert 2 + 2 == 5, "two and two make four, not five"


@pytest.fixture
def broken_setup() -> None:
    raise RuntimeError("an error, not a failed assertion")


def test_setup_breaks(broken_setup: None) -> None:
    pass


@pytest.mark.skip(reason="not on this machine")
def test_skipped_on_purpose() -> None:
    raise AssertionError("never runs")
