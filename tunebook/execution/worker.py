"""A standalone worker: ``tunebook worker --storage postgresql://...`` on any number of machines.

Each worker claims pending trials from the shared store (atomically: no trial
runs twice), runs them with the study's stored training function
(``train: module:function``), and exits when no trial is pending or running
(a running trial whose worker dies comes back to pending once stale), or keeps
polling with ``--wait`` (e.g. to serve studies created later). Before each
claim, trials whose worker stopped heartbeating for ``stale_after`` seconds
go back to pending, so a machine that died never leaves a trial stuck in
"running"; a trial that has lost ``max_lost_workers`` workers is failed.

SIGTERM (what Slurm and Kubernetes send before killing) and Ctrl-C put the
running trial back to pending, with its checkpoints kept for the next worker.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from tunebook.execution._runner import (
    DEFAULT_STALE_AFTER,
    claim_next,
    WorkerStop,
    default_checkpoint_root,
    install_worker_signals,
    run_trial,
    worker_id_for,
)
from tunebook.storage import open_storage
from tunebook.study import Study, load_study, resolve_train


def _train_for(study: Study) -> Callable[..., Any]:
    if not study.train_ref:
        from tunebook._errors import SpecError

        raise SpecError("train", f"study {study.name!r} stores no training function", "create it from a YAML spec with train: module:function")
    config = study.record.config_path
    base = Path(config).resolve().parent if config and Path(config).exists() else Path.cwd()
    return resolve_train(study.train_ref, base)


def _propose(store: Any, scope: Study | None, worker_id: str, stale_after: float, max_lost_workers: int) -> Any:
    """Nothing pending: a bayesian study with budget left proposes its next trial."""
    candidates = [scope] if scope is not None else [
        load_study(s.name, store) for s in store.list_studies() if s.spec.get("design") == "bayesian"
    ]
    for study in candidates:
        if study.design == "bayesian":
            record = claim_next(study, worker_id, stale_after, max_lost_workers)
            if record is not None:
                return record
    return None


def _running(store: Any, scope: Study | None) -> bool:
    if scope is not None:
        return bool(store.get_trials(scope.id, ["running"]))
    return any(item["counts"].get("running") for item in store.study_summaries())


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
    log: Callable[[str], None] = print,
) -> dict[str, int]:
    """Claim and run trials until none is left (or, with ``wait``, until idle for ``idle_timeout``)."""
    store = open_storage(storage)
    scope = load_study(study, store) if study else None
    studies: dict[int, tuple[Study, Callable[..., Any]]] = {}
    root = Path(checkpoint_dir) if checkpoint_dir else default_checkpoint_root(store)
    worker_id = worker_id_for()
    done: dict[str, int] = {}
    idle_since = time.monotonic()
    while max_trials is None or sum(done.values()) < max_trials:
        record = store.claim_trial(worker_id, scope.id if scope else None, stale_after, max_lost_workers)
        if record is None:
            record = _propose(store, scope, worker_id, stale_after, max_lost_workers)
        if record is None:
            if wait:
                if idle_timeout is not None and time.monotonic() - idle_since > idle_timeout:
                    break
            elif not _running(store, scope):
                break  # nothing pending, nothing running: the work is done
            # Trials still running elsewhere: if their worker died, they turn stale and come back here.
            time.sleep(min(poll_interval, stale_after / 2))
            continue
        if record.study_id not in studies:
            owner = scope or next(load_study(s.name, store) for s in store.list_studies() if s.id == record.study_id)
            studies[record.study_id] = (owner, _train_for(owner))
        owner, train = studies[record.study_id]
        log(f"{worker_id}: trial #{record.number} of {owner.name} (attempt {record.attempts})")
        state = run_trial(owner, record, train, worker_id, root)
        log(f"{worker_id}: trial #{record.number} of {owner.name} {state}")
        done[state] = done.get(state, 0) + 1
        idle_since = time.monotonic()
    return done


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
