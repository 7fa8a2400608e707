"""The one worker loop: claim, propose, run, heartbeat, resume.

The local pool (:mod:`.local`), the standalone ``tunebook worker``
(:mod:`.worker`) and the Ray executor (:mod:`.ray_executor`) all run trials
through :func:`worker_loop`; they differ only in where it runs, how many
trials it takes (Ray: one per task) and whether it waits for trials running
elsewhere. The loop:

1. claims a pending trial (atomically, in the store); trials whose worker
   stopped heartbeating for ``stale_after`` seconds first go back to pending,
   or to failed once they lost ``max_lost_workers`` workers;
2. nothing pending: asks the study's design to propose one when the design
   proposes (:func:`tunebook.design.propose_next`: number, seed and point in
   one store transaction) — the loop never names a design;
3. runs the user's training function with a :class:`~tunebook.trial.Trial`
   (its metric buffer heartbeats while it runs; a resumed trial restores its
   latest checkpoint) and records the outcome (:func:`run_trial`):

   - the function returned: ``completed`` with the best objective and its step
     (retrospective selection), or ``failed`` if the objective was never logged;
   - a NaN/Inf, a broken ``infeasible_if`` rule or out of memory: ``infeasible``;
   - any other exception: ``failed``, with the traceback stored;
   - the store became unavailable (:class:`~tunebook.errors.StorageUnavailable`:
     disk full, database away): an infrastructure fault, never the training
     function's: the trial goes back to ``pending`` (if the store still answers;
     otherwise it turns stale) and the error propagates to the executor;
   - ``KeyboardInterrupt``/``SIGTERM``: the trial goes back to ``pending`` and
     keeps its checkpoints, so the next run resumes it.

Extra metric writers (exporters) are made per trial by the ``writers``
factories; they are told how the trial ended once the outcome is stored, and
a failing writer is logged, never the trial's fault.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from tunebook.design import get_design, propose_next
from tunebook.errors import ClaimLost, SpecError, StorageUnavailable, TrialInfeasible, TunebookError
from tunebook.storage.base import COMPLETED, FAILED, INFEASIBLE, Storage, TrialRecord
from tunebook.study import Study, resolve_train
from tunebook.trial import Trial, TrialThreads
from tunebook.writers import MetricWriter, TrialInfo, WriterFactory

log = logging.getLogger("tunebook.execution")

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


def is_out_of_memory(exc: BaseException) -> bool:
    """Is ``exc`` an out-of-memory error (host or accelerator)? Such a trial is infeasible."""
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    return name == "OutOfMemoryError" or (isinstance(exc, RuntimeError) and "out of memory" in str(exc))


# --- extra writers -------------------------------------------------------------------


def trial_info(study: Study, record: TrialRecord) -> TrialInfo:
    """What a writer factory is told about the trial it writes for."""
    space = study.space
    roles = {**{k: "fixed" for k in space.fixed}, **{k: "nuisance" for k in space.nuisance},
             **{k: "scientific" for k in space.scientific}}
    return TrialInfo(
        study=study.name, number=record.number, seed=int(record.seed),
        params={**space.fixed, **record.params}, roles=roles, objective=study.objective,
        goal=study.goal, attempt=record.attempts,
    )


class GuardedWriter(MetricWriter):
    """Wraps an exporter: its first error is logged and the writer switched off; training goes on."""

    def __init__(self, writer: MetricWriter, label: str) -> None:
        self.writer, self.label, self.failed = writer, label, False

    def _call(self, method: str, *args: Any) -> None:
        if self.failed:
            return
        try:
            getattr(self.writer, method)(*args)
        except Exception:  # an exporter's fault is never the trial's  # noqa: BLE001
            self.failed = True
            log.warning("metric writer %s failed in %s; it is switched off for this trial",
                        self.label, method, exc_info=True)

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        self._call("write_hparams", hparams)

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        self._call("write_scalars", step, scalars)

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        self._call("write_summary", summary)

    def flush(self) -> None:
        self._call("flush")

    def close(self) -> None:
        self._call("close")


def make_writers(factories: Sequence[WriterFactory], info: TrialInfo) -> list[MetricWriter]:
    """One writer per factory for this trial; a factory that raises is logged and skipped."""
    out: list[MetricWriter] = []
    for factory in factories:
        label = getattr(factory, "__qualname__", None) or type(factory).__name__
        try:
            out.append(GuardedWriter(factory(info), label))
        except Exception:  # noqa: BLE001
            log.warning("metric writer factory %s failed for trial #%d of %s; skipped",
                        label, info.number, info.study, exc_info=True)
    return out


def _end(trial: Trial, summary: dict[str, Any]) -> None:
    """Tell the writers how the trial ended; never changes the stored outcome."""
    try:
        trial.end(summary)
    except Exception:  # noqa: BLE001
        log.warning("a metric writer failed at the end of trial #%d", trial.number, exc_info=True)


# --- one trial ----------------------------------------------------------------------


def run_trial(
    study: Study,
    record: TrialRecord,
    train: Callable[[Trial], Any],
    worker_id: str,
    checkpoint_root: str | os.PathLike[str],
    flush_interval: float = 1.0,
    writers: Sequence[WriterFactory] = (),
    threads: TrialThreads | None = None,
) -> str:
    """Run one claimed trial to its end; returns the state it ended in ("lost": taken over elsewhere).

    ``threads``: the worker's writer and heartbeat threads, reused across trials (else the trial
    starts its own). The trial's last metric points are stored in the transaction that stores
    its outcome (or puts it back to pending), with the best objective computed there.
    """
    storage = study.storage
    extra = make_writers(writers, trial_info(study, record)) if writers else []
    trial = Trial(study, record, storage, worker_id, checkpoint_root, flush_interval, writers=extra, threads=threads)
    summary: dict[str, Any] = {"state": None, "value": None, "best_step": None, "infeasible_reason": None,
                               "error": None}

    def finish(state: str, objective: tuple[str, str] | None = None, **values: Any) -> str:
        try:
            stored, value, best_step = storage.finish_trial(
                record.id, worker_id, state, metrics=trial.take_held_metrics(), objective=objective, **values
            )
        except ClaimLost:  # taken over meanwhile: its last points and outcome are not this worker's to store
            summary["state"] = "lost"
            return "lost"
        summary.update(values)
        summary.update(state=stored, value=value, best_step=best_step)
        if objective is not None and stored == COMPLETED:
            summary["error"] = None
        return stored

    try:
        try:
            try:
                train(trial)
            finally:
                trial.close(hold=True)  # the last buffered metrics, also when training raised: stored below
            if trial.infeasible_reason is not None:
                raise TrialInfeasible(trial.infeasible_reason)
        except TrialInfeasible as exc:
            return finish(INFEASIBLE, infeasible_reason=trial.infeasible_reason or str(exc))
        except (KeyboardInterrupt, WorkerStop):
            try:
                storage.release_trial(record.id, worker_id, metrics=trial.take_held_metrics())
                summary["state"] = "pending"  # interrupted: resumed by the next run
            except ClaimLost:  # taken over meanwhile: nothing of it to put back
                summary["state"] = "lost"
            raise
        except ClaimLost:
            summary["state"] = "lost"
            return "lost"
        except StorageUnavailable as exc:
            summary.update(state="pending", error=str(exc))
            try:
                storage.release_trial(record.id, worker_id, metrics=trial.take_held_metrics())
            except TunebookError:  # still away: the trial turns stale and is re-queued
                pass
            raise
        except Exception as exc:
            if trial.infeasible_reason is not None:  # e.g. a NaN loss made the user's code raise
                return finish(INFEASIBLE, infeasible_reason=trial.infeasible_reason)
            if is_out_of_memory(exc):
                return finish(INFEASIBLE, infeasible_reason=f"out of memory: {exc}".splitlines()[0])
            return finish(FAILED, error=traceback.format_exc())
        metric = study.objective[0]
        # The best objective and its step, computed by the store in the finishing transaction
        # (failed with this error when the objective was never logged).
        return finish(
            COMPLETED, objective=study.objective,
            error=f"the objective {metric!r} was never logged; call trial.log(step, **{{{metric!r}: value}})",
        )
    finally:
        if extra:
            _end(trial, summary)


# --- signals ------------------------------------------------------------------------


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


# --- claiming -----------------------------------------------------------------------


def _proposing_studies(store: Storage, scope: Study | None) -> Iterator[Study]:
    if scope is not None:
        if get_design(scope.design).proposes:
            yield scope
        return
    for record in store.list_studies():
        try:
            design = get_design(record.spec.get("design", "quasi_random"))
        except SpecError:  # a design registered by a plugin this worker has not imported
            log.warning("study %s: design %r is not registered here; not proposing for it",
                        record.name, record.spec.get("design"))
            continue
        if design.proposes:
            yield Study(record, store)


def claim_next(
    study: Study | None,
    worker_id: str,
    stale_after: float | None = DEFAULT_STALE_AFTER,
    max_lost_workers: int = 3,
    *,
    storage: Storage | None = None,
) -> TrialRecord | None:
    """Claim the next pending trial of ``study`` (any study of ``storage`` when None); when none is
    pending, a study whose design proposes adds its next trial first."""
    store = storage if storage is not None else study.storage  # type: ignore[union-attr]
    scope_id = study.id if study is not None else None
    record = store.claim_trial(worker_id, scope_id, stale_after, max_lost_workers)
    if record is not None:
        return record
    for proposing in _proposing_studies(store, study):
        if propose_next(proposing) is not None:
            record = store.claim_trial(worker_id, proposing.id, stale_after, max_lost_workers)
            if record is not None:
                return record
    return None


def train_for(study: Study) -> Callable[..., Any]:
    """The study's stored training function (``train: module:function``), resolved beside its spec file."""
    if not study.train_ref:
        raise SpecError("train", f"study {study.name!r} stores no training function",
                        "create it from a YAML spec with train: module:function, or pass train=")
    config = study.record.config_path
    base = Path(config).resolve().parent if config and Path(config).exists() else Path.cwd()
    return resolve_train(study.train_ref, base)


