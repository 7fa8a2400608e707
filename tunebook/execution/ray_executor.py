"""The Ray executor: one Ray task per trial, with the resources you ask for.

``run_ray(study, train, address=..., cpus_per_trial=C, gpus_per_trial=G, workers=N)``
submits one task per pending trial to a Ray cluster (``address=None`` starts
a local one), at most ``N`` at a time when ``workers`` is given (otherwise as
many as the cluster's resources allow). Each task runs the shared worker loop
(:func:`tunebook.execution.loop.worker_loop`) for one trial: it claims a trial
from the store itself (or has the study's design propose one), so Ray tasks,
``tunebook worker`` processes and local runs can share one study without a
trial running twice. Ray gives a task with ``num_gpus`` its own
``CUDA_VISIBLE_DEVICES``.

The store must be reachable from every node: PostgreSQL for a cluster. A
SQLite file is accepted only while the Ray cluster is this one machine.

If a task's worker dies, its trial stops heartbeating; the next round of
tasks puts it back to pending and resumes it from its latest checkpoint: at
once when the worker ran on this host and its PID is gone, else once its
heartbeat is ``stale_after`` old (the driver waits that long for it, never
returning with the trial left running).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from tunebook.proposing import grows
from tunebook.errors import MissingExtraError, SpecError
from tunebook.execution.loop import (
    DEFAULT_STALE_AFTER, default_checkpoint_root, reclaim_dead_workers, worker_id_for, worker_loop,
)
from tunebook.execution.local import RunResult
from tunebook.execution.progress import Reporter
from tunebook.study import Study
from tunebook.writers import WriterFactory


def import_ray() -> Any:
    """The ``ray`` module, or :class:`MissingExtraError` naming the extra."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "ray", "--executor ray") from None
    return ray


def _one_trial(storage_url: str, study_name: str, train: Callable[..., Any], checkpoint_root: str,
               stale_after: float, max_lost_workers: int, writers: Sequence[WriterFactory] = ()) -> str | None:
    """The body of a Ray task: the shared worker loop, for one trial of the study."""
    from tunebook.storage import open_storage
    from tunebook.study import load_study

    study = load_study(study_name, open_storage(storage_url))
    done = worker_loop(study, train, checkpoint_root, worker_id=f"ray:{worker_id_for()}", max_trials=1,
                       stale_after=stale_after, max_lost_workers=max_lost_workers, writers=writers)
    return next(iter(done), None)


def check_workers(workers: Any) -> int | None:
    """``workers`` for the Ray executor: None (as many tasks as the cluster runs) or a positive integer."""
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SpecError("workers", f"the Ray executor takes a positive number of concurrent tasks, got {workers!r}",
                        "e.g. workers=4, or leave it out to use the whole cluster")
    return workers


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


def check_storage_for_cluster(local_files: Sequence[Path], nodes: list[dict[str, Any]]) -> None:
    """Refuse a store that keeps files on this machine (``local_files``: SQLite's) unless every alive
    Ray node is this machine."""
    if not local_files:
        return
    alive = [n for n in nodes if n.get("Alive", True)]
    if len(alive) > 1 or not all(_is_local(n.get("NodeManagerAddress")) for n in alive):
        raise SpecError(
            "storage",
            f"a SQLite file cannot be shared by the {len(alive)} nodes of this Ray cluster",
            "use a PostgreSQL store (--storage postgresql://user:password@host/db) reachable from every node",
        )


def _to_submit(study: Study, counts: dict[str, int], limit: int | None, in_flight: int) -> int:
    """How many tasks to submit now: one per pending trial (and, for a study whose trials are added as
    it runs, per trial still in the budget), at most ``limit`` in flight. A task that finds nothing to
    claim returns at once: submitting a few too many is harmless."""
    pending = counts["pending"]
    if grows(study, counts):  # trials still in the budget, or a length-probe decision (one task makes it)
        pending += max(0, study.trials_budget - sum(counts.values())) or 1
    room = (limit if limit is not None else max(pending, 1)) - in_flight
    unclaimed = max(0, in_flight - counts["running"])  # submitted, not running yet
    return max(0, min(room, pending - unclaimed))


def _cancel(ray: Any, in_flight: list[Any]) -> None:
    """Ctrl-C: a KeyboardInterrupt in each task (its trial goes back to pending), then wait for them."""
    for ref in in_flight:
        ray.cancel(ref)
    for ref in in_flight:
        try:
            ray.get(ref, timeout=60)
        except Exception:  # cancelled, or already finished  # noqa: BLE001
            pass


def run_ray(
    study: Study,
    train: Callable[..., Any],
    *,
    address: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    workers: int | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    stale_after: float = DEFAULT_STALE_AFTER,
    max_lost_workers: int = 3,
    max_rounds: int = 10,
    writers: Sequence[WriterFactory] = (),
) -> RunResult:
    """Run the study's pending trials as Ray tasks (at most ``workers`` at once); see the module docstring.

    ``max_rounds``: how many times to wait for trials running elsewhere (or
    whose worker died and is not yet stale) before returning.
    """
    if cpus_per_trial <= 0 or gpus_per_trial < 0:
        raise SpecError("--cpus-per-trial", "must be positive (and --gpus-per-trial 0 or more)", "e.g. --cpus-per-trial 1")
    limit = check_workers(workers)
    ray = import_ray()
    started_here = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, logging_level="warning", log_to_driver=True)
        started_here = True
    try:
        check_storage_for_cluster(study.storage.local_files(), ray.nodes())
        checkpoint_root = str(checkpoint_dir or default_checkpoint_root(study.storage))
        _ship_by_value(train)
        task = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0)(_one_trial)
        reporter = Reporter(study, progress)
        interrupted = False
        in_flight: list[Any] = []
        idle_rounds = 0
        try:
            # Wait long enough for a dead worker's trial to turn stale: never return with it left running.
            max_rounds = max(max_rounds, int(stale_after // 5.0) + 2)
            while True:
                study.storage.requeue_stale(stale_after, study.id, max_lost_workers)
                reclaim_dead_workers(study.storage, study, max_lost_workers)
                counts = study.counts()
                submit = _to_submit(study, counts, limit, len(in_flight))
                in_flight += [task.remote(study.storage.url, study.name, train, checkpoint_root, stale_after,
                                          max_lost_workers, tuple(writers)) for _ in range(submit)]
                if not in_flight:
                    if counts["running"] == 0 or idle_rounds >= max_rounds:
                        break
                    idle_rounds += 1
                    time.sleep(min(stale_after, 5.0))  # running elsewhere, or a dead worker not yet stale
                    continue
                done, in_flight = ray.wait(in_flight, num_returns=1, timeout=0.5)
                reporter.update()
                for ref in done:
                    try:
                        ray.get(ref)
                    except ray.exceptions.RayError:  # a dead worker: its trial is re-queued once stale
                        pass
        except KeyboardInterrupt:
            interrupted = True
            _cancel(ray, in_flight)
        finally:
            reporter.close()
        return RunResult(study.name, reporter.update(), interrupted)
    finally:
        if started_here:
            ray.shutdown()
