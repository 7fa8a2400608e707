"""The answer to a study's goal: per scientific value (group), its best and whether the comparison is fair.

The checks fill a :class:`GoalAnswer`; the report, the terminal summary, the
dashboard's headline and Jupyter render it. It is plain data (no figures).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GroupResult:
    """One scientific value (or bucket) of the study."""

    group: str  # e.g. "optimizer=sgd"; "" for a study with no scientific hyperparameter
    values: dict[str, Any]  # the scientific values, e.g. {"optimizer": "sgd"}
    n_trials: int  # finished trials of the group (completed + infeasible)
    n_completed: int
    best_value: float | None  # None when no trial completed
    best_trial: int | None  # trial number
    best_step: int | None
    mean: float | None = None  # over retrains of the group's best, where they exist
    sd: float | None = None
    n_retrains: int = 0
    limited_by: list[str] = field(default_factory=list)  # e.g. ["learning_rate at its upper bound"]


@dataclass
class GoalAnswer:
    """What the report says first."""

    goal: str
    objective: tuple[str, str]  # (metric, "min"|"max")
    groups: list[GroupResult]
    best_group: str | None  # the group whose best is best, None when nothing completed
    difference: float | None  # best group minus the runner-up, in the objective's units (signed so >0 is better)
    trial_sd: float | None  # trial variance as a standard deviation, in the objective's units
    trial_sd_source: str  # "retrains", "paired seeds", "evaluation noise", or "" when unknown
    fair: bool  # no group limited by its range and enough trials per group
    reasons: list[str]  # why the comparison is not (yet) fair; empty when fair
    verdict: str  # one or two sentences answering the goal in the playbook's words
