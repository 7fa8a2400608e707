"""The one worker loop: claim, propose, run, heartbeat, resume.

The local pool (:mod:`.local`), the standalone ``tunebook worker``
(:mod:`.worker`) and the Ray executor (:mod:`.ray_executor`) all run trials
through :func:`worker_loop`; they differ only in where it runs, how many
trials it takes (Ray: one per task) and whether it waits for trials running
elsewhere. The loop:

1. claims a pending trial (atomically, in the store); trials whose worker
   stopped heartbeating for ``stale_after`` seconds first go back to pending,
   or to failed once they lost ``max_lost_workers`` workers;
2. nothing pending: asks the study to add its next trial when it grows as it
   runs (:func:`tunebook.proposing.add_next`: a proposing design's point, or the
   replicates of each group's best once the search has finished; numbers, seeds
   and points in one store transaction) — the loop never names a design; while
   trials are still to be added, a worker with nothing to claim waits for the
   running ones instead of leaving;
3. runs the user's training function with a :class:`~tunebook.trial.Trial`
   (its metric buffer heartbeats while it runs; a resumed trial restores its
   latest checkpoint) and records the outcome (:func:`run_trial`):

   - the function returned: ``completed`` with the best objective and its step
     (retrospective selection), or ``failed`` if the objective was never logged;
   - a NaN/Inf, a broken ``infeasible_if`` rule or out of memory: ``infeasible``;
   - any other exception: ``failed``, with the traceback stored;
   - an infrastructure fault, never the training function's: the store became
     unavailable (:class:`~tunebook.errors.StorageUnavailable`: database away,
     disk full), a checkpoint could not be written or read (disk full, I/O
     error), or the training raised ``OSError`` ENOSPC/EIO: the trial goes back
     to ``pending`` with the cause in its ``error`` field (shown by ``tunebook
     status``; if the store does not answer, the loop releases it once it does)
     and the loop retries with backoff (bounded: :data:`INFRA_RETRIES`);
   - the training function killed its worker (``sys.exit``, ``SystemExit`` or
     any other ``BaseException``): a lost worker, as if the process had died:
     ``lost_workers`` grows and the trial goes back to ``pending``, or ends
     ``failed`` with the observed cause after ``max_lost_workers``. A process
     that really died (``os._exit``, a signal) is counted the same way by whoever
     sees it gone: the local executor (the worker's exit code) or the next claim
     on this host (the worker's PID is not alive: :func:`reclaim_dead_workers`),
     else once its heartbeat is ``stale_after`` old;
   - ``KeyboardInterrupt``/``SIGTERM``: the trial goes back to ``pending`` and
     keeps its checkpoints, so the next run resumes it.

Configuration errors (the checkpoint folder is a file or not writable, the
training function does not import, the store cannot be opened) are checked
before any trial is claimed: :class:`~tunebook.errors.ConfigurationError`,
exit 2 (:func:`check_checkpoint_root`, :func:`train_for`).

Extra metric writers (exporters) are made per trial by the ``writers``
factories; they are told how the trial ended once the outcome is stored, and
a failing writer is logged, never the trial's fault.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from tunebook.checkpoints import checkpoint_dir, fault_notes, prune
from tunebook.proposing import add_next, growing_studies
from tunebook.specio import writable_folder
from tunebook.errors import (
    ClaimLost, ConfigurationError, SpecError, StorageUnavailable, TunebookError, exception_line, failure_line,
)
from tunebook.execution.outcome import (
    INFRASTRUCTURE, LOST_WORKER, Outcome, Recorded, WorkerStop, is_out_of_memory, killed_cause, note_signal,
    record_outcome, run_training,
)
from tunebook.storage.base import PENDING, RUNNING, Storage, TrialRecord
from tunebook.study import Study, resolve_train
from tunebook.trial import Params, Trial, TrialThreads
from tunebook.writers import MetricWriter, TrialInfo, WriterFactory

log = logging.getLogger("tunebook.execution")

#: A running trial whose heartbeat is older than this is presumed dead.
DEFAULT_STALE_AFTER = 60.0

#: Infrastructure faults in a row a worker retries (with backoff) before it gives up (exit 3).
INFRA_RETRIES = 8

#: The longest wait between two retries after an infrastructure fault, unless ``$TUNEBOOK_MAX_BACKOFF`` says.
MAX_BACKOFF = 30.0


def max_backoff() -> float:
    """``$TUNEBOOK_MAX_BACKOFF`` (seconds, at least 0.5), else :data:`MAX_BACKOFF`: with the 8 retries, how
    long a worker rides out a store outage before it gives up (about 90 s by default)."""
    text = os.environ.get("TUNEBOOK_MAX_BACKOFF", "").strip()
    if not text:
        return MAX_BACKOFF
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 0.5:
        raise SpecError("TUNEBOOK_MAX_BACKOFF", f"expected seconds (0.5 or more), got {text!r}",
                        "e.g. TUNEBOOK_MAX_BACKOFF=120 to ride out longer outages, or unset it (30)")
    return value


def backoff(n: int, cap: float = MAX_BACKOFF) -> float:
    """The wait after the n-th infrastructure fault in a row: 0.5 s, 1 s, 2 s, ... at most ``cap``."""
    return min(cap, 0.5 * 2 ** max(0, n - 1))


def worker_id_for(pid: int | None = None) -> str:
    return f"{socket.gethostname()}:{pid if pid is not None else os.getpid()}"


def default_checkpoint_root(storage: Storage) -> Path:
    """Beside a SQLite file; under the working directory for a server store."""
    files = storage.local_files()
    return (files[0].parent if files else Path.cwd()) / "tunebook_checkpoints"


def _prune_after(study: Study, record: TrialRecord, root: Path) -> None:
    """Bound the study's checkpoint disk once a trial finished (see :mod:`tunebook.checkpoints.prune`);
    a failure here is logged, never the trial's outcome. A trial that saved nothing costs one stat."""
    if study.keep_top_trials is None or not checkpoint_dir(root, study.storage.store_id, study.name,
                                                            record.number).exists():
        return
    try:
        prune.after_trial(study.storage, study.id, record.id, study.objective[1],
                          prune.KeepPolicy(study.keep_top_trials))
    except (TunebookError, OSError) as exc:
        log.warning("tunebook: could not prune the checkpoints of %s after trial #%d: %s", study.name,
                    record.number, exc)


