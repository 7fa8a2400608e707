"""A run's progress on the terminal: done/total, rate and time left, fitted to the terminal's width.

On a TTY a Rich progress bar (the study's name, a bar, ``done/total``, trials a minute, time left, and
the counts with the best value on the line below); elsewhere (a log file, CI) one line per change,
wrapped at spaces to ``$COLUMNS`` (not wrapped into a pipe or a file with it unset), never inside a word
or a number.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tunebook import columns

#: A study name longer than this is shortened with an ellipsis in the bar's first column.
NAME_WIDTH = 24


def short(name: str, width: int = NAME_WIDTH) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def duration(seconds: float) -> str:
    """12 s, 4m05s, 2h13m."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def fit(lines: list[str]) -> str:
    """``lines`` wrapped at spaces to the terminal's width (``COLUMNS``), never inside a word; unwrapped
    into a pipe or a file (see :mod:`tunebook.columns`)."""
    return columns.fill(lines)


class Reporter:
    """Progress of a study's run: a Rich bar on a TTY, a wrapped line per change elsewhere."""

    def __init__(self, study: Any, enabled: bool, *, console: Any = None, clock: Any = time.monotonic) -> None:
        self.study, self.enabled, self.clock = study, enabled, clock
        self.started = clock()
        self.first_finished: int | None = None
        self.last: tuple[Any, ...] | None = None
        self.progress = None
        tty = console is not None or sys.stdout.isatty()
        if enabled and tty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
            from rich.text import Text

            class Bar(Progress):
                """The bar's line, then the counts and the best value below it (wrapped at spaces)."""

                detail = ""

                def get_renderables(self):  # type: ignore[no-untyped-def]
                    yield self.make_tasks_table(self.tasks)
                    if self.detail:
                        yield Text("  " + self.detail)

            self.progress = Bar(
                TextColumn("[bold]{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[left]}"), console=console,
            )
            self.task = self.progress.add_task(short(study.name), total=study.trials_budget, rate="", left="")
            self.progress.start()

    def _rate(self, finished: int, total: int) -> tuple[str, str]:
        """Trials a minute since the first change seen, and the time left at that rate."""
        if self.first_finished is None:
            self.first_finished, self.started = finished, self.clock()
        done = finished - self.first_finished
        elapsed = self.clock() - self.started
        if done <= 0 or elapsed <= 0:
            return "", ""
        per_second = done / elapsed
        return f"{per_second * 60:.3g}/min", duration((total - finished) / per_second)

    def update(self) -> dict[str, int]:
        counts = self.study.counts()
        if not self.enabled:
            return counts
        best = self.study.best_trial()
        metric = self.study.objective[0]
        best_text = f"best {metric} {best.value:.4g} (#{best.number})" if best else "no best yet"
        others = ", ".join(f"{counts[k]} {k}" for k in ("infeasible", "failed") if counts.get(k))
        detail = f"{counts['running']} running{', ' + others if others else ''}; {best_text}"
        finished = counts["completed"] + counts["infeasible"] + counts["failed"]
        total = sum(counts.values())
        rate, left = self._rate(finished, total)
        if self.progress is not None:
            self.progress.detail = detail  # type: ignore[attr-defined]
            self.progress.update(self.task, completed=finished, total=total, rate=rate,
                                 left=f"{left} left" if left and finished < total else "")
        elif (finished, detail) != self.last:
            pace = f"; {rate}, about {left} left" if rate and finished < total else ""
            print(fit([f"[{finished}/{total}] {self.study.name}: {detail}{pace}"]), flush=True)
            self.last = (finished, detail)
        return counts

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
