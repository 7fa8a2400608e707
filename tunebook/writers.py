"""The metric-writer interface, in the manner of CLU's ``metric_writers``.

A :class:`MetricWriter` receives a trial's metrics as host floats, already
converted off the training thread: ``write_hparams`` once when the trial
starts, ``write_scalars(step, {...})`` for each logged step, ``write_summary``
once when the trial ends (state, value, best step, reason), then ``close``.
``flush`` makes what was written durable.

The store is one writer among others; exporters (TensorBoard, MLflow, W&B)
are others, made per trial by a :data:`WriterFactory` from a
:class:`TrialInfo`. Wrappers: an asynchronous one (the training thread only
appends; a background thread with an injectable clock converts and writes)
and a fan-out one (one write reaches several writers).
"""

from __future__ import annotations

import collections
import math
import numbers
import sys
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from tunebook.errors import SpecError, TrialInfeasible
from tunebook.storage.base import MetricBatch, MetricRows

if TYPE_CHECKING:
    from tunebook.storage.base import Storage


@dataclass(frozen=True)
class TrialInfo:
    """What a writer may know about the trial it writes for."""

    study: str
    number: int
    seed: int
    params: Mapping[str, Any]
    roles: Mapping[str, str] = field(default_factory=dict)  # hyperparameter name -> scientific|nuisance|fixed
    objective: tuple[str, str] = ("", "min")  # (metric, "min"|"max")
    goal: str = ""
    attempt: int = 1
    storage_id: str = ""  # the store's identity (several stores must never mix)


