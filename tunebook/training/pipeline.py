"""Input-pipeline timing: how much of each step is spent waiting for data.

The playbook ("Optimizing the input pipeline"): an input-bound pipeline makes
every other tuning result about the pipeline, not the model. Wrap the data
iterator in :class:`TimedIterator`; it measures, on the host clock, the time
spent inside ``next()`` against the time of the whole step (from one
``next()`` to the next), and logs ``input/wait_fraction`` every
``log_every`` steps through ``trial.log``. The report turns a high share into
the ``input_bound`` finding.

Host time is the right clock: when the device is the bottleneck, the host
blocks in the training step (queue full) and the wait share is small; when
the data is the bottleneck, the host blocks in ``next()``.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Iterator


class TimedIterator:
    """Iterate over ``iterable`` and measure the share of step time spent waiting for it."""

    def __init__(
        self,
        iterable: Iterable[Any],
        trial: Any = None,
        log_every: int = 100,
        clock: Callable[[], float] = time.perf_counter,
        start_step: int = 1,
    ) -> None:
        self._it: Iterator[Any] = iter(iterable)
        self.trial = trial
        self.log_every = log_every
        self.clock = clock
        self.step = start_step - 1
        self.wait = 0.0  # over completed steps
        self.total = 0.0
        self._window_wait = 0.0
        self._window_total = 0.0
        self._pending_wait = 0.0  # the wait of the step under way
        self._last_start: float | None = None

    def __iter__(self) -> "TimedIterator":
        return self

    def __next__(self) -> Any:
        now = self.clock()
        if self._last_start is not None:
            # the step that just ended ran from the previous next() call to this one
            step_time = now - self._last_start
            self.total += step_time
            self.wait += self._pending_wait
            self._window_total += step_time
            self._window_wait += self._pending_wait
            self.step += 1
            if self.trial is not None and self.step % self.log_every == 0 and self._window_total > 0:
                self.trial.log(self.step, **{"input/wait_fraction": self._window_wait / self._window_total})
                self._window_wait = self._window_total = 0.0
        item = next(self._it)
        self._pending_wait = self.clock() - now
        self._last_start = now
        return item

    @property
    def wait_fraction(self) -> float:
        """Share of measured step time spent in ``next()``, over all completed steps."""
        return self.wait / self.total if self.total > 0 else 0.0
