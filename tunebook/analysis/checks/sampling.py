"""How long to train, and have we sampled enough? (run per group)

max_train_steps. The playbook ("Deciding how long to train when training is
not compute-bound"): if the best step is always in the first 10% of training,
max_train_steps is far too high; if it is consistently in the last 25%, the
trials might benefit from training longer. The "best step" here is where the
curve came within its noise of its best (:func:`effective_best_step`): on a
flat, noisy curve the argmin lands wherever the noise put it.

Sampled enough. The playbook says that it is hard to know whether a search
space was sampled densely enough, and that we usually sample what we can
afford. What can be computed: how much the expected best of a group moves
when its budget doubles from n/2 to n trials (the exact expectation of the
best of k trials drawn without replacement from the n finished ones), set
against the trial variance (the spread of one configuration's result over
seeds). A best that still moves by more than one trial standard deviation is
still being found by sampling; a best that moves by less is dominated by
trial variance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tunebook.analysis.data import StudyData

from .base import INFO, WARNING, Finding, Thresholds, check
from .common import (
    Group,
    effective_best_step,
    expected_best_of_k,
    fmt,
    for_groups,
    in_group,
    read_curve,
)
from .variance import trial_sd


def measured_trial_sd(data: StudyData, th: Thresholds) -> tuple[float | None, str]:
    """The trial sd where runs of one configuration over seeds measured it, with its source; ``(None, "")``
    otherwise. The evaluation noise of a curve is not trial variance (it can be several times smaller or
    larger than the seed-to-seed sd): the checks never judge against it."""
    sd, source = trial_sd(data, th)
    if sd is None or not sd > 0 or source == "evaluation noise":
        return None, ""
    return sd, source


def effective_best_steps(view: StudyData, th: Thresholds) -> list[int]:
    """Effective best steps of the better half of a view's trials (the stored best step when no curve).

    A better half larger than ``th.best_step_curves`` is represented by that many of its trials,
    evenly spaced in rank (the best included): the shares the check reads are estimated from them.
    """
    ranked = view.ranked()
    better = ranked[: max(3, len(ranked) // 2)]
    if len(better) > th.best_step_curves > 0:
        picks = np.unique(np.linspace(0, len(better) - 1, th.best_step_curves).round().astype(int))
        better = [better[i] for i in picks]
    view.preload(better, view.metric)
    out = []
    for t in better:
        c = read_curve(view, t, view.metric, view.sign())
        if c is not None:
            out.append(effective_best_step(*c, th))
        elif t.best_step is not None:
            out.append(int(t.best_step))
    return out


@check("max_train_steps", family="sampling", order=120, figure="best_steps",
       uses=("best_step_share", "best_step_early", "best_step_late", "best_step_curves", "noise_z", "saturation_tol"))
def check_max_train_steps(data: StudyData, th: Thresholds) -> list[Finding]:
    def judge(view: StudyData, g: Group) -> list[Finding]:
        steps = np.array(effective_best_steps(view, th), dtype=float)
        if len(steps) < 3:
            return []
        share_early = float(np.mean(steps <= th.best_step_early * data.max_train_steps))
        share_late = float(np.mean(steps >= th.best_step_late * data.max_train_steps))
        ev = {"max_train_steps": data.max_train_steps, "share_first_10pct": share_early,
              "share_last_25pct": share_late, "trials": len(steps), "best_steps": steps.astype(int).tolist()}
        if share_early >= th.best_step_share:
            return [Finding(
                "max_train_steps", WARNING,
                in_group(g.label) + f"{share_early:.0%} of the better trials come within their noise of their best in "
                f"the first {th.best_step_early:.0%} of the {data.max_train_steps} steps: max_train_steps is too high.",
                "Lower max_train_steps in the next round (a new study); it is never tuned inside a study.",
                {**ev, "verdict": "too long"},
            )]
        if share_late >= th.best_step_share:
            return [Finding(
                "max_train_steps", WARNING,
                in_group(g.label) + f"{share_late:.0%} of the better trials are still improving materially (beyond "
                f"their noise) in the last {1 - th.best_step_late:.0%} of the {data.max_train_steps} steps: they may "
                "benefit from training longer.",
                "Raise max_train_steps in the next round (a new study), and retune the learning-rate schedule with it.",
                {**ev, "verdict": "train longer"},
            )]
        return []

    return for_groups(data, th, judge)


# trial variance ---------------------------------------------------------------
@check("sampled_enough", family="sampling", order=130, figure="sampled_enough", uses=("sampled_enough_tol", "noise_z"))
def check_sampled_enough(data: StudyData, th: Thresholds) -> list[Finding]:
    if len(data.completed) < 2:
        return []
    sd, source = trial_sd(data, th)
    s = data.sign()

    def judge(view: StudyData, g: Group) -> list[Finding]:
        values = view.loss_like_values()
        n = len(values)
        if n < 4 or len(view.completed) < 2:
            return []  # the best of fewer than 2 trials says nothing about sampling
        half = max(1, n // 2)
        e_half, e_full = expected_best_of_k(values, half), expected_best_of_k(values, n)
        if not math.isfinite(e_half):
            return []
        gain = e_half - e_full
        feasible = np.sort(values[np.isfinite(values)])
        top_gap = float(feasible[1] - feasible[0]) if len(feasible) >= 2 else math.nan
        ev: dict[str, Any] = {
            "trials": n, "expected_best_of_half": s * e_half, "expected_best_of_all": s * e_full,
            "expected_gain": gain, "trial_sd": sd, "trial_sd_source": source, "top_two_gap": top_gap,
        }
        # material against both the trial variance and the landscape (the spread of the group's values)
        spread = float(np.median(feasible) - feasible[0])
        ev["relative_gain"] = gain / spread if spread > 0 else 0.0
        moving = spread > 0 and gain > th.sampled_enough_tol * spread
        against = f"{th.sampled_enough_tol:.0%} of the spread of trial values ({fmt(th.sampled_enough_tol * spread)})"
        if sd is not None and sd > 0:
            ev["gain_in_sd"] = gain / sd
            # the best region is dense when the top quarter of the trials (at least 2) lies within one trial sd
            m = max(2, math.ceil(len(feasible) / 4))
            dense = len(feasible) >= m and float(feasible[m - 1] - feasible[0]) <= sd
            ev["dense_top"] = dense
            moving = moving and gain > sd and not dense
            against = f"the trial standard deviation ({fmt(sd)}, from {source})" + (
                f" and {against}" if moving else "" if gain <= sd else
                "; its best trials lie within one trial sd of each other (a densely sampled best region)" if dense
                else f" though not {against}")
        else:
            against += "; no trial variance is known"
        where = in_group(g.label)
        units = f"{data.metric}"
        if moving:
            return [Finding(
                "sampled_enough", WARNING,
                where + f"Probably not sampled enough: with {n} trials, doubling from {half} to {n} moves the expected "
                f"best {units} by {fmt(gain)}, more than {against}: the best is still being found by sampling. "
                "(The playbook notes that it is hard to know when a space is sampled densely enough.)",
                "Raise `trials` of this study (it appends the next quasi-random points and keeps the finished ones), "
                "and look at the axis plots for how many trials fall in the good region.",
                ev,
            )]
        tie = " (its top trials tie)" if top_gap == 0 else ""
        return [Finding(
            "sampled_enough", INFO,
            where + f"Doubling from {half} to {n} trials moves the expected best {units} by {fmt(gain)}{tie}, "
            f"{'against' if ev.get('dense_top') and sd is not None and gain > sd else 'less than'} {against}: more trials of this search space would probably not change the best by more than trial variance. "
            "The playbook notes this is hard to know: check the axis plots for how densely the good region is sampled.",
            "No action needed for sampling; sample more only if you can afford it.",
            ev,
        )]

    return for_groups(data, th, judge)