# --- extra writers -------------------------------------------------------------------


def trial_info(study: Study, record: TrialRecord) -> TrialInfo:
    """What a writer factory is told about the trial it writes for."""
    space = study.space
    roles = {**{k: "fixed" for k in space.fixed}, **{k: "nuisance" for k in space.nuisance},
             **{k: "scientific" for k in space.scientific}}
    from tunebook.storage import redact

    return TrialInfo(
        study=study.name, number=record.number, seed=int(record.seed),
        params={**space.fixed, **record.params}, roles=roles, objective=study.objective,
        goal=study.goal, attempt=record.attempts,
        storage_id=redact(study.storage.url),  # as exports name the store: a later export finds these runs
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
        trial.close_writers(summary)
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
    max_lost_workers: int = 3,
    threads: TrialThreads | None = None,
) -> str:
    """Run one claimed trial to its end; returns the state it ended in ("lost": taken over elsewhere;
    :data:`LOST_WORKER`: the training function killed its worker). ``threads``: the worker's writer and
    heartbeat threads, reused across trials (else the trial starts its own).

    The outcome (:func:`~tunebook.execution.outcome.run_training`) is stored by the one recorder
    (:func:`~tunebook.execution.outcome.record_outcome`) with the trial's last metric points, held
    back at close (converted and checked, not written): a trial ends in one transaction after its claim.
    An interruption or an infrastructure fault is raised once the trial is back to pending."""
    extra = make_writers(writers, trial_info(study, record)) if writers else []
    try:
        trial = Trial(study, record, study.storage, worker_id, checkpoint_root, flush_interval, writers=extra,
                      threads=threads)
    except StorageUnavailable as exc:  # the store went away between the claim and the start
        for writer in extra:
            writer.close()
        raise record_outcome(study, record, worker_id, Outcome(INFRASTRUCTURE, exception_line(exc))).raises from None
    recorded = Recorded("pending", {"state": "pending"})
    try:
        outcome = run_training(train, trial, lambda: trial.close(hold=True))
        params = trial.params  # which hyperparameters it asked for (None: the function replaced the dict)
        used = params.usage(resumed=record.attempts > 1) if isinstance(params, Params) else None
        recorded = record_outcome(study, record, worker_id, outcome, metrics=trial.take_held_metrics(),
                                  params_used=used, objective_logged=trial.objective_logged,
                                  ended=trial.ended(), max_lost_workers=max_lost_workers)
    finally:
        if extra:
            _end(trial, recorded.summary)
    if recorded.raises is not None:
        raise recorded.raises
    return recorded.state


