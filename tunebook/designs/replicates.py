"""Replicates: the same configuration with other seeds, to measure trial variance.

Two things live here:

- the ``replicates`` *design*: every trial runs the study's fixed configuration
  with its own seed (``tunebook retrain`` makes such studies);
- the *replicate phase* of a searching study (spec field ``replicates``,
  default :data:`DEFAULT_REPLICATES`): once every search trial has finished,
  each scientific group's best configuration is re-run ``replicates`` times
  with new seeds. :func:`replicate_plan` says how the budget splits between
  search and replicates; :func:`replicate_trials` which trials to add, from a
  :class:`History` (the worker that adds them holds the study's lock).

The budget rule. ``trials`` is the total. With ``G`` groups (the combinations
of listed scientific values; 1 without scientific hyperparameters or with a
continuous one) and ``R`` replicates asked, each group's share of the budget
(``trials // G``) keeps at least :data:`MIN_SEARCH_PER_GROUP` search trials and
gives the rest, up to ``R``, to the replicates of its best. A small budget thus
gets fewer replicates than asked (at least :data:`MIN_REPLICATES`, which still
measure the trial variance) rather than none; below that the phase is skipped,
every trial searches, and the answer says the variance is not measured. Only
designs registered with ``replicated=True`` have the phase (quasi_random,
random, bayesian): a grid's budget is its grid, and a replicates study is
replicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunebook.designs.base import DesignPoint, History, MaterializedDesign, PastTrial, register_design, trial_seed
from tunebook.errors import SpecError
from tunebook.space import Choice, SearchSpace

#: Seeds of each group's best re-run after the search, unless the spec says otherwise.
DEFAULT_REPLICATES = 3
#: The fewest search trials a group keeps when its best is replicated.
MIN_SEARCH_PER_GROUP = 6
#: The fewest replicates per group worth running when the budget cannot hold those asked (2 seeds of each
#: group's best give each group one degree of freedom, pooled over the groups).
MIN_REPLICATES = 2
#: The most replicates a spec may ask for per group.
MAX_REPLICATES = 100
#: The note that marks a study's replicate trials (its evidence lists their numbers and what they re-run).
NOTE_KIND = "replicates"


@register_design("replicates", fixed_only=True)
class ReplicatesDesign(MaterializedDesign):
    """Every trial runs the study's fixed configuration with its own seed."""

    def materialize(self, space: SearchSpace, trials: int, seed: int, *, scientific_design: str = "crossed",
                    start: int = 0, grid_force: bool = False) -> list[DesignPoint]:
        return [DesignPoint({}, trial_seed(seed, i), i) for i in range(start, trials)]


def check_replicates(value: Any) -> int:
    """The spec's ``replicates`` (None: the default); :class:`SpecError` in one line otherwise."""
    if value is None:
        return DEFAULT_REPLICATES
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REPLICATES:
        raise SpecError("replicates", f"expected an integer from 0 to {MAX_REPLICATES}, got {value!r}",
                        f"e.g. replicates: {DEFAULT_REPLICATES} (seeds of each group's best), or 0 to turn them off")
    if value == 1:  # the re-run best is not among them (a lucky seed, selected): one replicate has no spread
        raise SpecError("replicates", "1 replicate of each group's best measures no trial variance (0 dof)",
                        f"use replicates: {MIN_REPLICATES} or more (e.g. {DEFAULT_REPLICATES}), or 0 to turn them off")
    return value


def group_values(space: SearchSpace) -> list[dict[str, Any]]:
    """The groups whose bests are replicated: every combination of listed scientific values ([{}]: one group)."""
    import itertools

    if not space.scientific or not all(isinstance(p, Choice) for p in space.scientific.values()):
        return [{}]
    names = list(space.scientific)
    return [dict(zip(names, combo)) for combo in itertools.product(*(space.scientific[k].values for k in names))]


