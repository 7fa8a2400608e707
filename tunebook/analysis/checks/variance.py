"""Trial variance: how much one configuration's result moves over seeds, measured.

The answer's difference, its interval and the checks' comparisons rest on this
number (:func:`trial_variance`). Sources, best first: the study's own
replicates (each group's best re-run with new seeds after the search, see
:mod:`tunebook.designs.replicates`), retrains of the best configurations
(``tunebook retrain``), and trials of this study that share every
hyperparameter (paired seeds). Each gives a pooled standard deviation with its
degrees of freedom. Nothing else is trial variance: the evaluation noise of a
curve (:func:`evaluation_noise`) says how much a value moves between two
evaluations of one run, which can be several times smaller or larger than the
spread over seeds, and is only ever shown labelled as what it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunebook.analysis.data import StudyData, TrialRow
from tunebook.space import Choice, Float

from .base import Thresholds
from .common import Group, curve_noise, groups, read_curve, resolution


def retrain_values(data: StudyData) -> list[tuple[dict[str, Any], np.ndarray]]:
    """(fixed params, completed values) of every retrain study of this study (``tunebook retrain``).

    Only retrains count: a next-round or early-instability study is a replicate design too, but it trains
    for another number of steps or another learning rate, so its values say nothing of this study's trials."""
    from tunebook.study import Study

    study = data.study
    out = []
    try:
        records = study.storage.list_studies()
    except Exception:  # noqa: BLE001 - a store that cannot list studies has no retrains to offer
        return []
    for rec in records:
        if rec.parent != study.name or rec.spec.get("design") != "replicates":
            continue
        derived = rec.spec.get("derived")
        is_retrain = (derived or {}).get("kind") == "retrain" if derived else rec.goal.startswith("Trial variance of ")
        if not is_retrain or rec.max_train_steps != study.max_train_steps:
            continue
        child = Study(rec, study.storage)
        values = np.array([t.value for t in child.trials(["completed"]) if t.value is not None], dtype=float)
        values = values[np.isfinite(values)]
        if len(values):
            out.append((dict(child.space.fixed), values))
    return out


def paired_seed_sd(data: StudyData) -> tuple[float, int] | None:
    """Pooled sd of trials that share every hyperparameter and differ only in their seed (and their count)."""
    got = _paired(data)
    return None if got is None else (got[0], got[1])


def _paired(data: StudyData) -> tuple[float, int, int, int] | None:
    """(pooled sd, runs, dof, repeated configurations) of the trials that differ only in their seed."""
    return data.once(_paired_seed_sd)


def _exact_key(t: TrialRow) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in t.params.items()))


def _paired_seed_sd(data: StudyData) -> tuple[float, int, int, int] | None:
    completed = data.completed
    # a cheap hashed key first (equal values, NaN by its text): only trials that share it can share the exact key
    names = sorted({k for t in completed for k in t.params})
    # a NaN decoded in two trials is two unequal objects: only a choice can hold one (ranges cannot)
    nan_choice = any(isinstance(p, Choice) and any(v != v for v in p.values) for p in data.space.values())
    pivot = next((k for k, p in data.space.items() if isinstance(p, Float) and k in names), None)
    if pivot is not None:  # a sampled float first: trials that share every value share this one
        by_pivot: dict[Any, list[TrialRow]] = {}
        for t in completed:
            by_pivot.setdefault(t.params.get(pivot), []).append(t)
        completed = [t for same in by_pivot.values() if len(same) >= 2 for t in same]
    try:
        coarse: dict[tuple[Any, ...], list[TrialRow]] = {}
        for t in completed:
            key = tuple(v if v == v else repr(v) for v in map(t.params.get, names)) if nan_choice \
                else tuple(map(t.params.get, names))
            coarse.setdefault(key, []).append(t)
        candidates = [t for same in coarse.values() if len(same) >= 2 for t in same]
    except TypeError:  # an unhashable value: compare every trial exactly
        candidates = completed
    chosen = {id(t) for t in candidates}
    candidates = [t for t in data.completed if id(t) in chosen]  # in the trials' order (the sums' order)
    by_config: dict[tuple[tuple[str, str], ...], list[float]] = {}
    for t in candidates:
        by_config.setdefault(_exact_key(t), []).append(float(t.value))  # type: ignore[arg-type]
    sets = [np.array(v) for v in by_config.values() if len(v) >= 2]
    dof = sum(len(v) - 1 for v in sets)
    if dof < 2:
        return None
    return math.sqrt(sum(float(((v - v.mean()) ** 2).sum()) for v in sets) / dof), sum(len(v) for v in sets), dof, len(sets)


