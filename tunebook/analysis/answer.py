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
    mean: float | None = None  # over the re-runs of the group's best (replicates, else retrains), where they exist
    sd: float | None = None  # of those runs
    n_runs: int = 0
    runs_source: str = ""  # "replicates" or "retrains"
    runs_of: int | None = None  # the number of the search trial they re-run
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
    trial_sd_source: str  # "replicates", "retrains", "paired seeds", or "" when trial variance is not measured
    fair: bool  # no group limited by its range and enough trials per group
    reasons: list[str]  # why the comparison is not (yet) fair; empty when fair
    verdict: str  # one or two sentences answering the goal in the playbook's words
    trial_dof: int | None = None  # degrees of freedom of trial_sd
    trial_runs: int | None = None  # runs trial_sd was pooled from
    interval: float | None = None  # half-width of the 95% interval of ``difference`` (means compared only)
    interval_text: str = ""  # e.g. "0.031 ± 0.012 (95%, 3+3 runs, pooled sd 0.008, 4 dof)"
    compared: str = "bests"  # "means" (of each group's re-runs) or "bests" (each group's best trial)
    versus_source: str = ""  # a next round against its source study, in the source's trial sd
    separation: str = ""  # means compared with an interval: "separated", "tie" or "not separated" (see goal.py)
    runs_needed: int | None = None  # "not separated": runs of each group's best that bring the interval under one sd
