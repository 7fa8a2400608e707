"""The asynchronous writer: the training thread only appends; a background thread converts and writes.

:class:`AsyncWriter` buffers raw logged values; a :class:`WriterThread` (one per worker, reused
across trials) converts them (:func:`~tunebook.writers.convert.to_floats`), checks metric names
(once per name), NaN/Inf and the ``infeasible_if`` rules, and hands host floats to the inner
writer (a :class:`~tunebook.writers.fanout.FanOutWriter`).
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Callable, Mapping

from tunebook.errors import SpecError, TrialInfeasible
from tunebook.writers.base import MetricWriter
from tunebook.writers.convert import BadValue, check_rules, to_floats


class WriterThread:
    """The background thread of :class:`AsyncWriter`s: it serves one writer at a time, so a worker
    keeps one for all its trials (a thread started and joined per trial costs more than a short
    trial on a loaded machine). Made by an :class:`AsyncWriter` that is given none.

    ``idle``: seconds between two looks while no writer is attached; a writer attached meanwhile
    is served from the next look on (attaching wakes the thread only when the writer's period is
    shorter than ``idle``).
    """

    def __init__(self, name: str = "tunebook-writer", idle: float = 0.5) -> None:
        self.idle = idle
        self._wake = threading.Event()
        self._writer: AsyncWriter | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def is_current(self) -> bool:
        return self._thread is threading.current_thread()

    def attach(self, writer: "AsyncWriter") -> None:
        if self._writer is not None and self._writer is not writer:
            raise RuntimeError("this writer thread already serves a writer: close that one first")
        self._writer = writer
        if writer.period < self.idle:
            self._wake.set()

    def detach(self, writer: "AsyncWriter") -> None:
        if self._writer is writer:
            self._writer = None

    def wake(self) -> None:
        # Already asked: nothing to do. A training thread far ahead of the writer asks at every log
        # call while the buffer stays large, and Event.set() takes a lock each time.
        if not self._wake.is_set():
            self._wake.set()

    def close(self) -> None:
        """Stop the thread (an attached writer is not flushed: close it first)."""
        self._closing = True
        self._wake.set()
        if not self.is_current():
            self._thread.join()

    def _run(self) -> None:
        while not self._closing:
            writer = self._writer
            self._wake.wait(self.idle if writer is None else min(self.idle, writer._due_in()))
            self._wake.clear()
            writer = self._writer  # read after clear(): a request made meanwhile has set the event again
            if writer is not None and not self._closing:
                writer._serve()


class AsyncWriter(MetricWriter):
    """The training thread only appends; a background thread does the rest.

    ``append(step, metrics)`` (or ``write_scalars``) puts raw values — Python or NumPy numbers,
    0-d PyTorch tensors, JAX arrays — in :attr:`pending` and returns. The writer thread, every
    ``flush_interval`` seconds of ``clock`` (see :attr:`period`) or as soon as :attr:`pending`
    holds ``max_pending`` log calls, converts them (:func:`to_floats`: one transfer per device and dtype), rejects the
    values that are no numbers, checks NaN/Inf and the ``infeasible_if`` rules, then hands host
    floats to ``inner`` (``write_scalars`` per step, one ``flush``). Calls to ``inner`` are made one
    at a time, from that thread (``flush()`` and ``close()`` ask it and wait), except the last flush
    of ``close(in_caller=True)``.

    ``thread``: a :class:`WriterThread` to be served by (a worker's, reused across trials);
    without one the writer starts its own and stops it on ``close``.

    The first problem stops the trial: :attr:`infeasible` (NaN/Inf or a rule, data),
    :attr:`failure` (a value that is no number: a one-line :class:`SpecError` naming the metric)
    or :attr:`error` (``inner`` raised, e.g. the store is away or the claim was lost); ``on_stop``
    is then called once with it. A bad value rejects only itself: the rest of its batch is written.

    ``start=False`` runs no thread: tests drive :meth:`maybe_flush` with a fake ``clock``.
    """

    def __init__(
        self,
        inner: MetricWriter,
        *,
        flush_interval: float = 1.0,
        max_pending: int = 10_000,
        rules: Mapping[str, Mapping[str, float]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_stop: Callable[[BaseException], None] | None = None,
        start: bool = True,
        name: str = "tunebook-writer",
        thread: WriterThread | None = None,
    ) -> None:
        self.inner = inner
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.rules = dict(rules or {})
        self.clock = clock
        self.on_stop = on_stop
        self.pending: collections.deque[Any] = collections.deque()  # step, metrics, step, metrics, ...
        self.infeasible: str | None = None
        self.failure: SpecError | None = None
        self.error: BaseException | None = None
        self._hparams: Mapping[str, Any] | None = None
        self._names: set[str] = set()  # metric names already checked (each new name is checked once)
        self._last_flush = clock()
        self._last_duration = 0.0
        self._lock = threading.Lock()  # one flush at a time
        self._done = threading.Condition()
        self._requested = self._completed = 0
        self._closed = False
        self._owns_thread = thread is None and start
        if self._owns_thread:
            thread = WriterThread(name, idle=max(self.period, 1e-3))
        self._thread: WriterThread | None = thread
        if thread is not None:
            thread.attach(self)

    # training thread ----------------------------------------------------------------------------
    def append(self, step: int, metrics: dict[str, Any]) -> None:
        """Buffer one log call. :attr:`pending` alternates steps and metric dicts (no tuple per
        call: a dict of floats is not tracked by the garbage collector, a tuple would be)."""
        pending = self.pending
        pending.append(step)
        pending.append(metrics)
        if len(pending) >= 2 * self.max_pending:
            self.wake()

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        self.append(step, dict(scalars))

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        self._hparams = hparams  # written by the writer thread before the first scalars

    def wake(self) -> None:
        """Ask for an early flush (the buffer is large)."""
        thread = self._thread
        if thread is not None:
            thread.wake()

    @property
    def stopped(self) -> BaseException | None:
        """What stops the trial, if anything: TrialInfeasible, the bad value's SpecError, or inner's error."""
        if self.infeasible is not None:
            return TrialInfeasible(self.infeasible)
        return self.failure or self.error

    def flush(self) -> None:
        """Convert and write what is pending now, in the writer thread; returns once it is written."""
        thread = self._thread
        if thread is None or not thread.is_alive() or thread.is_current():
            self._flush()
            return
        with self._done:
            self._requested += 1
            ticket = self._requested
            thread.wake()
            while self._completed < ticket and thread.is_alive():
                self._done.wait(0.5)
        if self._completed < ticket:  # the thread is gone (interpreter exit): write here
            self._flush()

    def close(self, *, in_caller: bool = False) -> None:
        """The last flush, then leave the writer thread (stopped if it is this writer's own).
        ``inner`` is not closed (its owner does). The last flush is made by the writer thread,
        or here with ``in_caller`` (no thread hand-off: for inner writers that do not care)."""
        thread = self._thread
        try:
            if thread is not None and not in_caller:
                self.flush()
        finally:  # whatever happened, the thread is free for the next writer
            with self._lock:  # waits for a flush the thread may be making
                self._closed = True
            if thread is not None:
                thread.detach(self)
                if self._owns_thread:
                    thread.close()
                self._thread = None
        self._flush()  # nothing left unless the thread could not write it (or in_caller)

    # writer thread --------------------------------------------------------------------------------
    @property
    def period(self) -> float:
        """Seconds between the starts of two flushes: ``flush_interval`` less the last write's
        duration and 10% for scheduling, so that a point is durable within ``flush_interval`` of
        being logged (a kill loses at most that much), never less than half of it."""
        return max(0.5 * self.flush_interval, 0.9 * self.flush_interval - self._last_duration)

    def _due_in(self) -> float:
        """Seconds until the next periodic flush is due."""
        return max(0.0, self._last_flush + self.period - self.clock())

    def maybe_flush(self) -> bool:
        """Flush when :attr:`period` has passed since the last flush or the buffer is large."""
        if self.clock() - self._last_flush >= self.period or len(self.pending) >= 2 * self.max_pending:
            self._flush()
            return True
        return False

    def _serve(self) -> None:
        """One look by the writer thread: a requested flush, or a periodic one when due."""
        with self._done:
            ticket = self._requested
        try:
            if not self._closed:
                if ticket > self._completed:
                    self._flush()
                else:
                    self.maybe_flush()
        except BaseException as exc:  # _flush records its errors; never let the thread die silently
            if self.error is None:
                self.error = exc
                self._stop(exc)
        with self._done:
            self._completed = max(self._completed, ticket)
            self._done.notify_all()

    def _flush(self) -> None:
        with self._lock:
            self._last_flush = started = self.clock()
            try:
                self._write_pending()
            finally:
                self._last_duration = self.clock() - started

    def _write_pending(self) -> None:
        if self._hparams is not None:
            hparams, self._hparams = self._hparams, None
            self._call(self.inner.write_hparams, hparams)
        n = len(self.pending) // 2  # whole (step, metrics) pairs: the training thread appends the step first
        if n == 0:
            return
        popleft = self.pending.popleft
        steps, dicts = [], []
        for _ in range(n):
            steps.append(popleft())
            dicts.append(popleft())
        if min(steps) < 0 or any(not self._names.issuperset(metrics) for metrics in dicts):
            steps, dicts = self._refuse_names_and_steps(steps, dicts)
        values = [v for metrics in dicts for v in metrics.values()]
        floats = iter(to_floats(values))
        merged: dict[int, dict[str, float]] = {}  # step -> {name: value}; the last value of a step wins
        rules = self.rules
        for step, metrics in zip(steps, dicts):
            scalars = merged.get(step)
            if scalars is None:
                scalars = merged[step] = {}
            for name in metrics:
                value = next(floats)
                if type(value) is not float:  # a BadValue
                    self._reject(step, name, value)  # type: ignore[arg-type]
                    continue
                scalars[name] = value
                # value - value is 0.0 for every finite float (NaN/Inf give NaN): one cheap test per value
                if (value - value != 0.0 or name in rules) and self.infeasible is None:
                    reason = check_rules(rules, name, value)
                    if reason is not None:
                        self.infeasible = f"{reason} at step {step}"
                        self._stop(TrialInfeasible(self.infeasible))
        for step, scalars in merged.items():
            if scalars:
                self._call(self.inner.write_scalars, step, scalars)
        self._call(self.inner.flush)

    def _call(self, method: Callable[..., None], *args: Any) -> None:
        try:
            method(*args)
        except Exception as exc:
            if self.error is None:
                self.error = exc
                self._stop(exc)

    def _refuse_names_and_steps(self, steps: list[int], dicts: list[Any]) -> tuple[list[int], list[Any]]:
        """Drop the points at a negative step or under a name that is not text, longer than every store keeps, or that holds a control
        character (a newline, ESC: names reach terminals, files and other trackers); the first such point
        fails the trial with one line naming the metric and the step. Each new name is looked at once."""
        kept_steps, kept = [], []
        for step, metrics in zip(steps, dicts):
            if step < 0:
                if self.failure is None:
                    self.failure = SpecError("step", f"{step} is negative (metric {printable_name(next(iter(metrics), ''))})",
                                             "log at the training step, counting from 0")
                    self._stop(self.failure)
                continue
            bad = []
            for name in metrics:
                if name in self._names:
                    continue
                problem, fix = _name_problem(name)
                if problem is None:
                    self._names.add(name)
                    continue
                bad.append(name)
                if self.failure is None:
                    self.failure = SpecError(f"metric {printable_name(name)} at step {step}", problem, fix)
                    self._stop(self.failure)
            kept_steps.append(step)
            kept.append({k: v for k, v in metrics.items() if k not in bad} if bad else metrics)
        return kept_steps, kept

    def _reject(self, step: int, name: str, bad: BadValue) -> None:
        if self.failure is None:
            self.failure = SpecError(f"metric {name!r} at step {step}", bad.problem, bad.fix)
            self._stop(self.failure)

    def _stop(self, cause: BaseException) -> None:
        if self.on_stop is not None:
            try:
                self.on_stop(cause)
            except Exception:  # pragma: no cover - a callback must not kill the writer thread
                pass


def _name_problem(name: Any) -> tuple[str | None, str]:
    """What keeps a metric name out of some store, and the fix; ``(None, "")`` for a name every store keeps."""
    from tunebook.specio import MAX_NAME_CHARS, name_chars_problem

    if not isinstance(name, str):
        return f"a metric name must be text, got {type(name).__name__}", "e.g. trial.log(step, loss=...)"
    problem = name_chars_problem(name)
    if problem is not None:
        return problem, "name metrics with printable characters, e.g. trial.log(step, loss=...)"
    if len(name) > MAX_NAME_CHARS:
        return (f"is {len(name)} characters long (every store keeps at most {MAX_NAME_CHARS})",
                f"use at most {MAX_NAME_CHARS} characters")
    return None, ""


def printable_name(name: Any) -> str:
    """A metric name for a message: quoted, control characters escaped, at most 80 characters."""
    from tunebook.specio import one_line

    return one_line(repr(name), 80)

__all__ = ["AsyncWriter", "WriterThread"]
