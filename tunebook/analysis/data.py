"""Plain data extracted from a stored study: what diagnostics and figures read.

Everything here is a plain object (dataclasses of lists and numbers) so that
tests can assert on it; figures only render these objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunebook.space import Choice, Float, Int, Param
from tunebook.study import Study


@dataclass(frozen=True)
class TrialRow:
    """One trial, flattened: its parameters with their roles, state and value."""

    number: int
    id: int
    state: str
    params: dict[str, Any]
    value: float | None
    best_step: int | None
    infeasible_reason: str | None
    seed: int


@dataclass
class Curve:
    """One metric of one trial: steps and values, as NumPy arrays."""

    steps: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)


@dataclass
class StudyData:
    """A study's trials and the means to load curves (loaded lazily, cached)."""

    study: Study
    trials: list[TrialRow]
    roles: dict[str, str]
    space: dict[str, Param]
    fixed: dict[str, Any]
    metric: str
    mode: str
    max_train_steps: int
    _curves: dict[int, dict[str, Curve]] = field(default_factory=dict, repr=False)

    # selections ------------------------------------------------------------
    @property
    def completed(self) -> list[TrialRow]:
        return [t for t in self.trials if t.state == "completed" and t.value is not None and math.isfinite(t.value)]

    @property
    def infeasible(self) -> list[TrialRow]:
        return [t for t in self.trials if t.state == "infeasible"]

    @property
    def finished(self) -> list[TrialRow]:
        return [t for t in self.trials if t.state in ("completed", "infeasible")]

    def sign(self) -> float:
        """+1 when lower is better, -1 when higher is better."""
        return 1.0 if self.mode == "min" else -1.0

    def ranked(self) -> list[TrialRow]:
        """Completed trials, best first (ties: lower number)."""
        s = self.sign()
        return sorted(self.completed, key=lambda t: (s * t.value, t.number))  # type: ignore[operator]

    def best(self) -> TrialRow | None:
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def loss_like_values(self) -> np.ndarray:
        """Values of the finished trials, lower is better; +inf for an infeasible one (bootstraps)."""
        s = self.sign()
        return np.array([s * t.value if t.state == "completed" else np.inf for t in self.finished], dtype=float)  # type: ignore[operator]

    def numeric_params(self) -> dict[str, Float | Int]:
        return {k: p for k, p in self.space.items() if isinstance(p, (Float, Int))}

    def best_by_scientific(self) -> dict[tuple[Any, ...], TrialRow]:
        """The best trial for each combination of scientific values (isolation)."""
        names = [k for k, r in self.roles.items() if r == "scientific"]
        out: dict[tuple[Any, ...], TrialRow] = {}
        for t in self.ranked():
            key = tuple(t.params[k] for k in names)
            out.setdefault(key, t)
        return out

    # curves ----------------------------------------------------------------
    def curves(self, trial: TrialRow) -> dict[str, Curve]:
        """Every metric of one trial (loaded once)."""
        if trial.id not in self._curves:
            grouped: dict[str, tuple[list[int], list[float]]] = {}
            for row in self.study.storage.get_metrics(trial.id):
                steps, values = grouped.setdefault(row.name, ([], []))
                steps.append(row.step)
                values.append(row.value)
            self._curves[trial.id] = {
                name: Curve(np.asarray(s, dtype=np.int64), np.asarray(v, dtype=np.float64))
                for name, (s, v) in grouped.items()
            }
        return self._curves[trial.id]

    def unit(self, name: str, value: Any) -> float:
        """Position of a value in the scaled range of its hyperparameter (0 = low, 1 = high)."""
        return float(self.space[name].to_unit(value))


def load(study: Study) -> StudyData:
    """Extract a study's trials (one query) into plain rows."""
    rows = [
        TrialRow(
            number=t.number,
            id=t.id,
            state=t.state,
            params={**study.space.fixed, **t.params},
            value=t.value,
            best_step=t.best_step,
            infeasible_reason=t.infeasible_reason,
            seed=t.seed,
        )
        for t in study.trials()
    ]
    return StudyData(
        study=study,
        trials=rows,
        roles=dict(study.space.roles),
        space=study.space.params,
        fixed=dict(study.space.fixed),
        metric=study.objective[0],
        mode=study.objective[1],
        max_train_steps=study.max_train_steps,
    )


def trials_dataframe(study: Study) -> Any:
    """The trials as a pandas DataFrame: one row per trial, a column per hyperparameter."""
    try:
        import pandas as pd
    except ImportError:
        from tunebook._errors import MissingExtraError

        raise MissingExtraError("pandas", "pandas", "Study.trials_dataframe()") from None
    data = load(study)
    records = []
    for t in data.trials:
        record: dict[str, Any] = {
            "number": t.number,
            "state": t.state,
            "value": t.value,
            "best_step": t.best_step,
            "infeasible_reason": t.infeasible_reason,
            "seed": t.seed,
        }
        for name, value in t.params.items():
            record[f"{data.roles.get(name, 'fixed')}.{name}"] = value
        records.append(record)
    return pd.DataFrame.from_records(records)


__all__ = ["Choice", "Curve", "StudyData", "TrialRow", "load", "trials_dataframe"]
