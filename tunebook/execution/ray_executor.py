"""The Ray executor: one Ray task per trial, with the resources you ask for.

``run_ray(study, train, address=..., cpus_per_trial=C, gpus_per_trial=G)``
submits one task per pending trial to a Ray cluster (``address=None`` starts
a local one). Each task claims a trial from the store itself, so Ray tasks,
``tunebook worker`` processes and local runs can share one study without a
trial running twice. Ray gives a task with ``num_gpus`` its own
``CUDA_VISIBLE_DEVICES``.

The store must be reachable from every node: PostgreSQL for a cluster. A
SQLite file is accepted only while the Ray cluster is this one machine.

If a task's worker dies, its trial stops heartbeating; the next round of
tasks puts it back to pending and resumes it from its latest checkpoint.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable

from tunebook._errors import MissingExtraError, SpecError
from tunebook.execution._runner import DEFAULT_STALE_AFTER, claim_next, default_checkpoint_root, run_trial, worker_id_for
from tunebook.execution.local import RunResult, _Reporter
from tunebook.study import Study


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "ray", "--executor ray") from None
    return ray


def _one_trial(storage_url: str, study_name: str, train: Callable[..., Any], checkpoint_root: str,
               stale_after: float, max_lost_workers: int) -> str | None:
    """The body of a Ray task: claim one trial of the study and run it."""
    from tunebook.storage import open_storage
    from tunebook.study import load_study

    store = open_storage(storage_url)
    study = load_study(study_name, store)
    worker_id = f"ray:{worker_id_for()}"
    record = claim_next(study, worker_id, stale_after, max_lost_workers)
    if record is None:
        return None
    return run_trial(study, record, train, worker_id, checkpoint_root)


def _ship_by_value(train: Callable[..., Any]) -> None:
    """A training function from a script or a ``file.py:function`` spec is not importable on
    the cluster's workers: send its module's code with it instead of a reference."""
    import sys

    module = sys.modules.get(getattr(train, "__module__", ""), None)
    if module is None:
        return
    if module.__name__ == "__main__" or getattr(module, "__tunebook_file__", False):
        from ray import cloudpickle  # Ray's own copy serializes its tasks

        cloudpickle.register_pickle_by_value(module)


def _is_local(address: str | None) -> bool:
    """Is ``address`` one of this machine's interfaces? (Only local addresses can be bound.)"""
    if not address:
        return False
    try:
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False


def check_storage_for_cluster(storage_url: str, nodes: list[dict[str, Any]]) -> None:
    """Refuse a SQLite store unless every alive Ray node is this machine."""
    if not storage_url.startswith("sqlite"):
        return
    alive = [n for n in nodes if n.get("Alive", True)]
    if len(alive) > 1 or not all(_is_local(n.get("NodeManagerAddress")) for n in alive):
        raise SpecError(
            "storage",
            f"a SQLite file cannot be shared by the {len(alive)} nodes of this Ray cluster",
            "use a PostgreSQL store (--storage postgresql://user:password@host/db) reachable from every node",
        )


def run_ray(
    study: Study,
    train: Callable[..., Any],
    *,
    address: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    stale_after: float = DEFAULT_STALE_AFTER,
    max_lost_workers: int = 3,
    max_rounds: int = 10,
) -> RunResult:
    """Run the study's pending trials as Ray tasks; see the module docstring."""
    if cpus_per_trial <= 0 or gpus_per_trial < 0:
        raise SpecError("--cpus-per-trial", "must be positive (and --gpus-per-trial 0 or more)", "e.g. --cpus-per-trial 1")
    ray = _import_ray()
    started_here = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, logging_level="warning", log_to_driver=True)
        started_here = True
    try:
        check_storage_for_cluster(study.storage.url, ray.nodes())
        checkpoint_root = str(checkpoint_dir or default_checkpoint_root(study.storage))
        _ship_by_value(train)
        task = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0)(_one_trial)
        reporter = _Reporter(study, progress)
        interrupted = False
        refs: list[Any] = []
        try:
            for _ in range(max_rounds):
                study.storage.requeue_stale(stale_after, study.id, max_lost_workers)
                counts = study.counts()
                pending = counts["pending"]
                if study.design == "bayesian":  # proposed as it runs: one task per trial still in the budget
                    pending += max(0, study.trials_budget - sum(counts.values()))
                if pending == 0:
                    if study.counts()["running"] == 0:
                        break
                    time.sleep(min(stale_after, 5.0))  # running elsewhere, or a dead worker not yet stale
                    continue
                refs = [task.remote(study.storage.url, study.name, train, checkpoint_root, stale_after, max_lost_workers)
                        for _ in range(pending)]
                waiting = list(refs)
                while waiting:
                    _, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=0.5)
                    reporter.update()
                for ref in refs:
                    try:
                        ray.get(ref)
                    except ray.exceptions.RayError:  # a dead worker: its trial is re-queued once stale
                        pass
        except KeyboardInterrupt:
            interrupted = True
            for ref in refs:
                ray.cancel(ref)  # KeyboardInterrupt in the task: the trial goes back to pending
            for ref in refs:
                try:
                    ray.get(ref, timeout=60)
                except Exception:  # cancelled, or already finished  # noqa: BLE001
                    pass
        finally:
            reporter.close()
        return RunResult(study.name, reporter.update(), interrupted)
    finally:
        if started_here:
            ray.shutdown()
