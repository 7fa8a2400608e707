"""Executors: the local process pool, the standalone worker and Ray, over one worker loop (:mod:`.loop`)."""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from tunebook.errors import SpecError
from tunebook.execution.local import RunResult, run_local
from tunebook.execution.loop import DEFAULT_STALE_AFTER, is_out_of_memory, run_trial, worker_loop
from tunebook.study import Study
from tunebook.writers import WriterFactory

EXECUTORS = ("local", "ray")


def run(
    study: Study,
    train: Callable[..., Any] | None = None,
    *,
    workers: int | None = None,
    devices: Sequence[str | int] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    executor: str = "local",
    writers: Sequence[WriterFactory] = (),
    **options: Any,
) -> RunResult:
    """Run a study's pending trials; resumes an unfinished study.

    ``train`` defaults to the study's stored ``module:function``.
    ``executor="local"``: ``workers`` processes on this machine (default 1;
    ``workers=0`` runs in this process, for debugging); ``devices`` gives one
    accelerator per worker (``CUDA_VISIBLE_DEVICES``).
    ``executor="ray"``: one Ray task per trial, at most ``workers`` at once
    (default: as many as the cluster's resources allow); options ``address``,
    ``cpus_per_trial``, ``gpus_per_trial`` (see :mod:`.ray_executor`).
    ``writers``: factories of extra metric writers (exporters), one writer per
    trial each (see :mod:`tunebook.writers`).
    """
    if executor not in EXECUTORS:
        raise SpecError("executor", f"unknown executor {executor!r}", "use 'local' or 'ray'")
    if train is None:
        if not study.train_ref:
            raise SpecError("train", "the study stores no training function", "pass train=your_function")
        from tunebook.execution.loop import train_for

        train = train_for(study)  # resolved beside the study's spec file, as workers do
    if executor == "ray":
        from tunebook.execution.ray_executor import check_workers, run_ray

        if devices is not None:
            raise SpecError("devices", "the Ray executor places trials on devices itself",
                            "use gpus_per_trial=1 (--gpus-per-trial 1) instead of devices")
        return run_ray(study, train, workers=check_workers(workers), checkpoint_dir=checkpoint_dir,
                       progress=progress, writers=writers, **options)
    return run_local(
        study, train, workers=1 if workers is None else workers, devices=devices, checkpoint_dir=checkpoint_dir,
        progress=progress, writers=writers, **options,
    )


__all__ = ["DEFAULT_STALE_AFTER", "EXECUTORS", "RunResult", "is_out_of_memory", "run", "run_trial", "worker_loop"]