@dataclass(frozen=True)
class ReplicatePlan:
    """How a study's budget splits between its search and the replicates of each group's best."""

    groups: int  # G
    per_group: int  # replicates of each group's best (0: no replicate phase)
    search: int  # search trials
    asked: int  # what the spec asked for
    skipped: str = ""  # why the phase is off although asked for ("" otherwise)

    @property
    def replicates(self) -> int:
        return self.groups * self.per_group


def replicate_plan(space: SearchSpace, budget: int, asked: int, *, replicated: bool) -> ReplicatePlan:
    """The split of ``budget`` (see the module's docstring for the rule).

    >>> from tunebook.space import Float
    >>> space = SearchSpace(scientific={"wd": Choice([0, 1])}, nuisance={"lr": Float(0.1, 1)})
    >>> [(p.search, p.per_group) for p in (replicate_plan(space, b, 3, replicated=True) for b in (24, 22, 16, 14))]
    [(18, 3), (16, 3), (12, 2), (14, 0)]
    """
    groups = len(group_values(space))
    if not replicated or asked == 0:
        return ReplicatePlan(groups, 0, budget, asked)
    room = budget // groups - MIN_SEARCH_PER_GROUP  # replicates each group's share leaves room for
    per_group = min(asked, room)
    if per_group < min(asked, MIN_REPLICATES):
        least = min(asked, MIN_REPLICATES)
        return ReplicatePlan(groups, 0, budget, asked, skipped=(
            f"{budget} trials give each of {groups} group{'s' if groups > 1 else ''} {budget // groups}, fewer than "
            f"{MIN_SEARCH_PER_GROUP} search trials and {least} replicates of its best "
            f"(trials: {groups * (MIN_SEARCH_PER_GROUP + least)} or more)"))
    return ReplicatePlan(groups, per_group, budget - groups * per_group, asked)


def _in_group(params: Any, values: dict[str, Any]) -> bool:
    return all(k in params and params[k] == v for k, v in values.items())


def replicate_seed(study_seed: int, number: int, used: set[int]) -> int:
    """A training seed for replicate trial ``number``, different from every seed in ``used``."""
    import numpy as np

    for k in range(1000):
        seed = int(np.random.SeedSequence([study_seed, number, 0x5EED, k]).generate_state(1)[0] & 0x7FFFFFFF)
        if seed not in used:
            return seed
    raise RuntimeError("no free seed")  # pragma: no cover - 1000 collisions in 2**31


def replicate_trials(history: History, plan: ReplicatePlan, replicate_numbers: set[int], first: int, room: int
                     ) -> list[tuple[dict[str, Any], int, int]]:
    """The replicate trials to add now: ``(params, seed, number of the trial they re-run)``, numbered from ``first``.

    Nothing until every search trial (those not in ``replicate_numbers``) exists and has finished. Then,
    for each group, its best completed search trial is re-run until it has ``plan.per_group``
    replicates (counting those stored already), at most ``room`` trials in all; each seed differs from
    every seed the study's trials used (the group's included).
    """
    if plan.per_group == 0 or room <= 0:
        return []
    search = [t for t in history.trials if t.number not in replicate_numbers]
    if len(search) < plan.search or any(t.state in ("pending", "running") for t in search):
        return []
    replicas = [t for t in history.trials if t.number in replicate_numbers]
    sign = 1.0 if history.mode == "min" else -1.0
    out: list[tuple[dict[str, Any], int, int]] = []
    for values in group_values(history.space):
        done = [t for t in search if t.state == "completed" and t.value is not None and t.value == t.value
                and _in_group(t.params, values)]
        if not done:
            continue
        best: PastTrial = min(done, key=lambda t: (sign * t.value, t.number))  # type: ignore[operator]
        have = sum(dict(t.params) == dict(best.params) for t in replicas)
        used = {t.seed for t in history.trials} | {s for _, s, _ in out}  # every seed of the study: the group's too
        for _ in range(plan.per_group - have):
            if len(out) >= room:
                return out
            seed = replicate_seed(history.seed, first + len(out), used)
            used.add(seed)
            out.append((dict(best.params), seed, best.number))
    return out
