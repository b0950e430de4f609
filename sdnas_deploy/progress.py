"""Progress reporting: a rich progress bar on a TTY, plain log lines otherwise (CI, pipes)."""

from __future__ import annotations

import sys
import time
from typing import Any, Iterable, Iterator, TypeVar

T = TypeVar("T")


def is_tty() -> bool:
    """True when stderr is an interactive terminal."""
    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


def log(message: str) -> None:
    """Print one plain status line to stderr (keeps stdout clean for --json)."""
    print(message, file=sys.stderr, flush=True)


class Progress:
    """Iterate with a bar (TTY) or periodic plain lines; ``update(**metrics)`` sets the postfix."""

    def __init__(self, total: int, description: str, enabled: bool = True, every_s: float = 10.0) -> None:
        self.total = total
        self.description = description
        self.enabled = enabled
        self.every_s = every_s
        self.metrics: dict[str, Any] = {}
        self._bar = None
        self._task = None
        self._start = time.perf_counter()
        self._last_line = self._start
        self.done = 0

    def __enter__(self) -> "Progress":
        if self.enabled and is_tty():
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[postfix]}"),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total, postfix="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def _postfix(self) -> str:
        return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.metrics.items())

    def advance(self, n: int = 1, **metrics: Any) -> None:
        """Mark ``n`` steps done and update the displayed metrics."""
        self.done += n
        self.metrics.update(metrics)
        if self._bar is not None:
            self._bar.update(self._task, advance=n, postfix=self._postfix())
            return
        now = time.perf_counter()
        if self.enabled and (now - self._last_line >= self.every_s or self.done == self.total):
            self._last_line = now
            elapsed = now - self._start
            eta = elapsed / max(self.done, 1) * (self.total - self.done)
            log(f"{self.description} {self.done}/{self.total} {self._postfix()} elapsed={elapsed:.0f}s eta={eta:.0f}s")


def track(items: Iterable[T], total: int, description: str, enabled: bool = True) -> Iterator[T]:
    """Yield from ``items`` while showing progress."""
    with Progress(total, description, enabled) as bar:
        for item in items:
            yield item
            bar.advance()
