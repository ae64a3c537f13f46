"""The step loop's own thread: what the work returns or raises reaches the caller."""

from __future__ import annotations

import threading

import pytest

from ci_orchestrator.run.fresh_thread import on_fresh_thread


def test_returns_what_the_work_returns_from_another_thread() -> None:
    caller = threading.get_ident()
    assert on_fresh_thread(lambda: threading.get_ident() != caller, name="work") is True


def test_raises_what_the_work_raises() -> None:
    def work() -> None:
        raise KeyError("lost")

    with pytest.raises(KeyError, match="lost"):
        on_fresh_thread(work, name="work")
