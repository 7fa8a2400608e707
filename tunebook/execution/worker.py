"""A standalone worker: ``tunebook worker --storage postgresql://...`` on any number of machines.

Each worker claims pending trials from the shared store (atomically: no trial
runs twice), runs them with the study's stored training function
(``train: module:function``), and exits when no trial is pending or running
(a running trial whose worker dies comes back to pending once stale), or keeps
polling with ``--wait`` (e.g. to serve studies created later). Before each
claim, trials whose worker stopped heartbeating for ``stale_after`` seconds
go back to pending, so a machine that died never leaves a trial stuck in
"running"; a trial that has lost ``max_lost_workers`` workers is failed.
It runs :func:`tunebook.execution.loop.worker_loop`, the loop every executor shares.

SIGTERM (what Slurm and Kubernetes send before killing) and Ctrl-C put the
running trial back to pending, with its checkpoints kept for the next worker.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Sequence

from tunebook.execution.loop import DEFAULT_STALE_AFTER, install_worker_signals, worker_loop
from tunebook.execution.outcome import WorkerStop
from tunebook.storage import open_storage
from tunebook.study import load_study
from tunebook.writers import WriterFactory


def run_worker(
    storage: str | None = None,
    *,
    study: str | None = None,
    wait: bool = False,
    poll_interval: float = 2.0,
    idle_timeout: float | None = None,
    max_trials: int | None = None,
    stale_after: float = DEFAULT_STALE_AFTER,
    max_lost_workers: int = 3,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    writers: Sequence[WriterFactory] = (),
    log: Callable[[str], None] = print,
    nproc_per_trial: int = 1,
) -> dict[str, int]:
    """Claim and run trials until none is left (or, with ``wait``, until idle for ``idle_timeout``).

    ``nproc_per_trial`` > 1: each trial runs as that many processes (:mod:`.multiproc`).
    """
    from tunebook.execution.multiproc import check_nproc, ranks_runner

    check_nproc(nproc_per_trial)
    store = open_storage(storage)
    scope = load_study(study, store) if study else None
    return worker_loop(
        scope, None, checkpoint_dir, storage=store, max_trials=max_trials, stale_after=stale_after,
        max_lost_workers=max_lost_workers, writers=writers, wait_for_running=True, wait=wait,
        poll_interval=poll_interval, idle_timeout=idle_timeout, log_line=log, runner=ranks_runner(nproc_per_trial, max_lost_workers),
    )


def main_worker(**kwargs: Any) -> int:
    """The CLI's entry: worker signals, then :func:`run_worker`; exit 130/143 when stopped."""
    install_worker_signals()
    try:
        done = run_worker(**kwargs)
    except KeyboardInterrupt:
        print("interrupted: the running trial went back to pending", file=sys.stderr)
        return 130
    except WorkerStop:
        print("stopped (SIGTERM): the running trial went back to pending", file=sys.stderr)
        return 143
    print(f"worker done: {', '.join(f'{v} {k}' for k, v in sorted(done.items())) or 'no trial to run'}")
    return 0
