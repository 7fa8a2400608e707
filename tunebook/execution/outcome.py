"""How a trial ended (:class:`Outcome`) and the one place an outcome is stored (:func:`record_outcome`).

Every runner — a trial in the worker's process (:func:`tunebook.execution.loop.run_trial`)
or in several rank processes (:mod:`tunebook.execution.multiproc`) — runs the training
function through :func:`run_training`, which turns how it ended into an :class:`Outcome`:

============== ===================================================== ==========================
kind           when                                                  stored as
============== ===================================================== ==========================
completed      the function returned                                 ``completed`` (``failed``
                                                                     when the objective was
                                                                     never logged)
infeasible     NaN/Inf, a broken ``infeasible_if`` rule, out of      ``infeasible``
               memory
failed         any other exception (``error``: its traceback)        ``failed``
interrupted    Ctrl-C / SIGTERM                                      ``pending`` (resumed later)
lost           another worker took the trial over                    nothing (not ours)
lost-worker    the function killed its worker (``sys.exit``, any     ``lost_workers + 1``:
               other ``BaseException``)                              ``pending``, or ``failed``
                                                                     after ``max_lost_workers``
died           a process of the trial died (seen from outside)       as lost-worker
infrastructure the store or the disk failed (never the function's)   ``pending`` with the cause;
                                                                     the loop retries
stopped        a rank other than 0 stopped because rank 0 did        never decides alone
============== ===================================================== ==========================

:func:`record_outcome` stores any of them through the storage contract, with the
trial's last metric points and which hyperparameters the function read, in one
transaction; when the store refuses the text, a plain one-line version is stored;
when it refuses the points too, the outcome is stored without them.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from tunebook.checkpoints import is_disk_fault
from tunebook.errors import (
    ClaimLost, StorageError, StorageUnavailable, TrialInfeasible, TunebookError, exception_line, failure_line,
    infrastructure_cause, objective_never_logged, objective_not_finite,
)
from tunebook.storage.base import COMPLETED, FAILED, INFEASIBLE, PENDING, MetricBatch

if TYPE_CHECKING:
    from tunebook.storage.base import Storage, TrialRecord
    from tunebook.study import Study

log = logging.getLogger("tunebook.execution")

INTERRUPTED = "interrupted"
CLAIM_LOST = "lost"
LOST_WORKER = "lost-worker"
DIED = "died"
INFRASTRUCTURE = "infrastructure"
STOPPED = "stopped"
KINDS = (COMPLETED, INFEASIBLE, FAILED, INTERRUPTED, CLAIM_LOST, LOST_WORKER, DIED, INFRASTRUCTURE, STOPPED)


class WorkerStop(BaseException):
    """Raised in a worker by SIGTERM: stop like Ctrl-C (the trial is re-queued)."""


class RankStopped(TunebookError):
    """Raised on a rank other than 0 when rank 0's trial stopped for a reason other than infeasibility."""


@dataclass(frozen=True)
class Outcome:
    """How one run of a trial's training function ended (see the module docstring for the kinds).

    ``reason``: one line (the infeasible reason, the cause of a lost worker or of an
    infrastructure fault); ``error``: the full text a failed trial stores (a traceback);
    ``signal``: for ``interrupted``, the signal that stopped it (``SIGINT``/``SIGTERM``).
    """

    kind: str
    reason: str = ""
    error: str = ""
    signal: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown outcome kind {self.kind!r}")

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "reason": self.reason, "error": self.error, "signal": self.signal}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Outcome":
        return cls(str(data["kind"]), str(data.get("reason") or ""), str(data.get("error") or ""),
                   str(data.get("signal") or ""))

    def interruption(self) -> BaseException:
        """The exception that stops the runner after an interrupted trial is put back."""
        return WorkerStop() if self.signal == "SIGTERM" else KeyboardInterrupt()


# --- signals delivered while a trial runs ----------------------------------------------------

_SIGNALS: list[str] = []  # every SIGINT/SIGTERM this process's handlers received, in order


def note_signal(name: str) -> None:
    """Called by the worker's signal handlers (``SIGINT``/``SIGTERM``) before they raise."""
    _SIGNALS.append(name)


