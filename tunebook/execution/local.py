"""The local executor: ``workers`` processes on this machine, one device each.

Workers are started with ``spawn`` (safe with CUDA and with PyTorch's thread
pools), each with its own ``CUDA_VISIBLE_DEVICES`` entry when ``devices`` is
given and a fair share of the CPU threads. Each claims pending trials from
the store until none is left, so several ``tunebook run`` processes on one
store share the work without running a trial twice; a run whose workers find
nothing to claim waits for the trials still running elsewhere (reclaiming one
whose worker died), so each run ends when the study does.

Ctrl-C (SIGINT) stops cleanly: workers put their running trials back to
``pending`` (checkpoints kept) and exit; anything a worker could not release
is released by the parent. Running the same command again resumes the study.

A worker that dies (``os._exit`` in the training function, a signal, a
traceback) is a lost worker for the trial it ran: the parent records it with
the observed cause ("worker exited with code 3 during the trial"), the trial
goes back to pending (failed after ``max_lost_workers``) and a new worker
takes its place while work is left. Before the first worker starts, trials
left running by a crashed earlier run on this host (dead PIDs) are reclaimed
and the checkpoint folder is checked. :attr:`RunResult.problem` says why a
run did not end well (unfinished study, dead workers): ``tunebook run`` then
exits 1.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from tunebook.errors import ClaimLost, SpecError, StorageUnavailable, exception_line
from tunebook.execution.loop import (
    DEFAULT_STALE_AFTER,
    check_checkpoint_root,
    default_checkpoint_root,
    end_with_parent,
    install_worker_signals,
    interrupt_noted,
    max_backoff,
    reclaim_dead_workers,
    release_left_by_faults,
    worker_id_for,
    worker_loop,
)
from tunebook.execution.outcome import LOST_WORKER, WorkerStop
from tunebook.execution.progress import Reporter
from tunebook.study import Study, load_study
from tunebook.writers import WriterFactory


@dataclass
class RunResult:
    """How a run ended: counts of the study's trials by state, and whether it was interrupted."""

    study: str
    counts: dict[str, int]
    interrupted: bool = False
    worker_exit_codes: list[int | None] = field(default_factory=list)
    #: Trials whose worker was lost during this run (the process died, or the training function exited it).
    lost_workers: int = 0
    #: Infrastructure faults survived (retried) by in-process workers.
    retried: int = 0
    #: The line of a worker that gave up on an infrastructure fault (the run raises it), else None.
    infrastructure: str | None = None

    @property
    def finished(self) -> bool:
        return self.counts.get("pending", 0) == 0 and self.counts.get("running", 0) == 0

    @property
    def problem(self) -> str | None:
        """One line when the run did not end well (``tunebook run`` exits 1), else None."""
        died = [c for c in self.worker_exit_codes if c not in (0, None)]
        parts = []
        if not self.finished:
            parts.append(f"the study is not finished ({self.counts.get('pending', 0)} pending, "
                         f"{self.counts.get('running', 0)} running)")
        if died:
            parts.append(f"{len(died)} worker(s) died (exit codes {', '.join(map(str, died))})")
        if self.lost_workers:
            parts.append(f"{self.lost_workers} trial(s) lost their worker (see `tunebook status`)")
        return "; ".join(parts) or None


def _worker_main(
    storage_url: str,
    study_name: str,
    train: Callable[..., Any],
    checkpoint_root: str,
    stale_after: float | None,
    flush_interval: float,
    writers: Sequence[WriterFactory] = (),
    max_lost_workers: int = 3,
    nproc_per_trial: int = 1,
    faults: Any = None,
    parent_pid: int = 0,
) -> None:
    install_worker_signals()
    if parent_pid:  # a worker never outlives its run: it puts its trial back and stops (SIGTERM)
        end_with_parent(parent_pid, signal.SIGTERM)
    from tunebook.execution.multiproc import ranks_runner
    from tunebook.storage import open_storage

    study = load_study(study_name, open_storage(storage_url))
    try:
        done = worker_loop(study, train, checkpoint_root, stale_after=stale_after, flush_interval=flush_interval,
                           writers=writers, max_lost_workers=max_lost_workers, wait_for_running=True,
                           runner=ranks_runner(nproc_per_trial, max_lost_workers))
    except KeyboardInterrupt:
        sys.exit(130)
    except WorkerStop:  # SIGTERM
        sys.exit(143)
    except StorageUnavailable as exc:  # gave up after INFRA_RETRIES: one line for the run, no traceback
        if faults is not None:
            faults.put((os.getpid(), EXIT_INFRASTRUCTURE, exception_line(exc)))
        sys.exit(EXIT_INFRASTRUCTURE)
    if done.get(LOST_WORKER):  # the training function exited this worker (caught): the parent must know
        if faults is not None:
            faults.put((os.getpid(), EXIT_LOST_WORKER, ""))
        sys.exit(EXIT_LOST_WORKER)


