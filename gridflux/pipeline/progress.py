"""A run's progress: a rich progress bar over series, a user's callback, or nothing."""

from __future__ import annotations

import time
from collections.abc import Callable


class Progress:
    """A rich progress bar over series (with the bytes read and their rate beside it), or a user
    callback ``(done, total, key)``, or nothing. The bar counts series, whose number is known at
    the start; the bytes of a series are known only once its files are opened, which in a
    streaming run is on a worker."""

    def __init__(self, progress: bool | Callable | None, total: int):
        self.callback = progress if callable(progress) else None
        self.bar = None
        self.n = 0
        self.total = total
        self.bytes = 0
        self.t0 = time.perf_counter()
        if progress is True and total:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bar

            self.bar = Bar(
                "series",
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[read]}"),
                TimeRemainingColumn(),
                transient=False,
            )
            self.task = self.bar.add_task("series", total=total, read=self.read_text())
            self.bar.start()

    def read_text(self) -> str:
        """'<amount> read, <rate> MB/s' since the bar started."""
        seconds = max(time.perf_counter() - self.t0, 1e-9)
        amount = f"{self.bytes / 1e9:.2f} GB" if self.bytes >= 1e9 else f"{self.bytes / 1e6:.1f} MB"
        return f"{amount} read, {self.bytes / 1e6 / seconds:.0f} MB/s"

    def advance(self, key: str, nbytes: int) -> None:
        """One more series finished (done, failed or skipped), having read ``nbytes`` bytes."""
        self.n += 1
        self.bytes += nbytes
        if self.callback:
            self.callback(self.n, self.total, key)
        if self.bar is not None:
            self.bar.update(self.task, advance=1, read=self.read_text())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