def signal_mark() -> int:
    """A mark to compare against: :func:`signalled_since` says whether a signal came after it."""
    return len(_SIGNALS)


def signalled_since(mark: int) -> str | None:
    """The first signal delivered since ``mark``, or None."""
    return _SIGNALS[mark] if len(_SIGNALS) > mark else None


def cut_short(outcome: Outcome, signal_name: str | None) -> Outcome:
    """A trial that was sent SIGINT/SIGTERM while it ran did not run to its end, whatever its function
    did with the exception (real scripts catch ``KeyboardInterrupt`` and return, or exit): it is
    interrupted, back to pending. Infeasible stays data; a lost claim or a fault stays what it is."""
    if signal_name is None or outcome.kind not in (COMPLETED, FAILED, LOST_WORKER):
        return outcome
    return Outcome(INTERRUPTED, f"{signal_name} while the trial ran", signal=signal_name)


def is_out_of_memory(exc: BaseException) -> bool:
    """Is ``exc`` an out-of-memory error (host or accelerator)? Such a trial is infeasible."""
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    return name == "OutOfMemoryError" or (isinstance(exc, RuntimeError) and "out of memory" in str(exc))


def killed_cause(exc: BaseException) -> str:
    """The observed cause when the training function raised a ``BaseException`` that kills a worker."""
    if isinstance(exc, SystemExit):
        return f"the training function called sys.exit({exc.code!r})"
    text = failure_line(str(exc))
    return f"the training function raised {type(exc).__name__} (a BaseException, which stops a worker)" + (
        f": {text}" if text else "")


def outcome_of(exc: BaseException, infeasible_reason: str | None) -> Outcome:
    """The outcome of a training function that raised ``exc`` (``infeasible_reason``: the trial's, if any)."""
    if isinstance(exc, TrialInfeasible):
        return Outcome(INFEASIBLE, infeasible_reason or str(exc))
    if isinstance(exc, KeyboardInterrupt):
        return Outcome(INTERRUPTED, signal="SIGINT")
    if isinstance(exc, WorkerStop):
        return Outcome(INTERRUPTED, signal="SIGTERM")
    if isinstance(exc, ClaimLost):
        return Outcome(CLAIM_LOST, exception_line(exc))
    if isinstance(exc, StorageUnavailable):
        return Outcome(INFRASTRUCTURE, exception_line(exc))
    if isinstance(exc, RankStopped):
        return Outcome(STOPPED, exception_line(exc))
    if isinstance(exc, Exception):
        if is_disk_fault(exc):  # the disk, not the training code
            return Outcome(INFRASTRUCTURE, f"disk fault: {exception_line(exc)}")
        if infeasible_reason is not None:  # e.g. a NaN loss made the user's code raise
            return Outcome(INFEASIBLE, infeasible_reason)
        if is_out_of_memory(exc):
            return Outcome(INFEASIBLE, f"out of memory: {exception_line(exc)}")
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return Outcome(FAILED, failure_line(text), error=text)
    return Outcome(LOST_WORKER, killed_cause(exc))  # SystemExit and friends: it killed its worker


def run_training(train: Callable[[Any], Any], trial: Any, close: Callable[[], None]) -> Outcome:
    """Run ``train(trial)``, then ``close()`` (also when it raised); how it ended. A signal this
    process received meanwhile makes it interrupted (:func:`cut_short`)."""
    mark, owner = signal_mark(), os.getpid()
    try:
        try:
            train(trial)
        finally:
            if os.getpid() != owner:  # a child the function forked came back here: never the trial's outcome
                _leave_forked_child()
            close()
    except BaseException as exc:  # noqa: BLE001 - every end is an outcome
        outcome = outcome_of(exc, trial.infeasible_reason)
    else:
        outcome = Outcome(INFEASIBLE, trial.infeasible_reason) if trial.infeasible_reason is not None else Outcome(COMPLETED)
    return cut_short(outcome, signalled_since(mark))


def _leave_forked_child() -> None:
    """End a process the training function forked that returned or raised into tunebook: its exception
    (printed) is the child's, not the trial's; the parent records the trial's outcome."""
    exc = sys.exc_info()[1]
    if exc is not None and not isinstance(exc, SystemExit):
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 1 if exc is not None else 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# --- the recorder -------------------------------------------------------------------------