def _running(store: Storage, scope: Study | None) -> bool:
    if scope is not None:
        return bool(store.get_trials(scope.id, ["running"]))
    return any(item["counts"].get("running") for item in store.study_summaries())


# --- the loop -----------------------------------------------------------------------


def worker_loop(
    study: Study | None,
    train: Callable[[Trial], Any] | None = None,
    checkpoint_root: str | os.PathLike[str] | None = None,
    *,
    storage: Storage | None = None,
    worker_id: str | None = None,
    max_trials: int | None = None,
    stale_after: float | None = DEFAULT_STALE_AFTER,
    max_lost_workers: int = 3,
    flush_interval: float = 1.0,
    writers: Sequence[WriterFactory] = (),
    wait_for_running: bool = False,
    wait: bool = False,
    poll_interval: float = 2.0,
    idle_timeout: float | None = None,
    log_line: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Claim and run trials until none is left; returns counts by outcome.

    ``study``: the study to serve, or None for every study of ``storage``.
    ``train``: the training function, or None for each study's stored one.
    Stops when nothing can be claimed, unless ``wait_for_running`` (then only
    once nothing is running either: a dead worker's trial comes back once
    stale) or ``wait`` (keep polling until idle for ``idle_timeout``).
    """
    store = storage if storage is not None else study.storage  # type: ignore[union-attr]
    root = Path(checkpoint_root) if checkpoint_root else default_checkpoint_root(store)
    worker_id = worker_id or worker_id_for()
    known: dict[int, tuple[Study, Callable[..., Any]]] = {}
    if study is not None and train is not None:
        known[study.id] = (study, train)
    done: dict[str, int] = {}
    idle_since = time.monotonic()
    # One writer and one heartbeat thread for all the trials: stopped after the loop (or once dropped, if it raises).
    threads = TrialThreads(flush_interval)
    while max_trials is None or sum(done.values()) < max_trials:
        record = claim_next(study, worker_id, stale_after, max_lost_workers, storage=store)
        if record is None:
            if wait:
                if idle_timeout is not None and time.monotonic() - idle_since > idle_timeout:
                    break
            elif not wait_for_running or not _running(store, study):
                break  # nothing pending (and, if asked, nothing running): the work is done
            # Trials still running elsewhere: if their worker died, they turn stale and come back here.
            time.sleep(min(poll_interval, stale_after / 2) if stale_after else poll_interval)
            continue
        if record.study_id not in known:
            owner = study or next(Study(s, store) for s in store.list_studies() if s.id == record.study_id)
            known[record.study_id] = (owner, train or train_for(owner))
        owner, owner_train = known[record.study_id]
        if log_line:
            log_line(f"{worker_id}: trial #{record.number} of {owner.name} (attempt {record.attempts})")
        state = run_trial(owner, record, owner_train, worker_id, root, flush_interval, writers, threads)
        if log_line:
            log_line(f"{worker_id}: trial #{record.number} of {owner.name} {state}")
        done[state] = done.get(state, 0) + 1
        idle_since = time.monotonic()
    threads.close()
    return done


__all__ = [
    "DEFAULT_STALE_AFTER", "GuardedWriter", "WorkerStop", "claim_next", "default_checkpoint_root",
    "install_worker_signals", "is_out_of_memory", "make_writers", "run_trial", "train_for", "trial_info",
    "worker_id_for", "worker_loop",
]