# --- signals ------------------------------------------------------------------------


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    note_signal("SIGTERM")  # the running trial is interrupted, whatever its function does with this
    raise WorkerStop()


def _interrupt_once(signum: int, frame: Any) -> None:
    # A terminal's Ctrl-C reaches every process of the group and the parent
    # forwards it as well: raise once, then let the trial clean up in peace.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    note_signal("SIGINT")
    raise KeyboardInterrupt()


def interrupt_noted(signum: int, frame: Any) -> None:
    """SIGINT in a process that runs trials itself (``workers=0``): Python's own behaviour (each
    Ctrl-C raises ``KeyboardInterrupt``), with the signal noted for the running trial."""
    note_signal("SIGINT")
    raise KeyboardInterrupt()


def end_with_parent(parent_pid: int, signum: int) -> None:
    """Send ``signum`` to this process when its parent ``parent_pid`` is gone: the kernel's parent-death
    signal on Linux, else a watchdog thread polling the parent once a second. A rank takes SIGKILL (it
    never outlives its worker); a local worker SIGTERM (it puts its trial back and stops, instead of
    claiming trials for a run that no longer exists)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signum)  # PR_SET_PDEATHSIG
        if os.getppid() != parent_pid:  # it died before prctl
            os.kill(os.getpid(), signum)
        return
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os.kill(os.getpid(), signum)

    threading.Thread(target=watch, name="tunebook-parent-watchdog", daemon=True).start()


def install_worker_signals() -> None:
    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)


# --- claiming -----------------------------------------------------------------------


def claim_next(
    study: Study | None,
    worker_id: str,
    stale_after: float | None = DEFAULT_STALE_AFTER,
    max_lost_workers: int = 3,
    *,
    storage: Storage | None = None,
) -> TrialRecord | None:
    """Claim the next pending trial of ``study`` (any study of ``storage`` when None); when none is
    pending, a study that grows as it runs adds its next trial first (a proposal, or the replicates of
    each group's best once its search has finished: :func:`tunebook.proposing.add_next`)."""
    store = storage if storage is not None else study.storage  # type: ignore[union-attr]
    scope_id = study.id if study is not None else None
    record = store.claim_trial(worker_id, scope_id, stale_after, max_lost_workers)
    if record is not None:
        return record
    for growing in growing_studies(store, study):
        if add_next(growing) is not None:
            record = store.claim_trial(worker_id, growing.id, stale_after, max_lost_workers)
            if record is not None:
                return record
    return None


def train_for(study: Study) -> Callable[..., Any]:
    """The study's stored training function (``train: module:function``), resolved beside its spec file.

    Raises :class:`ConfigurationError` (one line, exit 2) when it does not import."""
    if not study.train_ref:
        raise ConfigurationError("train", f"study {study.name!r} stores no training function",
                                 "create it from a YAML spec with train: module:function, or pass train=")
    try:
        return resolve_train(study.train_ref, study.train_base_dir())
    except SpecError as exc:
        raise ConfigurationError(exc.field, f"study {study.name!r}: {exc.problem}", exc.fix) from None
    except Exception as exc:  # the module raised at import (a syntax error, a bug)  # noqa: BLE001
        raise ConfigurationError("train", f"study {study.name!r}: importing {study.train_ref!r} raised "
                                 f"{type(exc).__name__}: {failure_line(str(exc))}", "fix the training module") from None
    except BaseException as exc:  # sys.exit at import time
        raise ConfigurationError("train", f"study {study.name!r}: importing {study.train_ref!r} raised "
                                 f"{type(exc).__name__}", "the training module must not exit when imported") from None


def check_checkpoint_root(root: str | os.PathLike[str]) -> Path:
    """The checkpoint folder, created if missing; :class:`ConfigurationError` when it is a file
    or not writable (checked before any trial is claimed)."""
    path = Path(root)
    fix = "pass --checkpoint-dir a writable folder"
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            raise ConfigurationError("checkpoint_dir", f"{str(parent)!r} is a file, not a folder", fix)
        if parent.exists():
            break
    try:
        writable_folder(path)
    except OSError as exc:
        raise ConfigurationError("checkpoint_dir", f"cannot write in {str(path)!r} ({exc.strerror or exc})",
                                 fix) from None
    return path


def worker_is_gone(worker_id: str | None) -> bool:
    """Is ``worker_id`` (``host:pid`` or ``ray:host:pid``) provably dead: this host, no such process?"""
    if not worker_id:
        return False
    wid = worker_id[4:] if worker_id.startswith("ray:") else worker_id
    host, _, pid_text = wid.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid <= 1 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by another user
        return False
    return False


def reclaim_dead_workers(store: Storage, scope: Study | None, max_lost_workers: int = 3) -> int:
    """Running trials whose worker is provably gone (this host, PID not alive) count a lost worker
    now instead of after ``stale_after``: back to pending, or failed after ``max_lost_workers``."""
    if scope is not None:
        running = store.get_trials(scope.id, [RUNNING])
    else:
        running = [t for item in store.study_summaries() if item["counts"].get(RUNNING)
                   for t in store.get_trials(item["study"].id, [RUNNING])]
    done = 0
    for t in running:
        if worker_is_gone(t.worker_id):
            try:
                store.lose_trial(t.id, t.worker_id, f"its worker {t.worker_id} is gone (no such process on this host)",
                                 max_lost_workers)
                done += 1
            except ClaimLost:  # finished or reclaimed meanwhile
                pass
    return done


def _running(store: Storage, scope: Study | None) -> bool:
    if scope is not None:
        return bool(store.get_trials(scope.id, ["running"]))
    return any(item["counts"].get("running") for item in store.study_summaries())


# --- the loop -----------------------------------------------------------------------


def _trains_up_front(store: Storage, scope: Study | None) -> dict[int, tuple[Study, Callable[..., Any]]]:
    """Resolve the training function of every study this worker may claim from, before any claim:
    a worker that cannot import one claims nothing (:class:`ConfigurationError`, exit 2)."""
    if scope is not None:
        return {scope.id: (scope, train_for(scope))}  # type: ignore[dict-item]
    out: dict[int, tuple[Study, Callable[..., Any]]] = {}
    for item in store.study_summaries():
        counts, record = item["counts"], item["study"]
        open_work = counts.get(PENDING) or counts.get(RUNNING) or sum(counts.values()) < record.trials_budget
        if open_work and record.spec.get("train"):
            owner = Study(record, store)
            out[owner.id] = (owner, train_for(owner))  # type: ignore[index]
    return out


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
    infra_retries: int = INFRA_RETRIES,
    sleep: Callable[[float], None] = time.sleep,
    runner: Callable[..., str] | None = None,
) -> dict[str, int]:
    """Claim and run trials until none is left; returns counts by outcome (``retried``: infrastructure
    faults survived; :data:`LOST_WORKER`: trials whose training function killed the worker).

    ``study``: the study to serve, or None for every study of ``storage``.
    ``train``: the training function, or None for each study's stored one.
    Stops when nothing can be claimed, unless ``wait_for_running`` (then only
    once nothing is running either: a dead worker's trial comes back at once
    when its PID is gone on this host, else once stale) or ``wait`` (keep
    polling until idle for ``idle_timeout``). Before the first claim the
    checkpoint folder and the training functions are checked
    (:class:`ConfigurationError`). An infrastructure fault is retried after a
    backoff, ``infra_retries`` times in a row at most; then it is raised.
    ``runner``: what runs one claimed trial (default :func:`run_trial`; a
    multi-process trial's is :func:`tunebook.execution.multiproc.ranks_runner`).
    """
    store = storage if storage is not None else study.storage  # type: ignore[union-attr]
    root = check_checkpoint_root(checkpoint_root if checkpoint_root else default_checkpoint_root(store))
    worker_id = worker_id or worker_id_for()
    known = {study.id: (study, train)} if study is not None and train is not None else (
        _trains_up_front(store, study) if train is None else {})
    done: dict[str, int] = {}
    # One writer and one heartbeat thread for all the trials: stopped when the loop ends (or once dropped).
    threads = TrialThreads(flush_interval) if runner is None else None
    run_one = runner or functools.partial(run_trial, threads=threads)
    idle_since = time.monotonic()
    say = log_line or (lambda line: None)
    release_left_by_faults(store, root)  # trials a worker that gave up could not put back: no lost worker
    faults = _Faults(store, worker_id, infra_retries, sleep, say, fault_notes.reserve(root, store.store_id, worker_id))
    while max_trials is None or sum(v for k, v in done.items() if k != "retried") < max_trials:
        try:
            faults.put_back()
            record = claim_next(study, worker_id, stale_after, max_lost_workers, storage=store)
            if record is None and reclaim_dead_workers(store, study, max_lost_workers):
                record = claim_next(study, worker_id, stale_after, max_lost_workers, storage=store)
            if record is None:
                faults.clear()
                if _work_done(store, study, wait, wait_for_running, idle_timeout, idle_since):
                    break
                # Trials still running elsewhere: if their worker died, they turn stale and come back here.
                sleep(min(poll_interval, stale_after / 2) if stale_after else poll_interval)
                continue
            owner, owner_train = _owner_of(record, study, train, known, store, worker_id)
            say(f"{worker_id}: trial #{record.number} of {owner.name} (attempt {record.attempts})")
            state = run_one(owner, record, owner_train, worker_id, root, flush_interval, writers,
                            max_lost_workers=max_lost_workers)
            faults.clear()
            if state in prune.FINISHED:
                _prune_after(owner, record, root)
        except StorageUnavailable as exc:
            done["retried"] = done.get("retried", 0) + 1
            faults.survive(exc)  # backs off, or gives up (raised)
            continue
        say(f"{worker_id}: trial #{record.number} of {owner.name} {state}")
        done[state] = done.get(state, 0) + 1
        idle_since = time.monotonic()
    if threads is not None:
        threads.close()
    faults.close()
    return done