def evaluation_noise(data: StudyData, th: Thresholds) -> float | None:
    """The median noise of each group's best validation curve: how much the value moves between evaluations
    of one run. Not trial variance (the spread over seeds): show it only labelled as evaluation noise.

    For a rate measured on N validation examples (a metric in [0, 1] quantized at 1/N), the
    binomial sampling sd sqrt(p (1 - p) / N) of the best value p is a floor.
    """
    noises = []
    for g in groups(data, th.scientific_buckets):
        view = data if not g.label else _view(data, g)
        for t in view.ranked()[:1]:
            c = read_curve(view, t, data.metric, data.sign(), min_points=6)
            if c is not None:
                noise = curve_noise(c[1])
                raw = data.sign() * c[1]
                res = resolution(raw)
                p = float(t.value)  # type: ignore[arg-type]
                if res > 0 and 0 <= p <= 1 and np.all((raw >= 0) & (raw <= 1)):
                    # a rate over 1/res validation examples: its binomial sampling sd is a floor
                    noise = max(noise, math.sqrt(p * (1 - p) * res))
                noises.append(noise)
    return float(np.median(noises)) if noises else None


def _view(data: StudyData, g: Group) -> StudyData:
    from .common import group_view

    return group_view(data, g)


def _group_bests(data: StudyData, th: Thresholds) -> list[TrialRow]:
    out = []
    for g in groups(data, th.scientific_buckets):
        best = _view(data, g).best()
        if best is not None:
            out.append(best)
    return out


@dataclass(frozen=True)
class TrialVariance:
    """A measured trial standard deviation: pooled over ``sets`` configurations, ``runs`` runs in all."""

    sd: float
    dof: int  # degrees of freedom of the pooled sd (runs less one per configuration)
    runs: int
    source: str  # "replicates", "retrains" or "paired seeds"
    sets: int = 1

    def describe(self) -> str:
        """E.g. ``"0.008 (pooled over 2 replicate sets, 6 runs, 4 dof)"``."""
        kind = {"replicates": "replicate set", "retrains": "retrain study", "paired seeds": "repeated configuration"}
        what = kind.get(self.source, self.source)
        return (f"{_fmt(self.sd)} (pooled over {self.sets} {what}{'s' if self.sets != 1 else ''}, "
                f"{self.runs} runs, {self.dof} dof)")


def _fmt(x: float) -> str:
    from .common import fmt

    return fmt(x)


def pooled(sets: list[np.ndarray]) -> tuple[float, int, int, int] | None:
    """(pooled sd, dof, runs, sets used) over the value sets with at least two runs; None without any dof."""
    used = [v for v in sets if len(v) >= 2]
    dof = sum(len(v) - 1 for v in used)
    if dof < 1:
        return None
    return math.sqrt(sum(float(((v - v.mean()) ** 2).sum()) for v in used) / dof), dof, sum(len(v) for v in used), len(used)


def replicate_sets(data: StudyData) -> dict[int, np.ndarray]:
    """The study's replicates, by the search trial they re-run: their completed, finite values.

    The re-run trial's own value is not among them: it was selected as the best of the search, so it is
    biased towards a lucky seed; its replicates are not."""
    out: dict[int, list[float]] = {}
    for t in data.replicates:
        of = data.replicate_of.get(t.number)
        if of is not None and t.state == "completed" and t.value is not None and math.isfinite(t.value):
            out.setdefault(of, []).append(float(t.value))
    return {k: np.array(v, dtype=float) for k, v in out.items()}


def trial_variance(data: StudyData, th: Thresholds) -> TrialVariance | None:
    """The measured trial variance (see the module's docstring for the sources), None when nothing measured it.

    Computed once per data and thresholds (the checks, the answer and the isolation plot all read it)."""
    return data.once(_trial_variance, th)


def _trial_variance(data: StudyData, th: Thresholds) -> TrialVariance | None:
    got = pooled(list(replicate_sets(data).values()))
    if got is not None:
        return TrialVariance(got[0], got[1], got[2], "replicates", got[3])
    # the retrains of the best configurations (a group's best, or the study's): a retrain of a poor trial
    # (e.g. one asked for by `tunebook compare`) measures another configuration's spread
    bests = [t.params for t in (data.ranked()[:1] + [b for b in _group_bests(data, th)])]
    retrains = [v for fixed, v in retrain_values(data)
                if any(all(p.get(k) == x for k, x in fixed.items() if k in p) for p in bests)]
    got = pooled(retrains)
    if got is not None:
        return TrialVariance(got[0], got[1], got[2], "retrains", got[3])
    paired = _paired(data)
    if paired is not None:
        return TrialVariance(paired[0], paired[2], paired[1], "paired seeds", paired[3])
    return None


def trial_sd(data: StudyData, th: Thresholds) -> tuple[float | None, str]:
    """``(sd, source)`` of :func:`trial_variance`, ``(None, "")`` when trial variance is not measured.

    Evaluation noise is never returned: it is not trial variance (see :func:`evaluation_noise`)."""
    tv = trial_variance(data, th)
    return (None, "") if tv is None else (tv.sd, tv.source)
