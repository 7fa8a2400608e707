"""What every executor shares: claim a trial, run it, record how it ended.

A worker loop claims pending trials (atomically, in the store), runs the
user's training function with a :class:`~tunebook.trial.Trial`, and records
the outcome:

- the function returned: ``completed`` with the best objective and its step
  (retrospective selection), or ``failed`` if the objective was never logged;
- a NaN/Inf, a broken ``infeasible_if`` rule or out of memory: ``infeasible``;
- any other exception: ``failed``, with the traceback stored;
- ``KeyboardInterrupt``/``SIGTERM``: the trial goes back to ``pending`` and
  keeps its checkpoints, so the next run resumes it.
"""

from __future__ import annotations

import os
import signal
import socket
import traceback
from pathlib import Path
from typing import Any, Callable

from tunebook.storage.base import COMPLETED, FAILED, INFEASIBLE, ClaimLost, Storage, TrialRecord
from tunebook.study import Study
from tunebook.trial import Trial, TrialInfeasible

#: A running trial whose heartbeat is older than this is presumed dead.
DEFAULT_STALE_AFTER = 60.0


class WorkerStop(BaseException):
    """Raised in a worker by SIGTERM: stop like Ctrl-C (the trial is re-queued)."""


def worker_id_for(pid: int | None = None) -> str:
    return f"{socket.gethostname()}:{pid if pid is not None else os.getpid()}"


def default_checkpoint_root(storage: Storage) -> Path:
    """Beside a SQLite file; under the working directory for a server store."""
    if storage.url.startswith("sqlite:///"):
        return Path(storage.url[len("sqlite:///"):]).parent / "tunebook_checkpoints"
    return Path.cwd() / "tunebook_checkpoints"


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    return name == "OutOfMemoryError" or (isinstance(exc, RuntimeError) and "out of memory" in str(exc))


def run_trial(
    study: Study,
    record: TrialRecord,
    train: Callable[[Trial], Any],
    worker_id: str,
    checkpoint_root: str | os.PathLike[str],
    flush_interval: float = 1.0,
) -> str:
    """Run one claimed trial to its end; returns the state it ended in."""
    storage = study.storage
    trial = Trial(study, record, storage, worker_id, checkpoint_root, flush_interval)
    try:
        try:
            train(trial)
        finally:
            trial._close()  # the last buffered metrics, also when training raised
        if trial._infeasible_reason is not None:
            raise TrialInfeasible(trial._infeasible_reason)
    except TrialInfeasible as exc:
        reason = trial._infeasible_reason or str(exc)
        storage.finish_trial(record.id, worker_id, INFEASIBLE, infeasible_reason=reason)
        return INFEASIBLE
    except (KeyboardInterrupt, WorkerStop):
        storage.release_trial(record.id, worker_id)
        raise
    except ClaimLost:
        return "lost"
    except Exception as exc:
        if trial._infeasible_reason is not None:  # e.g. a NaN loss made the user's code raise
            storage.finish_trial(record.id, worker_id, INFEASIBLE, infeasible_reason=trial._infeasible_reason)
            return INFEASIBLE
        if _is_out_of_memory(exc):
            storage.finish_trial(
                record.id, worker_id, INFEASIBLE, infeasible_reason=f"out of memory: {exc}".splitlines()[0]
            )
            return INFEASIBLE
        storage.finish_trial(record.id, worker_id, FAILED, error=traceback.format_exc())
        return FAILED
    metric, mode = study.objective
    best = storage.best_metric(record.id, metric, mode)
    if best is None:
        storage.finish_trial(
            record.id,
            worker_id,
            FAILED,
            error=f"the objective {metric!r} was never logged; call trial.log(step, **{{{metric!r}: value}})",
        )
        return FAILED
    storage.finish_trial(record.id, worker_id, COMPLETED, value=best[0], best_step=best[1])
    return COMPLETED


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise WorkerStop()


def _interrupt_once(signum: int, frame: Any) -> None:
    # A terminal's Ctrl-C reaches every process of the group and the parent
    # forwards it as well: raise once, then let the trial clean up in peace.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt()


def install_worker_signals() -> None:
    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)


def claim_next(study: Study, worker_id: str, stale_after: float | None = DEFAULT_STALE_AFTER,
               max_lost_workers: int = 3) -> TrialRecord | None:
    """Claim the study's next pending trial; a bayesian study first proposes one when none is pending."""
    record = study.storage.claim_trial(worker_id, study.id, stale_after, max_lost_workers)
    if record is None and study.design == "bayesian":
        from tunebook.bayesian import propose_and_add

        if propose_and_add(study) is not None:
            record = study.storage.claim_trial(worker_id, study.id, stale_after, max_lost_workers)
    return record


def worker_loop(
    study: Study,
    train: Callable[[Trial], Any],
    checkpoint_root: str | os.PathLike[str],
    *,
    worker_id: str | None = None,
    max_trials: int | None = None,
    stale_after: float | None = DEFAULT_STALE_AFTER,
    flush_interval: float = 1.0,
) -> dict[str, int]:
    """Claim and run trials of ``study`` until none is left; returns counts by outcome."""
    worker_id = worker_id or worker_id_for()
    done: dict[str, int] = {}
    while max_trials is None or sum(done.values()) < max_trials:
        record = claim_next(study, worker_id, stale_after)
        if record is None:
            break
        state = run_trial(study, record, train, worker_id, checkpoint_root, flush_interval)
        done[state] = done.get(state, 0) + 1
    return done