def release_left_by_faults(store: Storage, root: Path) -> int:
    """Put back the trials a worker left running when it gave up on an infrastructure fault (noted beside
    the checkpoints, :mod:`tunebook.checkpoints.fault_notes`): pending with the fault's cause, no lost
    worker counted. Returns how many notes were settled."""

    def release(trial_id: int, worker: str, cause: str) -> bool:
        try:
            store.release_trial(trial_id, worker, cause)
        except ClaimLost:  # reclaimed or finished meanwhile
            pass
        except TunebookError:  # the store is still away: the note stays for the next worker
            return False
        return True

    return fault_notes.release_noted(root, store.store_id, release, gone=worker_is_gone)


def _work_done(store: Storage, study: Study | None, wait: bool, wait_for_running: bool, idle_timeout: float | None,
               idle_since: float) -> bool:
    """Nothing to claim: is the loop done (idle too long with ``wait``; else nothing pending and, if asked
    with ``wait_for_running`` or trials are still to be added (a replicate phase), nothing running either)?"""
    if wait:
        return idle_timeout is not None and time.monotonic() - idle_since > idle_timeout
    return not (wait_for_running or growing_studies(store, study)) or not _running(store, study)


def _owner_of(record: TrialRecord, study: Study | None, train: Callable[..., Any] | None,
              known: dict[int, tuple[Study, Callable[..., Any]]], store: Storage,
              worker_id: str) -> tuple[Study, Callable[..., Any]]:
    """The study of a claimed trial and its training function (resolved once per study)."""
    if record.study_id not in known:
        owner = study or next(Study(s, store) for s in store.list_studies() if s.id == record.study_id)
        try:
            known[record.study_id] = (owner, train or train_for(owner))
        except ConfigurationError:  # a study created after this worker started: not ours to fail
            store.release_trial(record.id, worker_id)
            raise
    return known[record.study_id]


