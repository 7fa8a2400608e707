"""Synthetic studies, written straight into a store: for tests, benchmarks and docs.

A *curve function* receives a trial's parameters, the evaluation steps and a
random generator, and returns either ``{metric: values}`` (arrays over the
steps) or a string: the reason the trial is infeasible. The study, its trials
and every curve point are written in one transaction per chunk of trials,
through the same tables a real run fills, so that analysis reads exactly what
it would read after training.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Mapping

import numpy as np
import sqlalchemy as sa

from tunebook.space import SearchSpace
from tunebook.storage.base import Storage
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
    """Create study ``name`` and fill every trial with the curves ``curve`` returns."""
    from tunebook.storage.sql import SQLStorage, trials as trials_table

    study = create_study(name, space=space, objective=objective, trials=trials, max_train_steps=max_train_steps,
                         storage=storage, seed=seed, **study_options)
    store = study.storage
    assert isinstance(store, SQLStorage), "synthetic studies are written through the SQL tables"
    steps = np.unique(np.linspace(max_train_steps / evals, max_train_steps, evals).round().astype(int))
    rng = np.random.default_rng(seed)
    metric, mode = objective
    records = study.trials()
    now = time.time()
    for begin in range(0, len(records), chunk):
        rows: list[tuple[int, int, str, float | None]] = []
        updates = []
        for t in records[begin:begin + chunk]:
            params = {**study.space.fixed, **t.params}
            result = curve(params, steps, rng)
            update: dict[str, Any] = {"b_id": t.id, "state": "completed", "value": None, "best_step": None,
                                      "infeasible_reason": None, "attempts": 1, "finished_at": now}
            if isinstance(result, str):
                update.update(state="infeasible", infeasible_reason=result)
            else:
                for metric_name, values in result.items():
                    values = np.asarray(values, dtype=float)
                    rows.extend((t.id, int(s), metric_name, None if math.isnan(v) else float(v))
                                for s, v in zip(steps, values))
                objective_values = np.asarray(result[metric], dtype=float)
                finite = np.isfinite(objective_values)
                order = objective_values if mode == "min" else -objective_values
                best = int(np.argmin(np.where(finite, order, np.inf)))
                update.update(value=float(objective_values[best]), best_step=int(steps[best]))
            updates.append(update)
        with store._writer.begin() as conn:
            if rows:
                conn.exec_driver_sql(store._insert_metric_sql, rows)
            conn.execute(
                trials_table.update().where(trials_table.c.id == sa.bindparam("b_id")).values(
                    state=sa.bindparam("state"), value=sa.bindparam("value"), best_step=sa.bindparam("best_step"),
                    infeasible_reason=sa.bindparam("infeasible_reason"), attempts=sa.bindparam("attempts"),
                    finished_at=sa.bindparam("finished_at"),
                ),
                updates,
            )
    return study
