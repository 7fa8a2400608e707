"""Synthetic studies, written straight into a store: for tests, benchmarks and docs.

A *curve function* receives a trial's parameters, the evaluation steps and a
random generator, and returns either ``{metric: values}`` (arrays over the
steps) or a string: the reason the trial is infeasible. The study, its trials
and every curve point are written through the public storage contract
(:meth:`~tunebook.storage.base.Storage.record_outcomes`, one transaction per
chunk of trials) into the same tables a real run fills, so that analysis
reads exactly what it would read after training: once the search trials are
written, the replicate phase adds each group's best again (new draws of the
curve function's generator stand for new seeds) and they are written too.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np

from tunebook.space import SearchSpace
from tunebook.storage.base import Storage, TrialOutcome
from tunebook.study import Study, create_study

CurveFn = Callable[[dict[str, Any], np.ndarray, np.random.Generator], "Mapping[str, np.ndarray] | str"]


def exp_decay(steps: np.ndarray, floor: float, start: float, tau: float) -> np.ndarray:
    """``floor + (start - floor) * exp(-steps / tau)``: a well-behaved curve."""
    return floor + (start - floor) * np.exp(-steps / tau)


def write_study(
    storage: str | Storage,
    name: str,
    curve: CurveFn,
    *,
    space: SearchSpace | Mapping[str, Any],
    trials: int,
    max_train_steps: int = 1000,
    evals: int = 40,
    objective: tuple[str, str] = ("val/error", "min"),
    seed: int = 0,
    chunk: int = 500,
    **study_options: Any,
) -> Study:
    """Create study ``name`` and fill every trial with the curves ``curve`` returns.

    Unlike :func:`~tunebook.study.create_study`, ``replicates`` defaults to 0 here (every trial of the budget
    searches, as the tests' and benchmarks' fixed budgets expect); pass ``replicates=3`` for the replicate phase.
    """
    study_options.setdefault("replicates", 0)
    study = create_study(name, space=space, objective=objective, trials=trials, max_train_steps=max_train_steps,
                         storage=storage, seed=seed, **study_options)
    steps = np.unique(np.linspace(max_train_steps / evals, max_train_steps, evals).round().astype(int))
    rng = np.random.default_rng(seed)
    _fill(study, study.trials(), curve, steps, rng, chunk)
    # then the replicate phase, as a run does once the search has finished: each group's best with new draws
    from tunebook.proposing import add_replicates

    added = set(add_replicates(study))
    if added:
        _fill(study, [t for t in study.trials() if t.number in added], curve, steps, rng, chunk)
    return study


def _fill(study: Study, records: list[Any], curve: CurveFn, steps: np.ndarray, rng: np.random.Generator,
          chunk: int) -> None:
    """Finish the pending trials ``records`` with the curves ``curve`` returns."""
    metric, mode = study.objective
    for begin in range(0, len(records), chunk):
        outcomes = []
        for t in records[begin:begin + chunk]:
            params = {**study.space.fixed, **t.params}
            result = curve(params, steps, rng)
            if isinstance(result, str):
                outcomes.append(TrialOutcome(t.number, "infeasible", infeasible_reason=result))
                continue
            rows: list[tuple[int, str, float]] = []
            for metric_name, values in result.items():
                values = np.asarray(values, dtype=float)
                rows.extend((int(s), metric_name, float(v)) for s, v in zip(steps, values))
            objective_values = np.asarray(result[metric], dtype=float)
            finite = np.isfinite(objective_values)
            order = objective_values if mode == "min" else -objective_values
            best = int(np.argmin(np.where(finite, order, np.inf)))
            value = float(objective_values[best])
            outcomes.append(TrialOutcome(t.number, "completed", value=None if math.isnan(value) else value,
                                         best_step=int(steps[best]), metrics=rows))
        study.storage.record_outcomes(study.id, outcomes)
