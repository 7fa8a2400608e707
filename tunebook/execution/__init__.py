"""Executors: the local process pool, the standalone worker and Ray, over one worker loop (:mod:`.loop`)."""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from tunebook.errors import SpecError, StorageUnavailable
from tunebook.execution.local import RunResult, run_local
from tunebook.execution.loop import DEFAULT_STALE_AFTER, run_trial, worker_loop
from tunebook.execution.outcome import is_out_of_memory
from tunebook.study import Study
from tunebook.writers import WriterFactory

EXECUTORS = ("local", "ray")


def run(
    study: Study,
    train: Callable[..., Any] | str | None = None,
    *,
    workers: int | None = None,
    devices: Sequence[str | int] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    executor: str = "local",
    writers: Sequence[WriterFactory] = (),
    retry_failed: bool = False,
    nproc_per_trial: int = 1,
    **options: Any,
) -> RunResult:
    """Run a study's pending trials; resumes an unfinished study.

    ``train``: a function, or its ``"module:function"`` (as in a spec); default: the study's stored one.
    ``executor="local"``: ``workers`` processes on this machine (default 1;
    ``workers=0`` runs in this process, for debugging); ``devices`` gives one
    accelerator per worker (``CUDA_VISIBLE_DEVICES``).
    ``executor="ray"``: one Ray task per trial, at most ``workers`` at once
    (default: as many as the cluster's resources allow); options ``address``,
    ``cpus_per_trial``, ``gpus_per_trial`` (see :mod:`.ray_executor`).
    ``writers``: factories of extra metric writers (exporters), one writer per
    trial each (see :mod:`tunebook.writers`).
    ``retry_failed=True`` first puts the study's failed trials back to pending
    (their attempts stay counted; infeasible trials stay data).
    With ``progress``, ends by printing the summary `tunebook run` prints.
    Interrupted (Ctrl-C, SIGTERM): the running trials go back to pending, the
    summary and an ``interrupted:`` line are printed, then ``KeyboardInterrupt``
    is raised (a script never goes on with a half-finished study). A worker that
    gave up on an infrastructure fault (the store or the disk away through
    ``INFRA_RETRIES`` retries) makes it raise
    :class:`~tunebook.errors.StorageUnavailable` (exit 3), with no trial blamed.
    A ``train`` given to a study that stores none is recorded with it when it
    can be imported again, so the CLI's procedures can run its derived studies.
    ``nproc_per_trial``: each trial runs as that many processes with
    torch.distributed's environment, like torchrun (see :mod:`.multiproc`).
    """
    from tunebook.execution.progress import fit
    from tunebook.study import outcome_lines, record_train, resolve_train

    if executor not in EXECUTORS:
        raise SpecError("executor", f"unknown executor {executor!r}", "use 'local' or 'ray'")
    if isinstance(train, str):  # "module:function" or "path/to/file.py:function", as in a spec
        train = resolve_train(train)
    elif train is not None and not callable(train):
        raise SpecError("train", f"expected a function or 'module:function', got {train!r}",
                        "pass train=your_function, or train='package.module:function'")
    if train is None:
        if not study.train_ref:
            raise SpecError("train", f"study {study.name!r} stores no training function",
                            "pass train=your_function (a module-level function is then recorded with the study)")
        train = resolve_train(study.train_ref, study.train_base_dir())
    else:
        record_train(study, train)
    if retry_failed:
        study.storage.retry_failed(study.id)
    result = _execute(study, train, workers=workers, devices=devices, checkpoint_dir=checkpoint_dir, progress=progress,
                      executor=executor, writers=writers, nproc_per_trial=nproc_per_trial, **options)
    if result.infrastructure:  # a worker gave up after INFRA_RETRIES faults in a row: exit 3, nothing blamed
        raise StorageUnavailable(result.infrastructure)
    if progress:
        print(fit(outcome_lines(study)), flush=True)
    if result.interrupted:  # saved: the study is not finished, and no caller may go on as if it were
        print(interrupted_line(study.name), flush=True)
        raise KeyboardInterrupt
    return result


def interrupted_line(name: str) -> str:
    """What an interrupted run prints before it raises ``KeyboardInterrupt``."""
    return f"interrupted: running trials went back to pending; run the same command again to resume {name!r}"


def _execute(study: Study, train: Callable[..., Any], *, workers: int | None, devices: Sequence[str | int] | None,
             checkpoint_dir: str | os.PathLike[str] | None, progress: bool, executor: str,
             writers: Sequence[WriterFactory] = (), nproc_per_trial: int = 1, **options: Any) -> RunResult:
    """Hand the study to its executor."""
    if executor == "ray":
        from tunebook.execution.ray_executor import check_workers, run_ray

        if nproc_per_trial != 1:
            raise SpecError("nproc_per_trial", "the Ray executor runs one process per trial",
                            "use the local executor or `tunebook worker --nproc-per-trial N`")
        if devices is not None:
            raise SpecError("devices", "the Ray executor places trials on devices itself",
                            "use gpus_per_trial=1 (--gpus-per-trial 1) instead of devices")
        return run_ray(study, train, workers=check_workers(workers), checkpoint_dir=checkpoint_dir,
                       progress=progress, writers=writers, **options)
    return run_local(
        study, train, workers=1 if workers is None else workers, devices=devices, checkpoint_dir=checkpoint_dir,
        progress=progress, writers=writers, nproc_per_trial=nproc_per_trial, **options,
    )


__all__ = ["DEFAULT_STALE_AFTER", "EXECUTORS", "RunResult", "is_out_of_memory", "run", "run_trial", "worker_loop"]