@dataclass
class Recorded:
    """What :func:`record_outcome` did: ``state`` (a stored state, ``pending``, ``lost`` or
    :data:`LOST_WORKER`), what the extra writers are told (``summary``) and the exception the
    runner raises next (an interruption, an infrastructure fault), if any."""

    state: str
    summary: dict[str, Any] = field(default_factory=dict)
    raises: BaseException | None = None


def _summary(state: str, **values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"state": state, "value": None, "best_step": None, "infeasible_reason": None, "error": None}
    out.update(values)
    return out


def objective_missing(storage: Storage, trial_id: int, metric: str, also: Iterable[str] = ()) -> str:
    """Why a trial that returned has no value: the objective never logged, with what was logged instead
    (stored, plus ``also``: the names of points about to be stored with the outcome)."""
    logged = sorted({row.name for row in storage.get_metrics(trial_id)} | set(also))
    return objective_never_logged(metric, logged)


def plain_line(text: str, limit: int = 1000) -> str:
    """One ASCII line for a text a store refused (:func:`~tunebook.errors.failure_line`), characters
    outside ASCII escaped."""
    return failure_line(text).encode("ascii", "backslashreplace").decode("ascii")[:limit]


def _finish(storage: Storage, record: TrialRecord, worker_id: str, state: str, batch: MetricBatch | None,
            params_used: Mapping[str, Any] | None, values: dict[str, Any],
            ended: Mapping[str, Any] | None = None) -> Recorded:
    """Store a final state with the last points in one transaction; the plain-text and no-points fallbacks."""
    plain = {k: plain_line(v) if isinstance(v, str) else v for k, v in values.items()}
    tries = [(state, values, batch), (state, plain, batch)]
    refused = ""
    for i, (final_state, texts, points) in enumerate(tries):
        try:
            stored = storage.finish_trial(record.id, worker_id, final_state, metrics=points, params_used=params_used,
                                          ended=ended, **texts)
            break
        except ClaimLost:
            return Recorded(CLAIM_LOST, _summary(CLAIM_LOST))
        except StorageUnavailable:
            raise
        except StorageError as exc:
            if i == len(tries) - 1 and points is None:
                raise
            refused = exception_line(exc)
            if i == len(tries) - 1:  # the points are refused: never dropped silently, the trial says so
                tries.append(_without_points(state, plain, batch, refused))
            log.warning("recording trial #%d as %s failed (%s); trying %s", record.number, state, refused,
                        "a plain message" if i == 0 else "without its last metric points")
    values.pop("objective", None)
    final, value, best_step = stored
    if final == COMPLETED:
        values.pop("error", None)  # the failure it would have had without an objective
    return Recorded(final, _summary(final, **values, value=value, best_step=best_step))


def _without_points(state: str, plain: dict[str, Any], batch: MetricBatch | None,
                    refused: str) -> tuple[str, dict[str, Any], None]:
    """The last try of a finish whose metric points the store refused: stored without them, and the
    trial says so (a completed trial whose last points are gone is failed with that cause)."""
    n = len(batch.rows) if batch is not None else 0
    note = plain_line(f"the store refused its last {n} metric point(s), which are not stored: {refused}")
    if state == COMPLETED:
        return FAILED, {"error": note}, None
    cause = plain.get("error")
    return state, {**plain, "error": f"{cause}; {note}" if cause else note}, None


def _put_back(storage: Storage, record: TrialRecord, worker_id: str, outcome: Outcome,
              batch: MetricBatch | None) -> Recorded:
    """Interrupted or an infrastructure fault: back to pending with the points so far (and the cause)."""
    if outcome.kind == INTERRUPTED:
        try:
            storage.release_trial(record.id, worker_id, metrics=batch)
        except ClaimLost:  # taken over meanwhile: nothing of ours to put back
            pass
        return Recorded(PENDING, _summary(PENDING), outcome.interruption())
    fault, cause = StorageUnavailable(outcome.reason), infrastructure_cause(outcome.reason)
    try:
        storage.release_trial(record.id, worker_id, cause, metrics=batch)
    except TunebookError:  # still away: the loop releases it once the store answers
        fault.unreleased = (record.id, cause)  # type: ignore[attr-defined]
    return Recorded(PENDING, _summary(PENDING, error=cause), fault)


