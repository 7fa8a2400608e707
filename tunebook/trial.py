"""The :class:`Trial` handle that a training function receives.

``trial.log(step, **metrics)`` only appends ``(step, metrics)`` to a buffer: no
per-value work at all (a Python or NumPy number, a 0-d PyTorch tensor or a JAX
array is kept as it is), so it never waits for the device. The metric path of a
trial is made of the pieces of :mod:`tunebook.writers`:

- an :class:`~tunebook.writers.AsyncWriter` whose background thread, every
  ``flush_interval`` seconds (or early when the buffer is large), converts the
  buffer to host floats (one transfer per device and dtype), rejects values
  that are no numbers, checks NaN/Inf and the ``infeasible_if`` rules;
- a :class:`~tunebook.writers.FanOutWriter` behind it, feeding the
  :class:`~tunebook.writers.StoreWriter` (one transaction per flush, so a
  killed worker loses at most ``flush_interval`` seconds of points), the
  objective tracker (checkpoints are ranked by it) and the extra writers
  (exporters), all from that background thread;
- a :class:`Heartbeat` of its own, so that the store knows the worker is alive
  whatever happens to the flush.

A worker runs all its trials on the same two background threads (a
:class:`TrialThreads`: one :class:`~tunebook.writers.WriterThread`, one
:class:`HeartbeatThread`); a trial made without them starts its own.

The first problem the background thread finds stops the trial: the next
``log`` (or ``flush``/``close``) raises :class:`TrialInfeasible` for NaN/Inf
or a broken rule (infeasible is data, not an error), a one-line
:class:`~tunebook.errors.SpecError` naming the metric for a value that is no
number, or the store's error (e.g. :class:`ClaimLost`).
"""

from __future__ import annotations

import logging
import operator
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from tunebook.errors import SpecError, TrialInfeasible, exception_line, failure_line
from tunebook.specio import MAX_TRAIN_STEPS
from tunebook.storage.base import ClaimLost, Storage, TrialRecord
from tunebook.checkpoints import Checkpoint, CheckpointManager, checkpoint_dir
from tunebook.writers import AsyncWriter, FanOutWriter, ObjectiveWriter, StoreWriter, WriterThread, check_rules

if TYPE_CHECKING:
    from tunebook.storage.base import MetricBatch
    from tunebook.study import Study
    from tunebook.writers import MetricWriter

log = logging.getLogger("tunebook")

#: Log calls buffered before the writer thread is woken early (bounds memory and the GC's work).
MAX_PENDING = 10_000


#: The largest step every store keeps (PostgreSQL stores steps as 32-bit integers; ``Trial.log`` tests
#: ``step >> 31``, so this must stay 2**31 - 1).
MAX_STEP = MAX_TRAIN_STEPS
assert MAX_STEP == 2**31 - 1


def as_step(step: Any) -> int:
    """``step`` as an int from 0 to :data:`MAX_STEP`: Python, NumPy and 0-d PyTorch/JAX integers pass;
    anything else is refused with one line (before anything is buffered: every store keeps what passes)."""
    if not isinstance(step, bool):
        try:
            value = operator.index(step)
        except TypeError:
            pass
        else:
            if 0 <= value <= MAX_STEP:
                return value
            raise SpecError("step", f"{value} is outside the steps every store keeps (0 to {MAX_STEP:,})",
                            "log at the training step, counted from 0")
    raise SpecError("step", f"must be an integer, got {step!r:.40}", "log at the integer training step")


