"""Executors: the local process pool (``run``); claim/heartbeat/resume logic in ``_runner``."""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from tunebook.execution.local import RunResult, run_local
from tunebook.study import Study


def run(
    study: Study,
    train: Callable[..., Any] | None = None,
    *,
    workers: int = 1,
    devices: Sequence[str | int] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    executor: str = "local",
    retry_failed: bool = False,
    **options: Any,
) -> RunResult:
    """Run a study's pending trials; resumes an unfinished study.

    ``train`` defaults to the study's stored ``module:function``.
    ``executor="local"``: ``workers`` processes on this machine (``workers=0``
    runs in this process, for debugging); ``devices`` gives one accelerator per
    worker (``CUDA_VISIBLE_DEVICES``).
    ``executor="ray"``: one Ray task per trial; options ``address``,
    ``cpus_per_trial``, ``gpus_per_trial`` (see :mod:`.ray_executor`).
    ``retry_failed=True`` first puts the study's failed trials back to pending
    (their attempts stay counted; infeasible trials stay data).
    With ``progress``, ends by printing the summary `tunebook run` prints.
    A ``train`` given to a study that stores none is recorded with it when it
    can be imported again, so the CLI's procedures can run its derived studies.
    """
    from tunebook.study import outcome_lines, record_train, resolve_train

    if train is None:
        if not study.train_ref:
            from tunebook._errors import SpecError

            raise SpecError("train", f"study {study.name!r} stores no training function",
                            "pass train=your_function (a module-level function is then recorded with the study)")
        train = resolve_train(study.train_ref, study.train_base_dir())
    else:
        record_train(study, train)
    if retry_failed:
        study.storage.retry_failed(study.id)
    result = _execute(study, train, workers=workers, devices=devices, checkpoint_dir=checkpoint_dir, progress=progress,
                      executor=executor, **options)
    if progress:
        print("\n".join(outcome_lines(study)), flush=True)
    return result


def _execute(study: Study, train: Callable[..., Any], *, workers: int, devices: Sequence[str | int] | None,
             checkpoint_dir: str | os.PathLike[str] | None, progress: bool, executor: str, **options: Any) -> RunResult:
    """Hand the study to its executor."""
    if executor == "ray":
        from tunebook.execution.ray_executor import run_ray

        return run_ray(study, train, checkpoint_dir=checkpoint_dir, progress=progress, **options)
    if executor != "local":
        from tunebook._errors import SpecError

        raise SpecError("executor", f"unknown executor {executor!r}", "use 'local' or 'ray'")
    return run_local(
        study, train, workers=workers, devices=devices, checkpoint_dir=checkpoint_dir, progress=progress, **options
    )


__all__ = ["RunResult", "run"]
