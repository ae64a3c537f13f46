"""Running the step loop on a thread of its own, and why: where Linux puts the processes it starts.

Linux chooses the CPU of a new process from how busy each CPU has lately been, and a CPU's recent
business includes that of the task starting the process. By the time the first step starts, the
main thread has spent 100 ms or more of steady CPU on imports, loading and planning, so its CPU
looks full: on two CPUs each new step went to the other one, queued behind the step running
there, and `posix_spawn` (which returns once the child has exec'd) waited with it, 0.4 ms a start
where 0.15 ms is usual. A new thread has no such past, and the steps it starts begin on its CPU,
which it leaves free while it waits for them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

_T = TypeVar("_T")


def on_fresh_thread(work: Callable[[], _T], *, name: str) -> _T:
    """`work()`, run on a new thread while this one waits; what it raises is raised here.

    The waiting thread still runs Python's signal handlers (a main thread must, for them to run
    at all), so a handler that hands signals on to `work` keeps working.
    """
    returned: list[_T] = []
    raised: list[BaseException] = []

    def target() -> None:
        try:
            returned.append(work())
        except BaseException as error:  # handed to the waiting thread, which raises it
            raised.append(error)

    thread = threading.Thread(target=target, name=name)
    thread.start()
    thread.join()
    if raised:
        raise raised[0]
    return returned[0]
