"""Shared by the workload tests: an interrupted trial resumes from its checkpoint to the uninterrupted curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

import tunebook as tb


def assert_resumes_to_the_same_curve(make: Callable[[str], tb.Study], train: Callable[[Any], None], *, stop_at: int,
                                     objective: str, metrics: tuple[str, ...], checkpoint_dir: Path) -> None:
    """A one-trial study of ``train`` (``make(name)``) whose first attempt is stopped by Ctrl-C after the training
    step ``stop_at`` (not an evaluation step), run again, ends with the curves of an uninterrupted run of the same
    trial: every one of ``metrics`` point for point, the trial value and its step."""

    def interrupted(trial):
        if trial.attempt == 1:
            log = trial.log

            def stop_after(step, **values):
                log(step, **values)
                if step == stop_at and objective not in values:
                    raise KeyboardInterrupt

            trial.log = stop_after
        train(trial)

    study = make("resumed")
    with pytest.raises(KeyboardInterrupt):  # saved, then raised
        tb.run(study, interrupted, workers=0, progress=False, checkpoint_dir=checkpoint_dir)
    assert tb.run(study, interrupted, workers=0, progress=False, checkpoint_dir=checkpoint_dir).finished
    reference = make("reference")
    tb.run(reference, train, workers=0, progress=False, checkpoint_dir=checkpoint_dir)
    (a,), (b,) = study.trials(), reference.trials()
    assert a.attempts == 2 and (a.value, a.best_step) == (b.value, b.best_step)
    ca, cb = study.metrics(a), reference.metrics(b)
    for metric in metrics:
        assert ca[metric] == cb[metric], metric  # the same curve, point for point