#: A worker's exit code when a trial's training function tried to exit it (the trial counted a lost worker).
#: The parent believes the code only with the worker's own report on the run's queue: a training function
#: that calls ``os._exit(3)`` or ``os._exit(75)`` is a lost worker like any other death.
EXIT_LOST_WORKER = 75
#: A worker's exit code when it gave up on an infrastructure fault (the CLI's code for one).
EXIT_INFRASTRUCTURE = 3


@contextmanager
def _noting_sigint() -> Iterator[None]:
    """While trials run in this process: Ctrl-C is noted for the running trial (a training function
    that catches ``KeyboardInterrupt`` and returns is still interrupted), then raised as usual."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield  # a handler of the caller's own (or not the main thread): left as it is
        return
    previous = signal.signal(signal.SIGINT, interrupt_noted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _child_environment(device: str | None, threads: int) -> Iterator[None]:
    """Environment a spawned child inherits at start(): its device and thread share."""
    saved = dict(os.environ)
    try:
        if device is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = str(device)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, str(threads))
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_local(
    study: Study,
    train: Callable[..., Any],
    *,
    workers: int = 1,
    devices: Sequence[str | int] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    stale_after: float | None = DEFAULT_STALE_AFTER,
    flush_interval: float = 1.0,
    stop_grace: float = 60.0,
    writers: Sequence[WriterFactory] = (),
    max_lost_workers: int = 3,
    nproc_per_trial: int = 1,
) -> RunResult:
    """Run the study's pending trials; see the module docstring.

    ``nproc_per_trial`` > 1: each trial runs as that many processes (:mod:`.multiproc`);
    ``devices`` then gives ``nproc_per_trial`` devices per worker, in order.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise SpecError("workers", f"expected a non-negative integer, got {workers!r}", "e.g. --workers 2")
    from tunebook.execution.multiproc import check_nproc, ranks_runner

    per = check_nproc(nproc_per_trial)
    max_backoff()  # a bad $TUNEBOOK_MAX_BACKOFF: one line before any worker starts
    if devices is not None:
        devices = [str(d) for d in devices]
        if workers and len(devices) != workers * per:
            raise SpecError("devices", f"{len(devices)} devices for {workers} workers of {per} processes",
                            f"give {per} device(s) per worker ({workers * per} in all)")
        devices = [",".join(devices[i:i + per]) for i in range(0, len(devices), per)]  # one entry per worker
    checkpoint_root = str(check_checkpoint_root(checkpoint_dir or default_checkpoint_root(study.storage)))
    # Trials left running by a worker that gave up on a fault (noted beside the checkpoints): put back as
    # they are; then those of a crashed earlier run on this host: their workers are provably gone.
    release_left_by_faults(study.storage, Path(checkpoint_root))
    reclaim_dead_workers(study.storage, study, max_lost_workers)
    reporter = Reporter(study, progress)
    if workers == 0:  # in this process: for debugging and notebooks
        try:
            with _noting_sigint():
                done = worker_loop(study, train, checkpoint_root, stale_after=stale_after, wait_for_running=True,
                                   flush_interval=flush_interval, writers=writers, max_lost_workers=max_lost_workers,
                                   runner=ranks_runner(per, max_lost_workers))
        except KeyboardInterrupt:
            return RunResult(study.name, reporter.update(), interrupted=True)
        finally:
            reporter.close()
        return RunResult(study.name, reporter.update(), lost_workers=done.get(LOST_WORKER, 0),
                         retried=done.get("retried", 0))

    args = (study.storage.url, study.name, train, checkpoint_root, stale_after, flush_interval, tuple(writers),
            max_lost_workers, per)
    return _Pool(study, args, workers, devices, max_lost_workers).run(reporter, stop_grace)


