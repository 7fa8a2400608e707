"""Did anything learn? (run per group)

The playbook's "optimization failures" page: fix optimization difficulties before trying anything else.
The plainest of them is a study in which no trial learned: every learning rate tried is orders of
magnitude too small, or the pipeline is broken (labels shuffled against their inputs, a frozen model, a
loss that is never propagated). Its curves are flat, and every other finding that reads them (still
improving, saturated early, train longer, the best at a boundary, sampled enough) reads noise; the loop
would lengthen a study that cannot learn at any length.

What "learned nothing" is measured against, for each of a group's best ``curve_top_k`` trials:

(a) the objective. Its improvement from its first evaluations (:func:`~.common.initial_level`, to the
    minimum of its running median) is within how much a trial's value moves without any learning: the
    larger of ``noise_z`` times the curve's own noise (:func:`~.common.curve_noise`) and the spread of
    where the group's trials start (the standard deviation of their first evaluations: different seeds,
    different initializations). The curve's noise alone is no yardstick here: on a fixed validation set a
    run with a tiny learning rate drifts smoothly, so its second differences are almost zero and a drift of
    a ten-thousandth would read as "beyond the noise". How far the initializations alone put the runs
    apart is the scale a learned improvement must exceed.
(b) the training loss (``train_metric``), where it is logged from the first steps (before the first
    evaluation). Its level at the end (the median of its last tenth) has not fallen below its level at the
    start (the median of its first points, up to 10) by more than ``noise_z`` standard errors of that
    difference (medians: :data:`MEDIAN_SE`; from the loss's own step-to-step noise, a real noise: each step sees another batch). This
    protects a fast learner whose first evaluation comes after it learned (the tabular workload learns in
    about 20 steps): its objective is flat after the first evaluation, its training loss is not.

A group learned nothing when every one of its best trials (at least ``min_group_trials`` completed in the
group) meets (a) and, where a training loss was logged from the first steps, (b): a warning. Where no
trial's training loss was logged from the first steps, learning before the first evaluation is not measured
and the finding is info (it says so). A group in which some trials learned is silent, whatever its lowest
rates did: its best trials are the ones that learned.

A warning here comes first in the report, and findings that presume learning (:data:`PRESUMES_LEARNING`)
become info on the groups it names (:func:`qualify_nothing_learned`): their curves are flat noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tunebook.analysis.data import StudyData, TrialRow

from .base import INFO, WARNING, Finding, Thresholds, check
from .common import Group, curve_noise, fmt, for_groups, in_group, initial_level, is_learning_rate, read_curve, running_median

#: Checks whose findings read a learning curve or a best configuration as if the study learned: on a group
#: where nothing learned they become info (their numbers are noise).
PRESUMES_LEARNING = ("still_improving", "max_train_steps", "saturated_early", "sampled_enough", "overfitting",
                     "step_variance", "search_space_boundary", "stability_edge", "train_loss_rising", "periodic_validation")
#: The most training-loss points the starting level is the median of ("steps 1-10").
START_POINTS = 10
#: The standard error of the median of k points of sd s is about sqrt(pi / 2) s / sqrt(k) (normal noise).
MEDIAN_SE = math.sqrt(math.pi / 2)


@dataclass(frozen=True)
class Flat:
    """What was measured of one trial that learned nothing."""

    trial: int
    start: float  # the objective's first evaluations (loss-like)
    moved: float  # its improvement from there (initial level - best of the running median)
    noise: float  # the curve's noise
    first_step: int
    last_step: int
    train: tuple[float, float, float, int] | None  # (start level, end level, noise_z standard errors, start points)


def train_fall(steps: np.ndarray, y: np.ndarray, th: Thresholds) -> tuple[float, float, float, int]:
    """(level at the start, level at the end, ``noise_z`` standard errors of their difference, points at the
    start) of a training loss: the medians of its first points (up to :data:`START_POINTS`, a tenth of it at
    most) and of its last tenth (at least 3), the standard error from its step-to-step noise (a median's:
    :data:`MEDIAN_SE`). Each step's loss is measured on another batch, so this noise is real even where the
    model barely moves: a flat loss's two windows differ by chance, by about this much."""
    n = len(y)
    k0 = max(3, min(START_POINTS, n // 10))
    k1 = max(3, n // 10)
    start, end = float(np.median(y[:k0])), float(np.median(y[-k1:]))
    se = MEDIAN_SE * curve_noise(y) * math.sqrt(1 / k0 + 1 / k1)
    return start, end, th.noise_z * se, k0


def start_spread(view: StudyData, th: Thresholds) -> tuple[float, int]:
    """The standard deviation of where the group's completed trials start (their objective's first evaluations,
    loss-like), and how many were read."""
    starts = []
    for t in view.completed:
        c = read_curve(view, t, view.metric, view.sign(), min_points=3)
        if c is not None:
            starts.append(initial_level(c[1]))
    return (float(np.std(starts, ddof=1)) if len(starts) >= 2 else 0.0), len(starts)


def flat_trial(view: StudyData, t: TrialRow, spread: float, th: Thresholds) -> Flat | bool | None:
    """What was measured of trial ``t`` when it learned nothing by (a) and (b) of the module's docstring; True
    when it learned, None when it has no objective curve to read."""
    c = read_curve(view, t, view.metric, view.sign())
    if c is None:
        return None
    steps, y = c
    noise = curve_noise(y)
    moved = initial_level(y) - float(np.min(running_median(y)))
    if moved > max(th.noise_z * noise, spread):
        return True
    train = read_curve(view, t, th.train_metric, 1.0, min_points=2 * START_POINTS)
    fall = train_fall(*train, th) if train is not None and int(train[0][0]) < int(steps[0]) else None
    if fall is not None and fall[0] - fall[1] > fall[2]:
        return True  # the training loss fell beyond its noise: it learned (before its first evaluation)
    return Flat(t.number, initial_level(y), moved, noise, int(steps[0]), int(steps[-1]), fall)


def rate_range(view: StudyData) -> str:
    """The learning rates the group tried, in words ("" without a learning-rate nuisance hyperparameter)."""
    out = []
    for name in view.numeric_params():
        if view.roles.get(name) == "scientific" or not is_learning_rate(name):
            continue
        values = [float(t.params[name]) for t in view.finished if isinstance(t.params.get(name), (int, float))]
        param = view.param_for(view.finished[0], name) if view.finished else None
        if values and param is not None:
            out.append(f"{name} from {min(values):.3g} to {max(values):.3g} (range [{param.low:g}, {param.high:g}])")
    return "; ".join(out)


def nothing_learned_findings(view: StudyData, g: Group, th: Thresholds) -> list[Finding]:
    """One group's finding (see the module's docstring), or none when some of its best trials learned."""
    if len(view.completed) < th.min_group_trials:
        return []
    spread, starts = start_spread(view, th)
    flats: list[Flat] = []
    for t in view.ranked()[: th.curve_top_k]:
        flat = flat_trial(view, t, spread, th)
        if flat is True:
            return []  # one of the best trials learned: the group did
        if isinstance(flat, Flat):
            flats.append(flat)
    if not flats:
        return []
    s = view.sign()
    worst = max(flats, key=lambda f: f.moved)
    tried = rate_range(view)
    against = (f"less than the spread of where the group's {starts} trials start ({fmt(spread)}, the sd of their "
               "first evaluations)" if spread >= th.noise_z * worst.noise else
               f"within {th.noise_z:g} x its curve noise (the group's {starts} trials start {fmt(spread)} apart, sd)")
    words = (f"the best {len(flats)} trials' {view.metric} stay within {fmt(worst.moved)} of their first "
             f"evaluations (trial #{worst.trial}: {fmt(s * worst.start)} at step {worst.first_step}, curve noise "
             f"{worst.noise:.2g}) up to step {worst.last_step}, {against}")
    trained = [f for f in flats if f.train is not None]
    if trained:
        f = max(trained, key=lambda f: abs(f.train[0] - f.train[1]))  # type: ignore[index]
        a, b, bound, k = f.train  # type: ignore[misc]
        words += (f", and {th.train_metric} goes from {fmt(a)} at its first {k} steps to {fmt(b)} at the end "
                  f"(trial #{f.trial}; a fall beyond {fmt(bound)}, {th.noise_z:g} standard errors of its step noise, "
                  "would be learning)")
    ev: dict[str, Any] = {"trials": [f.trial for f in flats], "moved": [f.moved for f in flats],
                          "start_spread": spread, "starts": starts, "noise": [f.noise for f in flats],
                          "train": [dict(zip(("trial", "start", "end", "fall_bound", "start_points"),
                                             (f.trial, *f.train))) for f in trained],  # type: ignore[misc]
                           "learning_rates": tried or None,
                          "train_logged": bool(trained)}
    action = ("Check the pipeline on a tiny subset first (a few batches must be fit to near zero loss: labels "
              "matched to inputs, gradients reaching every layer), then widen the learning-rate range upward "
              "(`tunebook next` moves it up; `tunebook lr-sweep` finds where training starts). See the "
              "playbook's \"optimization failures\".")
    rates = f" Learning rates tried: {tried}." if tried else ""
    if trained and len(trained) == len(flats):
        return [Finding("nothing_learned", WARNING, in_group(g.label) + f"No trial learned: {words}.{rates}", action,
                        {**ev, "severity_why": "objective and training loss flat"})]
    return [Finding(
        "nothing_learned", INFO,
        in_group(g.label) + f"The objective did not move after its first evaluation: {words}. No {th.train_metric} "
        "was logged from the first steps, so whether the trials learned before their first evaluation is not "
        f"measured.{rates}",
        f"Log {th.train_metric} from step 1 (or evaluate at step 0) to tell; if nothing learned: " + action[0].lower()
        + action[1:], {**ev, "severity_why": "training loss from the first steps not logged"})]


@check("nothing_learned", family="learned", order=5, figure="curves",
       uses=("noise_z", "curve_top_k", "min_group_trials", "train_metric"))
def check_nothing_learned(data: StudyData, th: Thresholds) -> list[Finding]:
    """No trial of a group learned: see the module's docstring for what is measured."""
    return for_groups(data, th, lambda view, g: nothing_learned_findings(view, g, th))


def qualify_nothing_learned(findings: list[Finding]) -> list[Finding]:
    """On a group where nothing learned (a ``nothing_learned`` warning), findings of :data:`PRESUMES_LEARNING`
    become info and say why: a flat curve's "still improving" or "best at a boundary" is noise. Those that were
    info already keep their severity but lose their action too (e.g. "widen the lower bound" of a range that is
    decades too low)."""
    flat = {f.evidence.get("group", "") for f in findings if f.check == "nothing_learned" and f.severity == WARNING}
    if not flat:
        return findings
    out = []
    for f in findings:
        group = f.evidence.get("group", "")
        if f.check in PRESUMES_LEARNING and f.severity in (WARNING, INFO) and (group in flat or "" in flat):
            f = replace(f, severity=INFO,
                        message=f.message + " But no trial of this group learned (see nothing_learned): this reads "
                        "noise on flat curves, not a conclusion.",
                        action="Make the trials learn first (see nothing_learned); judge this after.",
                        evidence={**f.evidence, "qualified_by": "nothing_learned"})
        out.append(f)
    return out