class MetricWriter(ABC):
    """Where a trial's metrics go. Implementations need not be thread-safe: one thread calls them."""

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """The trial's hyperparameters, once, before any scalar."""

    @abstractmethod
    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        """Metric values (host floats) at ``step``."""

    def write_summary(self, summary: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """How the trial ended: ``state``, ``value``, ``best_step``, ``infeasible_reason``, ``error``."""

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Make what was written durable."""

    def close(self) -> None:
        """Flush and release resources; the writer is not used afterwards."""
        self.flush()


#: Makes the writer for one trial (called in the worker process that runs it).
WriterFactory = Callable[[TrialInfo], MetricWriter]


# --- conversion: logged values -> host floats (in the writer thread) ----------------------------

_NUMBER, _TORCH, _JAX, _NUMPY_ARRAY, _BAD = range(5)
_KINDS: dict[type, int] = {float: _NUMBER, int: _NUMBER}  # resolved once per type


def _kind(cls: type) -> int:
    kind = _KINDS.get(cls)
    if kind is None:
        kind = _resolve_kind(cls)
        _KINDS[cls] = kind
    return kind


def _resolve_kind(cls: type) -> int:
    if issubclass(cls, (str, bytes)):
        return _BAD
    if issubclass(cls, numbers.Real):  # NumPy scalars register as numbers.Real / Integral
        return _NUMBER
    torch = sys.modules.get("torch")  # no tensor can exist before torch is imported
    if torch is not None and issubclass(cls, torch.Tensor):
        return _TORCH
    jax = sys.modules.get("jax")
    if jax is not None and (issubclass(cls, jax.Array) or issubclass(cls, jax.core.Tracer)):
        return _JAX
    numpy = sys.modules.get("numpy")
    if numpy is not None and issubclass(cls, numpy.ndarray):
        return _NUMPY_ARRAY
    return _BAD


class BadValue:
    """Why one logged value could not become a float (the rest of its batch is still written)."""

    __slots__ = ("problem", "fix")

    def __init__(self, problem: str, fix: str = "log a Python or NumPy number, or a 0-d tensor/array") -> None:
        self.problem, self.fix = problem, fix

    def __repr__(self) -> str:
        return f"BadValue({self.problem!r})"


def _not_scalar(shape: tuple[int, ...]) -> BadValue:
    return BadValue(f"log a scalar, got a tensor of shape {tuple(shape)}", "reduce it first (e.g. loss.mean())")


def _plain(value: Any) -> float | BadValue:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return BadValue(f"{value!r:.60} is not a number".replace("\n", " "))


def to_floats(values: Sequence[Any]) -> list[float | BadValue]:
    """Host floats for a batch of logged values: one transfer per device and dtype (PyTorch; a CPU
    tensor is read with ``item()``, nothing to wait for) and
    one ``jax.device_get`` for every JAX array of the batch; a value that is no number becomes a
    :class:`BadValue` and the others are still converted."""
    out: list[float | BadValue] = [0.0] * len(values)
    tensors: dict[Any, list[int]] = {}
    arrays: list[int] = []
    for i, value in enumerate(values):
        kind = _kind(type(value))
        if kind == _NUMBER:
            out[i] = float(value)
        elif kind == _TORCH:
            if value.is_cpu:  # no device to wait for: item() is the cheapest read
                try:
                    x = value.item()
                except RuntimeError:  # more than one element
                    out[i] = _not_scalar(value.shape)
                else:
                    out[i] = x if type(x) is float else _plain(x)
            elif value.numel() != 1:
                out[i] = _not_scalar(value.shape)
            else:
                tensors.setdefault((value.device, value.dtype), []).append(i)
        elif kind == _JAX:
            if _is_tracer(value):
                out[i] = BadValue("a JAX tracer (logged inside jax.jit)", "return the value from the jitted step and log it outside")
            elif value.size != 1:
                out[i] = _not_scalar(value.shape)
            else:
                arrays.append(i)
        elif kind == _NUMPY_ARRAY:
            out[i] = _plain(value) if value.size == 1 else _not_scalar(value.shape)
        else:
            out[i] = BadValue(f"{value!r:.60} is not a number") if isinstance(value, (str, bytes)) else _plain(value)
    if tensors:
        _torch_floats(values, tensors, out)
    if arrays:
        _jax_floats(values, arrays, out)
    return out


def _torch_floats(values: Sequence[Any], groups: dict[Any, list[int]], out: list[float | BadValue]) -> None:
    import torch

    with torch.no_grad():
        for indices in groups.values():
            try:
                stacked = torch.stack([values[i] if values[i].dim() == 0 else values[i].reshape(()) for i in indices])
                stacked = stacked.to(torch.float64)
                for i, x in zip(indices, stacked.cpu().tolist()):  # the one transfer of this device and dtype
                    out[i] = x
            except (RuntimeError, TypeError) as exc:  # e.g. a complex dtype: find the culprit value by value
                for i in indices:
                    try:
                        out[i] = float(values[i].reshape(()).to(torch.float64).item())
                    except (RuntimeError, TypeError):
                        out[i] = BadValue(f"a {values[i].dtype} tensor cannot become a float ({exc})".splitlines()[0])


def _is_tracer(value: Any) -> bool:
    core = getattr(sys.modules.get("jax"), "core", None)
    tracer = getattr(core, "Tracer", None)
    return tracer is not None and isinstance(value, tracer)


def _jax_floats(values: Sequence[Any], indices: list[int], out: list[float | BadValue]) -> None:
    import jax

    try:
        host = jax.device_get([values[i] for i in indices])  # one transfer per flush
    except Exception as exc:  # e.g. a donated (deleted) buffer: find the culprit value by value
        for i in indices:
            try:
                out[i] = float(jax.device_get(values[i]).reshape(()))
            except Exception:
                out[i] = BadValue(f"a JAX array that cannot be read ({exc})".splitlines()[0])
        return
    for i, x in zip(indices, host):
        out[i] = _plain(x.reshape(()))


# --- rules ------------------------------------------------------------------------------------------


def check_rules(rules: Mapping[str, Mapping[str, float]], name: str, value: float) -> str | None:
    """The reason ``value`` of metric ``name`` makes a trial infeasible, or None."""
    if not math.isfinite(value):
        return f"{name} was {value}"
    rule = rules.get(name)
    if rule:
        if "above" in rule and value > rule["above"]:
            return f"{name} = {value:.6g} above {rule['above']:g} (infeasible_if)"
        if "below" in rule and value < rule["below"]:
            return f"{name} = {value:.6g} below {rule['below']:g} (infeasible_if)"
    return None


# --- writers ------------------------------------------------------------------------------------------


class StoreWriter(MetricWriter):
    """Writes a trial's metric points to the store: everything written between two flushes goes
    in one transaction (``Storage.write_metrics``, which also refreshes the heartbeat).

    The same step and metric written twice keeps the last value, stored once: within a flush
    the rows are keyed by (step, name); a step at or below one already stored for that metric
    is sent as a replacement. A resumed attempt (``resume=True``) first drops the points from
    its first step on, which the attempt before it may have stored.

    ``hold`` (for a caller that stores the outcome in the same transaction, as the worker loop does): ``flush`` keeps
    the rows, and
    :meth:`take` hands them over as one :class:`~tunebook.storage.base.MetricBatch`, which the
    loop stores in the transaction that records the outcome (``Storage.finish_trial``).
    """

    def __init__(self, storage: Storage, trial_id: int, worker_id: str, *, resume: bool = False) -> None:
        self.storage, self.trial_id, self.worker_id = storage, trial_id, worker_id
        self.hold = False
        self._resume = resume
        self._first_step: int | None = None
        self._rows: dict[tuple[int, str], float] = {}
        self._low = self._high = 0  # the lowest and highest step of the rows not written yet
        self._stored_top: int | None = None  # the highest step written

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        if not self._rows:
            self._low = self._high = step
            if self._first_step is None:
                self._first_step = step
        elif step > self._high:
            self._high = step
        elif step < self._low:
            self._low = step
        rows = self._rows
        for name, value in scalars.items():
            rows[(step, name)] = value

    def _batch(self) -> MetricBatch:
        top = self._stored_top
        # A step at or below the highest one written may be stored already: replaced (deleting a point
        # that is not there changes nothing). Training logs forward, so this is rarely more than a test.
        replace = [key for key in self._rows if key[0] <= top] if top is not None and self._low <= top else []
        rows = MetricRows([(step, name, value) for (step, name), value in self._rows.items()])
        return MetricBatch(rows, replace, self._first_step if self._resume else None)

    def _written(self) -> None:
        self._resume = False
        if self._stored_top is None or self._high > self._stored_top:
            self._stored_top = self._high
        self._rows = {}

    def flush(self) -> None:
        if not self._rows or self.hold:
            return
        batch = self._batch()
        if batch.replace:
            self.storage.write_metrics(self.trial_id, self.worker_id, batch.rows, drop_from_step=batch.drop_from_step,
                                       replace=batch.replace)
        else:
            self.storage.write_metrics(self.trial_id, self.worker_id, batch.rows, drop_from_step=batch.drop_from_step)
        self._written()

    def take(self) -> MetricBatch | None:
        """The rows not written yet, as one batch (counted as written from now on), or None."""
        if not self._rows:
            return None
        batch = self._batch()
        self._written()
        return batch


class FanOutWriter(MetricWriter):
    """One write reaches every writer, in order; a writer that raises does not stop the others
    (the first error is raised once all were called)."""

    def __init__(self, writers: Sequence[MetricWriter]) -> None:
        self.writers = list(writers)

    def _each(self, method: str, *args: Any) -> None:
        error: BaseException | None = None
        for writer in self.writers:
            try:
                getattr(writer, method)(*args)
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        self._each("write_hparams", hparams)

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        error: Exception | None = None
        for writer in self.writers:  # the hot call (once per step): no getattr
            try:
                writer.write_scalars(step, scalars)
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        self._each("write_summary", summary)

    def flush(self) -> None:
        self._each("flush")

    def close(self) -> None:
        self._each("close")


class ObjectiveWriter(MetricWriter):
    """Remembers the objective's value at each step (a checkpoint is ranked by it), the last step
    logged and the interval before it (whether the training ran to its end)."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.by_step: dict[int, float] = {}
        self.last_step: int | None = None
        self.gap = 0  # the last step less the step logged before it

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        value = scalars.get(self.metric)
        if value is not None:
            self.by_step[step] = value
        last = self.last_step
        if last is None or step > last:
            if last is not None:
                self.gap = step - last
            self.last_step = step


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


__all__ = [
    "AsyncWriter",
    "BadValue",
    "FanOutWriter",
    "MetricWriter",
    "ObjectiveWriter",
    "StoreWriter",
    "TrialInfo",
    "WriterFactory",
    "WriterThread",
    "check_rules",
    "to_floats",
]