class _Faults:
    """Infrastructure faults in a row: the backoff between retries, the trial to put back once the
    store answers again, and the give-up after ``retries`` (one line, raised as
    :class:`~tunebook.errors.StorageUnavailable`: exit 3)."""

    def __init__(self, store: Storage, worker_id: str, retries: int, sleep: Callable[[float], None],
                 say: Callable[[str], None], note: fault_notes.Note | None = None) -> None:
        self.store, self.worker_id, self.retries, self.sleep, self.say = store, worker_id, retries, sleep, say
        self.note = note
        self.count = 0
        self.since = 0.0
        self.unreleased: tuple[int, str] | None = None
        self.cap = max_backoff()  # a bad $TUNEBOOK_MAX_BACKOFF is refused before the first claim

    def clear(self) -> None:
        self.count = 0

    def close(self) -> None:
        """The loop ended without giving up: the reserved note goes."""
        if self.note is not None:
            self.note.drop_if_blank()

    def put_back(self) -> None:
        """The trial a fault left running goes back to pending (the store answers again)."""
        if self.unreleased is not None:
            try:
                self.store.release_trial(self.unreleased[0], self.worker_id, self.unreleased[1])
            except ClaimLost:  # already back, or taken over
                pass
            self.unreleased = None

    def _try_put_back(self) -> None:
        try:
            self.put_back()
        except TunebookError:  # still away: it turns stale
            pass

    def survive(self, exc: StorageUnavailable) -> None:
        """Back off before the next try; after ``retries`` faults in a row, give up (raised)."""
        self.count += 1
        if self.count == 1:
            self.since = time.monotonic()
        self.unreleased = getattr(exc, "unreleased", None) or self.unreleased
        if self.count > self.retries:
            self._try_put_back()
            if self.unreleased is not None and self.note is not None:
                self.note.write(*self.unreleased)
            raise StorageUnavailable(
                f"infrastructure fault: gave up after {self.retries} retries in {time.monotonic() - self.since:.0f} s: "
                f"{exception_line(exc)}") from None
        delay = backoff(self.count, self.cap)
        self.say(f"{self.worker_id}: infrastructure fault ({exception_line(exc)}); retrying in {delay:g} s")
        log.warning("tunebook: infrastructure fault, retrying in %g s: %s", delay, exception_line(exc))
        try:
            self.sleep(delay)
        except (KeyboardInterrupt, WorkerStop):  # stopped while waiting: put the trial back if we can
            self._try_put_back()
            raise


__all__ = [
    "DEFAULT_STALE_AFTER", "GuardedWriter", "INFRA_RETRIES", "LOST_WORKER", "MAX_BACKOFF", "WorkerStop", "backoff",
    "end_with_parent", "max_backoff",
    "check_checkpoint_root", "claim_next", "default_checkpoint_root", "install_worker_signals", "interrupt_noted", "is_out_of_memory",
    "killed_cause", "make_writers", "reclaim_dead_workers", "release_left_by_faults", "run_trial", "train_for", "trial_info",
    "worker_id_for", "worker_is_gone", "worker_loop",
]