class Params(dict):
    """``trial.params``: a plain dict that notes which names the training function asks for.

    A name read by key (``params["lr"]``, ``get``, ``in``, ``pop``, ``setdefault``) counts as
    read; a name asked for but absent (``params.get("weight_decay", 0.0)`` while the spec says
    ``wd``) counts as missing; handing the whole dict on (iterating it, ``keys``/``values``/
    ``items``, ``dict(params)``, ``**params``, ``copy``, pickling, JSON, YAML) counts as bulk,
    after which nothing can be said of single names; so does a fork of the process while the
    trial runs (a forked data-loader worker reads its own copy). The worker stores :meth:`usage`
    with the outcome, and the checklist warns when a varied hyperparameter is never read (a typo
    in the training function makes a scientific comparison meaningless, silently).
    """

    __slots__ = ("_read", "_missing", "_bulk", "_forks")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read: set[str] = set()
        self._missing: set[str] = set()
        self._bulk = False
        self._forks = _FORKS[0]  # forks of this process so far (see _forked)

    def _note(self, key: Any, found: bool) -> None:
        if isinstance(key, str):
            (self._read if found else self._missing).add(key)

    def __getitem__(self, key: Any) -> Any:
        try:
            value = dict.__getitem__(self, key)
        except KeyError:
            self._note(key, False)
            raise
        self._note(key, True)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        found = dict.__contains__(self, key)
        self._note(key, found)
        return dict.__getitem__(self, key) if found else default

    def __contains__(self, key: Any) -> bool:
        found = dict.__contains__(self, key)
        self._note(key, found)
        return found

    def pop(self, key: Any, *default: Any) -> Any:
        self._note(key, dict.__contains__(self, key))
        return dict.pop(self, key, *default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._note(key, dict.__contains__(self, key))
        return dict.setdefault(self, key, default)

    def _all(self) -> None:
        self._bulk = True

    def __iter__(self) -> Any:
        self._all()
        return dict.__iter__(self)

    def keys(self) -> Any:
        self._all()
        return dict.keys(self)

    def values(self) -> Any:
        self._all()
        return dict.values(self)

    def items(self) -> Any:
        self._all()
        return dict.items(self)

    def copy(self) -> dict[str, Any]:
        self._all()
        return dict(dict.items(self))

    def __or__(self, other: Any) -> Any:
        self._all()
        return dict(dict.items(self)) | other

    def __ror__(self, other: Any) -> Any:
        self._all()
        return other | dict(dict.items(self))

    def __reduce__(self) -> Any:  # pickled (to a data-loader worker, a rank): a plain dict on the other side
        self._all()
        return (dict, (dict(dict.items(self)),))

    def plain(self) -> dict[str, Any]:
        """A plain copy, noting nothing (for tunebook's own use: writers, records)."""
        return dict(dict.items(self))

    def usage(self, resumed: bool = False) -> dict[str, Any]:
        """What the training function asked for: ``{"read": [...], "missing": [...], "bulk": bool}``, and
        ``"unknown"``: why the reads seen here may not be all of them (``"forked"``: the process forked
        while the trial ran; ``"resumed"``: an attempt after the first, which may take its settings
        from the checkpoint), or None."""
        unknown = "forked" if _FORKS[0] != self._forks else "resumed" if resumed else None
        return {"read": sorted(self._read), "missing": sorted(self._missing - self._read), "bulk": self._bulk,
                "unknown": unknown}


#: How many times this process forked (os.fork, multiprocessing's fork start method, a forking
#: DataLoader): a child reads its own copy of ``trial.params``, out of the parent's sight.
_FORKS = [0]


def _forked() -> None:
    _FORKS[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_forked)


def _yaml_as_mapping() -> None:
    """``yaml.safe_dump(trial.params)`` writes a plain mapping (PyYAML's safe dumper looks a type up
    exactly; a dict subclass would be refused)."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - a dependency of tunebook
        return

    def represent(dumper: Any, data: Params) -> Any:
        return dumper.represent_dict(data.items())  # handed on whole: counts as bulk

    for dumper in (yaml.SafeDumper, yaml.Dumper, getattr(yaml, "CSafeDumper", None), getattr(yaml, "CDumper", None)):
        if dumper is not None:
            yaml.add_representer(Params, represent, Dumper=dumper)


_yaml_as_mapping()


class HeartbeatThread:
    """The thread that beats for the :class:`Heartbeat` attached to it, one at a time: a worker
    keeps one for all its trials. ``idle``: seconds between two looks while none is attached."""

    def __init__(self, idle: float, name: str = "tunebook-heartbeat") -> None:
        self.idle = idle
        self._cond = threading.Condition()
        self._current: Heartbeat | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def attach(self, heartbeat: "Heartbeat") -> None:
        with self._cond:
            if self._current is not None and self._current is not heartbeat:
                raise RuntimeError("this heartbeat thread already beats for a trial: close that one first")
            self._current = heartbeat
            if heartbeat.interval < self.idle:
                self._cond.notify()

    def detach(self, heartbeat: "Heartbeat") -> None:
        """No beat for ``heartbeat`` after this returns (a beat under way is waited for)."""
        with self._cond:
            if self._current is heartbeat:
                self._current = None

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        with self._cond:
            while not self._closing:
                heartbeat = self._current
                if heartbeat is None:
                    self._cond.wait(self.idle)
                    continue
                due = heartbeat.last + heartbeat.interval - time.monotonic()
                if due > 0:
                    self._cond.wait(due)
                    continue
                heartbeat.last = time.monotonic()
                if not heartbeat._beat_once():  # the claim is lost: no more beats for it
                    self._current = None


class Heartbeat:
    """Tells the store every ``interval`` seconds that this worker still runs the trial.

    It lives apart from the metric flush: nothing the flush does stops it. A lost
    claim ends it (``on_lost`` is called: the trial must stop); any other error
    (the store is away) is logged and the next beat tries again. It beats from
    ``thread`` (a worker's :class:`HeartbeatThread`), or from a thread of its own.
    """

    def __init__(self, beat: Callable[[], None], interval: float, on_lost: Callable[[BaseException], None],
                 name: str = "tunebook-heartbeat", thread: HeartbeatThread | None = None) -> None:
        self.beat, self.interval, self.on_lost = beat, interval, on_lost
        self.beats = 0
        self.last = time.monotonic()  # the claim (or the trial's start) was the last sign of life
        self.last_error: BaseException | None = None
        self._own = thread is None
        self._thread = thread if thread is not None else HeartbeatThread(interval, name)
        self._thread.attach(self)

    def _beat_once(self) -> bool:
        """One beat; False once the claim is lost."""
        try:
            self.beat()
            self.beats += 1
        except ClaimLost as exc:
            self.on_lost(exc)
            return False
        except Exception as exc:  # an infrastructure fault: keep beating
            if self.last_error is None or type(exc) is not type(self.last_error):
                log.warning("tunebook: heartbeat failed, retrying: %s", exception_line(exc))
            self.last_error = exc
        return True

    def close(self) -> None:
        self._thread.detach(self)
        if self._own:
            self._thread.close()


def _stop_threads(writer: WriterThread, heartbeat: HeartbeatThread) -> None:
    try:
        writer.close()
    finally:
        heartbeat.close()


class TrialThreads:
    """The background threads a worker keeps for all its trials: one metric writer thread, one
    heartbeat thread (two threads started and joined per trial would cost more than a short trial).
    Pass it to each :class:`Trial` (``threads=``); close it when the worker stops."""

    def __init__(self, flush_interval: float = 1.0, heartbeat_interval: float | None = None) -> None:
        self.writer = WriterThread("tunebook-flush", idle=0.5 * flush_interval)
        self.heartbeat = HeartbeatThread(
            heartbeat_interval if heartbeat_interval is not None else min(flush_interval, 10.0), "tunebook-heartbeat"
        )
        # Dropped without close() (e.g. the worker loop raised): the threads still stop.
        self._stop = weakref.finalize(self, _stop_threads, self.writer, self.heartbeat)

    def close(self) -> None:
        """Stop both threads and wait for them."""
        self._stop()

    def __enter__(self) -> "TrialThreads":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class TrialIdentity:
    """What every handle on a trial carries (a :class:`Trial`, a multi-process trial's other ranks):
    the study, the trial's id, number, seed and attempt, its hyperparameters (every role merged, a
    :class:`Params`) and the step budget."""

    def __init__(self, study: "Study", record: TrialRecord) -> None:
        self.study = study
        self.id = record.id
        self.number = record.number
        self.seed = int(record.seed)
        self.attempt = record.attempts
        self.params: dict[str, Any] = Params({**study.space.fixed, **record.params})
        self.max_train_steps = study.steps_of(record.number)  # a length probe's own budget, else the study's


class Trial(TrialIdentity):
    """One training run: its hyperparameters, seed and the way to report back.

    Args (made by tunebook, not by users): the study, the claimed trial
    record, the storage, this worker's id and the checkpoint folder; how often
    metrics are written; extra writers (exporters), fed host floats from the
    writer thread and closed by :meth:`end`.

    Use it as a context manager (or call :meth:`close`) when you make one yourself.
    ``threads``: the worker's background threads, reused across trials (see :class:`TrialThreads`).
    """

    def __init__(
        self,
        study: Study,
        record: TrialRecord,
        storage: Storage,
        worker_id: str,
        checkpoint_root: str | os.PathLike[str],
        flush_interval: float = 1.0,
        writers: "Sequence[MetricWriter]" = (),
        *,
        max_pending: int = MAX_PENDING,
        heartbeat_interval: float | None = None,
        threads: TrialThreads | None = None,
    ) -> None:
        super().__init__(study, record)
        self._storage = storage
        self._worker_id = worker_id
        self._halt: BaseException | None = None  # set by the writer/heartbeat threads: what stops the trial
        #: why the function ended before max_train_steps, when it said so (:meth:`end`)
        self.end_reason: str | None = None
        self._closed = False
        self._checkpoints = CheckpointManager(
            checkpoint_dir(checkpoint_root, storage.store_id, study.name, record.number),
            keep_best=study.keep_checkpoints,
            mode=study.objective[1],
            # A first attempt has nothing to restore: no read of the manifest.
            records=storage.get_checkpoints(record.id) if record.attempts > 1 else (),
            on_change=lambda kept: storage.set_checkpoints(record.id, worker_id, kept),
            owner=record.id,
            background=True,
            store_id=storage.store_id,
            key=storage.checkpoint_key,
        )
        self._writers = list(writers)  # extra writers (exporters): fed host floats, see tunebook.writers
        self._objective = ObjectiveWriter(study.objective[0])
        self._store = StoreWriter(storage, record.id, worker_id, resume=record.attempts > 1)
        self._writer = AsyncWriter(
            FanOutWriter([self._store, self._objective, *self._writers]),
            flush_interval=flush_interval,
            max_pending=max_pending,
            rules=study.infeasible_if,
            on_stop=self._stop,
            name=f"tunebook-flush-{record.id}",
            thread=threads.writer if threads is not None else None,
        )
        if self._writers:
            # a plain copy: the writers iterate it, which is not the training function reading it
            self._writer.write_hparams(self.params.plain())  # written by the writer thread
        self._pending = self._writer.pending
        self._early = 2 * max_pending
        self._heartbeat = Heartbeat(
            lambda: storage.heartbeat(record.id, worker_id),
            heartbeat_interval if heartbeat_interval is not None else min(flush_interval, 10.0),
            self._stop,
            name=f"tunebook-heartbeat-{record.id}",
            thread=threads.heartbeat if threads is not None else None,
        )

    def _stop(self, cause: BaseException) -> None:
        if self._halt is None:
            self._halt = cause

    def _raise_halt(self) -> None:
        halt = self._halt
        if isinstance(halt, TrialInfeasible):
            raise TrialInfeasible(str(halt))
        if isinstance(halt, SpecError):
            raise SpecError(halt.field, halt.problem, halt.fix) from None
        raise halt  # type: ignore[misc]  # the store's error (e.g. ClaimLost), as it was raised

    # reporting -------------------------------------------------------------
    def log(self, step: int, **metrics: Any) -> None:
        """Record metric values at ``step``: appends to a buffer, never waits for the device.

        Values: Python/NumPy numbers, 0-d PyTorch tensors, 0-d JAX arrays. They are
        converted and checked in the writer thread; a tensor is kept (with its
        autograd graph, if any) until the next flush, so log ``loss.detach()``
        when the graph is large and not used for ``backward``.

        Raises:
            TrialInfeasible: a value logged earlier was NaN/Inf or broke a rule.
            SpecError: ``step`` is not an integer from 0 to :data:`MAX_STEP`, or a value or a metric name
                logged earlier cannot be stored (no number; a name over 200 characters or with control
                characters: checked once per name, in the writer thread).
            ClaimLost: another worker took the trial over.
        """
        if self._halt is not None:
            self._raise_halt()
        # One shift for the bound: nonzero for a negative step and for one past MAX_STEP (2**31 - 1);
        # as_step says what is wrong. Cheaper than a chained comparison on the hot path.
        if type(step) is not int or step >> 31:
            step = as_step(step)
        pending = self._pending  # the AsyncWriter's buffer, inlined: step then metrics (see AsyncWriter.append)
        pending.append(step)
        pending.append(metrics)
        if len(pending) >= self._early:
            self._writer.wake()  # flush early: a large buffer would put the GC on the hot path

    def flush(self) -> None:
        """Write what is buffered now (the writer thread waits for the device once); rarely needed."""
        self._writer.flush()
        if self._halt is not None:
            self._raise_halt()

    @property
    def should_stop(self) -> bool:
        """True once the trial must stop (infeasible, a bad value, a lost claim): for loops that poll."""
        return self._halt is not None

    # checkpoints -----------------------------------------------------------
    def checkpoint(self, step: int, state: Any) -> str:
        """Save ``state`` at ``step``; keep the N best by the objective plus the latest.

        The objective logged at the same ``step`` ranks the checkpoint, so log
        the evaluation before checkpointing. ``state`` is copied (to the CPU)
        at once and written atomically in the background, so training goes on
        while the file is written. Returns the path being written.
        """
        step = as_step(step)  # a negative or huge step is refused with one line before anything is written
        self.flush()  # the objective at this step must be known to rank the checkpoint
        return self._checkpoints.save(step, state, self._objective.by_step.get(step))

    def restore(self) -> Checkpoint | None:
        """The latest checkpoint of this trial (from an interrupted attempt), or None."""
        return self._checkpoints.latest()

    def best_checkpoint(self) -> Checkpoint | None:
        """The kept checkpoint with the best objective (retrospective selection)."""
        return self._checkpoints.best()

    # lifecycle -------------------------------------------------------------
    def close(self, *, hold: bool = False) -> None:
        """Write the last checkpoint and the last buffered metrics, stop the heartbeat.

        The executor calls it when ``train`` returns (or raises). Raises what
        stopped the trial if it is a failure (a value that is no number, a store
        error); an infeasible trial is read from :attr:`infeasible_reason`.
        Calling it again does nothing.

        ``hold`` (for a caller that finishes the trial in one transaction, as the
        worker loop does): the last metric points are converted and checked but
        not written; :meth:`take_held_metrics` hands them over for the
        transaction that stores the outcome.
        """
        if self._closed:
            return
        self._closed = True
        if hold:
            self._store.hold = True
        try:
            self._checkpoints.close()  # the last checkpoint is on disk before the trial ends
        finally:
            try:
                # Exporters get every call from the writer thread; the store and the objective
                # tracker do not care, so without exporters the last flush is made here.
                self._writer.close(in_caller=not self._writers)
            finally:
                self._heartbeat.close()
        if self._halt is not None and not isinstance(self._halt, TrialInfeasible):
            self._raise_halt()

    @property
    def extra_writers(self) -> tuple[Any, ...]:
        """The extra writers (exporters, e.g. MLflow) this trial feeds beside the store, until :meth:`close_writers`."""
        return tuple(self._writers)

    def take_held_metrics(self) -> "MetricBatch | None":
        """The metric points held back by ``close(hold=True)``, or None: they count as
        written from now on, so give them to ``Storage.finish_trial`` or ``release_trial``."""
        return self._store.take()

    def end(self, reason: str) -> None:
        """Say that the training stops here on purpose, before ``max_train_steps`` (early stopping,
        a target reached): call it, then return. ``reason`` (one line) is stored with the trial, so
        the checklist does not report it as cut short. Lightning's and Hugging Face's early-stopping
        callbacks are told apart by tunebook's callbacks, which call this for you."""
        if not isinstance(reason, str) or not reason.strip():
            raise SpecError("trial.end", f"expected a reason (a non-empty string), got {reason!r:.60}",
                            'e.g. trial.end("early stopping: val/loss did not improve for 5 evaluations")')
        self.end_reason = failure_line(reason)[:500]

    def ended(self) -> dict[str, Any] | None:
        """How the training ended when it returned before ``max_train_steps`` (None: it ran to its end):
        ``{"last_step", "max_train_steps", "reason"}``, ``reason`` None when the function did not say why.
        It ran to its end when its last logged step plus its logging interval reaches ``max_train_steps``
        (steps counted from 0 or from 1); with a single step logged there is no interval to judge by."""
        last, gap = self._objective.last_step, self._objective.gap
        if last is None or (gap == 0 and self.end_reason is None):  # one step logged: no interval to judge by
            return None
        if self.end_reason is None and last + max(gap, 1) >= self.max_train_steps:
            return None
        return {"last_step": last, "max_train_steps": self.max_train_steps, "reason": self.end_reason}

    def close_writers(self, summary: Mapping[str, Any]) -> None:
        """How the trial ended (``state``, ``value``, ``best_step``, ``infeasible_reason``, ``error``):
        written to the extra writers, which are then closed. The executor calls it once the outcome is stored."""
        writers, self._writers = self._writers, []
        for writer in writers:
            try:
                writer.write_summary(summary)
            finally:
                writer.close()

    def __enter__(self) -> "Trial":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except Exception:  # the exception leaving the block is the one to see
            pass

    @property
    def infeasible_reason(self) -> str | None:
        """Why the trial is infeasible (e.g. "train/loss was nan at step 3"), or None."""
        return self._writer.infeasible

    @property
    def objective_logged(self) -> bool:
        """Has this attempt logged a finite value of the objective (as far as flushed)?"""
        return any(v - v == 0 for v in self._objective.by_step.values())

    @property
    def failure_reason(self) -> str | None:
        """One line saying why the trial must fail (a value that is no number, a store error), or None."""
        halt = self._halt
        if halt is None or isinstance(halt, TrialInfeasible):
            return None
        return exception_line(halt)

    _close = close  # old private names, kept until every caller uses the public ones
    _infeasible_reason = infeasible_reason

    def _repr_html_(self) -> str:
        from tunebook.display import trial_html

        return trial_html(self)

    def __repr__(self) -> str:
        return f"Trial(study={self.study.name!r}, number={self.number}, params={self.params!r})"


__all__ = ["Checkpoint", "ClaimLost", "Heartbeat", "HeartbeatThread", "Params", "Trial", "TrialIdentity", "TrialInfeasible", "TrialThreads",
           "MAX_STEP", "as_step", "check_rules"]