def _lose(storage: Storage, record: TrialRecord, worker_id: str, outcome: Outcome, batch: MetricBatch | None,
          max_lost_workers: int) -> Recorded:
    """The worker (or a process of the trial) is lost: the points so far stay, ``lost_workers + 1``."""
    if batch is not None:
        try:
            storage.write_metrics(record.id, worker_id, batch.rows, drop_from_step=batch.drop_from_step,
                                  replace=batch.replace)
        except TunebookError:
            pass
    try:
        state = storage.lose_trial(record.id, worker_id, outcome.reason, max_lost_workers)
    except ClaimLost:
        return Recorded(CLAIM_LOST, _summary(CLAIM_LOST))
    log.warning("trial #%d: %s; counted as a lost worker (now %s)", record.number, outcome.reason, state)
    return Recorded(LOST_WORKER if outcome.kind == LOST_WORKER else state, _summary(state, error=outcome.reason))


def record_outcome(
    study: Study,
    record: TrialRecord,
    worker_id: str,
    outcome: Outcome,
    *,
    metrics: MetricBatch | None = None,
    params_used: Mapping[str, Any] | None = None,
    objective_logged: bool | None = None,
    ended: Mapping[str, Any] | None = None,
    max_lost_workers: int = 3,
    missing_note: str = "",
) -> Recorded:
    """Store ``outcome`` for the claimed trial ``record``: the one recorder of every runner.

    ``metrics``: the trial's last points, stored in the same transaction; ``params_used``:
    which hyperparameters the function read; ``objective_logged``: whether this attempt
    logged the objective (None: unknown here, the store is asked); ``ended``: how a completed
    trial's training ended before ``max_train_steps`` (:meth:`tunebook.trial.Trial.ended`);
    ``missing_note``: added to the error of a trial that never logged its objective.
    """
    storage = study.storage
    kind = outcome.kind
    if kind in (CLAIM_LOST, STOPPED):
        return Recorded(CLAIM_LOST, _summary(CLAIM_LOST))
    if kind in (INTERRUPTED, INFRASTRUCTURE):
        return _put_back(storage, record, worker_id, outcome, metrics)
    if kind in (LOST_WORKER, DIED):
        return _lose(storage, record, worker_id, outcome, metrics, max_lost_workers)
    if kind == INFEASIBLE:
        return _finish(storage, record, worker_id, INFEASIBLE, metrics, params_used, {"infeasible_reason": outcome.reason})
    if kind == FAILED:
        return _finish(storage, record, worker_id, FAILED, metrics, params_used, {"error": outcome.error or outcome.reason})
    metric, mode = study.objective
    also = {name for _, name, _ in metrics.rows} if metrics else set()
    missing = None
    if objective_logged is False:  # not in this attempt: an earlier attempt's points may hold it
        missing = objective_missing(storage, record.id, metric, also) + missing_note
        if record.attempts == 1:
            return _finish(storage, record, worker_id, FAILED, metrics, params_used, {"error": missing})
    elif objective_logged is None and metric not in also and storage.best_metric(record.id, metric, mode) is None:
        missing = objective_missing(storage, record.id, metric, also) + missing_note
    # Completed with the best objective stored for the trial and its step: one statement, after the points;
    # failed with a cause when the store holds no finite value of it.
    return _finish(storage, record, worker_id, COMPLETED, metrics, params_used,
                   {"objective": study.objective, "error": missing or objective_not_finite(metric)}, ended)


__all__ = [
    "CLAIM_LOST", "DIED", "INFRASTRUCTURE", "INTERRUPTED", "KINDS", "LOST_WORKER", "STOPPED", "Outcome", "RankStopped",
    "Recorded", "WorkerStop", "is_out_of_memory", "killed_cause", "objective_missing", "outcome_of", "plain_line",
    "cut_short", "note_signal", "record_outcome", "run_training", "signal_mark", "signalled_since",
]