class _Pool:
    """The worker processes of one run: started, replaced when one dies while work is left (its trial
    counted a lost worker), stopped on Ctrl-C. A worker that gives up on an infrastructure fault
    (:data:`EXIT_INFRASTRUCTURE`) is not replaced and blames no trial: the run ends with its line."""

    def __init__(self, study: Study, args: tuple[Any, ...], workers: int, devices: Sequence[str] | None,
                 max_lost_workers: int) -> None:
        self.study, self.workers, self.devices, self.max_lost_workers = study, workers, devices, max_lost_workers
        self.ctx = mp.get_context("spawn")
        # (pid, exit code, line) of each worker that ended on its own account: it gave up on an infrastructure
        # fault, or it caught its training function exiting it (and counted that trial)
        self.faults = self.ctx.SimpleQueue()
        self.reports: dict[int, tuple[int, str]] = {}
        self.args = (*args, self.faults, os.getpid())
        self.threads = max(1, (os.cpu_count() or 1) // workers)
        self.procs: list[Any] = []  # every worker started, replacements included
        self.lost = 0
        self.deaths_in_a_row = 0  # deaths that lost no trial: a worker that cannot even start is not restarted forever
        self.seen: set[int] = set()  # pids of dead workers already accounted for

    def start(self, index: int) -> Any:
        device = self.devices[index] if self.devices else None
        proc = self.ctx.Process(target=_worker_main, args=self.args, name=f"tunebook-worker-{index}")
        with _child_environment(device, self.threads):
            proc.start()
        self.procs.append(proc)
        return proc

    def run(self, reporter: Reporter, stop_grace: float) -> RunResult:
        slots = [self.start(index) for index in range(self.workers)]
        interrupted = False
        previous = _sigterm_as_interrupt()
        try:
            while any(p.is_alive() for p in slots):
                _update(reporter)
                for index, p in enumerate(slots):
                    p.join(timeout=0.5 / self.workers)
                    if self._ended(p) and self._replace(p) and _work_left(self.study):
                        slots[index] = self.start(index)  # a replacement takes the dead worker's place
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (a scheduler's stop): the workers put their trials back
            interrupted = True
            _stop_workers(slots, stop_grace)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            reporter.close()
            # A worker that died (or was killed, or gave up) cannot release its own trial.
            try:
                self.study.storage.release_worker_trials(worker_id_for(p.pid) for p in self.procs if p.exitcode != 0)
            except StorageUnavailable:  # the trials turn stale and come back
                pass
        counts = _update(reporter) or self.study.counts()
        self._read_reports()
        faults = [line for code, line in self.reports.values() if code == EXIT_INFRASTRUCTURE]
        return RunResult(self.study.name, counts, interrupted, [p.exitcode for p in self.procs], lost_workers=self.lost,
                         infrastructure=faults[0] if faults else None)

    def _ended(self, p: Any) -> bool:
        """Has ``p`` ended badly, not yet accounted for?"""
        if p.is_alive() or p.exitcode in (0, None) or p.pid in self.seen:
            return False
        self.seen.add(p.pid)
        return True

    def _read_reports(self) -> None:
        while not self.faults.empty():
            pid, code, line = self.faults.get()
            self.reports[pid] = (code, line)

    def _replace(self, p: Any) -> bool:
        """Account for a worker that ended badly; should it be replaced?"""
        self._read_reports()  # a worker reports before it exits: its report is in the pipe by now
        reported = self.reports.get(p.pid, (None, ""))[0]
        if reported == p.exitcode == EXIT_INFRASTRUCTURE:
            return False  # it retried INFRA_RETRIES times: the store or the disk is away, not the trial's fault
        if reported == p.exitcode == EXIT_LOST_WORKER:
            self.lost += 1  # its trial is already counted (the worker caught the exit)
            return False
        n = _lose_worker_trials(self.study, worker_id_for(p.pid), _death_cause(p.exitcode), self.max_lost_workers)
        self.lost += n
        self.deaths_in_a_row = 0 if n else self.deaths_in_a_row + 1
        return self.deaths_in_a_row < 3


def _update(reporter: Reporter) -> dict[str, int] | None:
    """The reporter's counts; None while the store is away (the workers retry; so does the next update)."""
    try:
        return reporter.update()
    except StorageUnavailable:
        return None


def _death_cause(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"worker was killed by {name} during the trial"
    return f"worker exited with code {code} during the trial"


def _lose_worker_trials(study: Study, worker_id: str, cause: str, max_lost_workers: int) -> int:
    """Count a lost worker for the trials ``worker_id`` still ran; returns how many."""
    lost = 0
    try:
        for t in study.storage.get_trials(study.id, ["running"]):
            if t.worker_id == worker_id:
                try:
                    study.storage.lose_trial(t.id, worker_id, cause, max_lost_workers)
                    lost += 1
                except ClaimLost:
                    pass
    except StorageUnavailable:  # the trial turns stale and comes back
        pass
    return lost


def _work_left(study: Study) -> bool:
    try:
        counts = study.counts()
    except StorageUnavailable:
        return True
    return bool(counts.get("pending")) or sum(counts.values()) < study.trials_budget


def _sigterm_as_interrupt() -> Any:
    """In the run's parent, SIGTERM stops the run as Ctrl-C does (before, the parent died alone and its
    workers went on claiming trials); returns the handler to restore, None off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the workers are being stopped
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, stop)


def _stop_workers(procs: list[Any], grace: float) -> None:
    # Ignore further Ctrl-C in the parent while the workers put their trials back.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGINT)
        deadline = time.monotonic() + grace
        for p in procs:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
    finally:
        signal.signal(signal.SIGINT, previous)
