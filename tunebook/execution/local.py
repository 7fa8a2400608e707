"""The local executor: ``workers`` processes on this machine, one device each.

Workers are started with ``spawn`` (safe with CUDA and with PyTorch's thread
pools), each with its own ``CUDA_VISIBLE_DEVICES`` entry when ``devices`` is
given and a fair share of the CPU threads. Each claims pending trials from
the store until none is left, so several ``tunebook run`` processes on one
store share the work without running a trial twice.

Ctrl-C (SIGINT) stops cleanly: workers put their running trials back to
``pending`` (checkpoints kept) and exit; anything a worker could not release
is released by the parent. Running the same command again resumes the study.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from tunebook.errors import SpecError
from tunebook.execution.loop import (
    DEFAULT_STALE_AFTER,
    WorkerStop,
    default_checkpoint_root,
    install_worker_signals,
    worker_id_for,
    worker_loop,
)
from tunebook.study import Study, load_study
from tunebook.writers import WriterFactory


@dataclass
class RunResult:
    """How a run ended: counts of the study's trials by state, and whether it was interrupted."""

    study: str
    counts: dict[str, int]
    interrupted: bool = False
    worker_exit_codes: list[int | None] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.counts.get("pending", 0) == 0 and self.counts.get("running", 0) == 0


def _worker_main(
    storage_url: str,
    study_name: str,
    train: Callable[..., Any],
    checkpoint_root: str,
    stale_after: float | None,
    flush_interval: float,
    writers: Sequence[WriterFactory] = (),
    nproc_per_trial: int = 1,
) -> None:
    install_worker_signals()
    from tunebook.execution.multiproc import ranks_runner
    from tunebook.storage import open_storage

    study = load_study(study_name, open_storage(storage_url))
    try:
        worker_loop(study, train, checkpoint_root, stale_after=stale_after, flush_interval=flush_interval,
                    writers=writers, runner=ranks_runner(nproc_per_trial))
    except KeyboardInterrupt:
        sys.exit(130)
    except WorkerStop:  # SIGTERM
        sys.exit(143)


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


class Reporter:
    """Progress on the terminal: a rich bar on a TTY, a line per change elsewhere."""

    def __init__(self, study: Study, enabled: bool) -> None:
        self.study, self.enabled = study, enabled
        self.last: tuple[Any, ...] | None = None
        self.progress = None
        if enabled and sys.stdout.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
            )
            self.task = self.progress.add_task(study.name, total=study.trials_budget, detail="")
            self.progress.start()

    def update(self) -> dict[str, int]:
        counts = self.study.counts()
        if not self.enabled:
            return counts
        best = self.study.best_trial()
        metric = self.study.objective[0]
        best_text = f"best {metric}={best.value:.4g} (#{best.number})" if best else "best -"
        detail = (
            f"completed {counts['completed']}  infeasible {counts['infeasible']}  "
            f"failed {counts['failed']}  running {counts['running']}  {best_text}"
        )
        finished = counts["completed"] + counts["infeasible"] + counts["failed"]
        if self.progress is not None:
            self.progress.update(self.task, completed=finished, total=sum(counts.values()), detail=detail)
        elif (finished, detail) != self.last:
            print(f"[{finished}/{sum(counts.values())}] {self.study.name}: {detail}", flush=True)
            self.last = (finished, detail)
        return counts

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


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
    if devices is not None:
        devices = [str(d) for d in devices]
        if workers and len(devices) != workers * per:
            raise SpecError("devices", f"{len(devices)} devices for {workers} workers of {per} processes",
                            f"give {per} device(s) per worker ({workers * per} in all)")
        devices = [",".join(devices[i:i + per]) for i in range(0, len(devices), per)]  # one entry per worker
    checkpoint_root = str(checkpoint_dir or default_checkpoint_root(study.storage))
    reporter = Reporter(study, progress)
    if workers == 0:  # in this process: for debugging and notebooks
        try:
            worker_loop(study, train, checkpoint_root, stale_after=stale_after, flush_interval=flush_interval,
                        writers=writers, runner=ranks_runner(per))
        except KeyboardInterrupt:
            return RunResult(study.name, reporter.update(), interrupted=True)
        finally:
            reporter.close()
        return RunResult(study.name, reporter.update())

    ctx = mp.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // workers)
    procs = []
    for index in range(workers):
        device = devices[index] if devices else None
        proc = ctx.Process(
            target=_worker_main,
            args=(study.storage.url, study.name, train, checkpoint_root, stale_after, flush_interval, tuple(writers),
                  per),
            name=f"tunebook-worker-{index}",
        )
        with _child_environment(device, threads):
            proc.start()
        procs.append(proc)

    interrupted = False
    try:
        while any(p.is_alive() for p in procs):
            reporter.update()
            for p in procs:
                p.join(timeout=0.5 / workers)
    except KeyboardInterrupt:
        interrupted = True
        _stop_workers(procs, stop_grace)
    finally:
        reporter.close()
        # A worker that died (or was killed) cannot release its own trial.
        study.storage.release_worker_trials(worker_id_for(p.pid) for p in procs if p.exitcode != 0)
    counts = reporter.update()
    return RunResult(study.name, counts, interrupted, [p.exitcode for p in procs])


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


_Reporter = Reporter  # old private name
