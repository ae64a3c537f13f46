"""The live progress view on a terminal: the running steps and their times, drawn by rich
below the lines printed above it. rich is imported only here, and only when a view starts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ci_orchestrator.reporters.writing import format_seconds

if TYPE_CHECKING:
    from typing import TextIO

    from rich.console import Console, RenderableType

LIVE_ROWS = 12  # running steps listed in the live view; the rest are counted


@dataclass(slots=True)
class Progress:
    """What the live view shows; changed by the console reporter, read by rich's refresh thread."""

    total: int = 0
    done: int = 0
    running: dict[str, float] = field(default_factory=dict)  # instance id -> monotonic start
    failed: list[str] = field(default_factory=list)


class LiveView:
    """The terminal's live progress, drawn by rich below the lines printed above it."""

    def __init__(self, stream: TextIO, progress: Progress) -> None:
        # Imported here: rich costs start-up time and is only needed on a terminal.
        from rich.console import Console
        from rich.live import Live

        self._progress = progress
        self.console: Console = Console(file=stream, highlight=False, soft_wrap=True)
        self._live = Live(
            get_renderable=self._render, console=self.console, refresh_per_second=4, transient=True
        )
        self._live.start()

    def print_line(self, text: str, *, style: str | None) -> None:
        from rich.text import Text

        # A `Text` carries the style: a style given to `print` would colour the live view too.
        self.console.print(Text(text, style=style or ""), soft_wrap=True)

    def print_ansi(self, text: str, *, end: str = "\n") -> None:
        from rich.text import Text

        self.console.print(Text.from_ansi(text, end=end), end="")

    def refresh(self) -> None:
        """Redraw now: rich would otherwise redraw the last view under the next printed line."""
        if self._live.is_started:
            self._live.refresh()

    def stop(self) -> None:
        self._live.stop()

    def _render(self) -> RenderableType:
        from rich.text import Text

        progress = self._progress
        # Copies: the reporter may change these while rich draws from its own thread.
        running = sorted(dict(progress.running).items(), key=lambda item: item[1])
        failed = list(progress.failed)
        now = time.monotonic()
        view = Text(f"{progress.done}/{progress.total} done, {len(running)} running", style="bold")
        if failed:
            view.append(f", {len(failed)} failed: {', '.join(failed)}", style="bold red")
        for instance_id, started in running[:LIVE_ROWS]:
            view.append(f"\n  {format_seconds(now - started):>8}  {instance_id}")
        if len(running) > LIVE_ROWS:
            view.append(f"\n  ... and {len(running) - LIVE_ROWS} more")
        return view
