"""The answer to a study's goal: each group's best, the difference against trial variance, fairness.

Built after the checks ran, from their findings: a group whose best sits at a
boundary of its range is "limited by" that range, which makes the
comparison not yet fair (the playbook's isolation plot compares the best of
each scientific value only when every value's nuisance hyperparameters were
tuned equally well).
"""

from __future__ import annotations

import math

import numpy as np

from tunebook.analysis.answer import GoalAnswer, GroupResult
from tunebook.analysis.data import StudyData

from .base import WARNING, Finding, Thresholds
from .common import fmt, group_view, groups
from .variance import retrain_values, trial_sd


def _retrains_of(best_params: dict, retrains: list[tuple[dict, np.ndarray]]) -> np.ndarray | None:
    """The retrained values of a configuration: the retrain studies whose fixed params match it."""
    vals = [v for fixed, v in retrains
            if fixed and all(k in best_params and best_params[k] == x for k, x in fixed.items() if k in best_params)
            and all(fixed.get(k) == x for k, x in best_params.items() if k in fixed)]
    return np.concatenate(vals) if vals else None


def build_answer(data: StudyData, findings: list[Finding], th: Thresholds) -> GoalAnswer:
    s = data.sign()
    sd, source = trial_sd(data, th)
    retrains = retrain_values(data)
    results: list[GroupResult] = []
    for g in groups(data, th.scientific_buckets):
        view = group_view(data, g)
        best = view.best()
        r = GroupResult(
            group=g.label, values=dict(g.values), n_trials=len(view.finished), n_completed=len(view.completed),
            best_value=None if best is None else float(best.value),  # type: ignore[arg-type]
            best_trial=None if best is None else best.number, best_step=None if best is None else best.best_step,
        )
        if best is not None:
            again = _retrains_of(best.params, retrains)
            if again is not None and len(again) >= 1:
                r.mean, r.n_retrains = float(np.mean(again)), len(again)
                r.sd = float(np.std(again, ddof=1)) if len(again) >= 2 else None
        for f in findings:
            if f.check == "search_space_boundary" and f.severity == WARNING and f.evidence.get("group", "") == g.label:
                r.limited_by.append(f"{f.evidence['param']} at its {f.evidence['side']} bound ({f.evidence['bound']:g})")
        results.append(r)

    done = [r for r in results if r.best_value is not None]
    # with retrains of each group's best, compare their means; else the bests
    def level(r: GroupResult) -> float:
        return s * (r.mean if r.mean is not None and all(x.mean is not None for x in done) else r.best_value)  # type: ignore[operator]

    ordered = sorted(done, key=level)
    best_group = ordered[0].group if ordered else None
    difference = (level(ordered[1]) - level(ordered[0])) if len(ordered) >= 2 else None
    reasons: list[str] = []
    for r in results:
        if r.limited_by:
            reasons.append(f"{r.group or 'the study'} is limited by its search space ({'; '.join(r.limited_by)}): "
                           "widen that range for it")
        if r.group and r.n_completed < th.min_group_trials:
            reasons.append(f"{r.group} has only {r.n_completed} completed trial(s)")
    for f in findings:
        # only where more sampling could change the answer (its room against the gap and the trial sd), never
        # because the best-of-k curve still moves
        if (f.check == "sampled_enough" and f.severity == WARNING and f.evidence.get("group")
                and f.evidence.get("could_change_answer")):
            reasons.append(f"more trials of {f.evidence['group']} could change the answer (about "
                           f"{f.evidence['more_trials']} more, see sampled_enough)")
        if f.check == "failed_trials":
            for label in f.evidence.get("short_groups", ()):
                bad, n = f.evidence["groups"][label]
                reasons.append(f"{label} lost {bad} of its {n} trials to failures (fix them and --retry-failed)")
        if f.check == "unused_hyperparameter" and f.evidence.get("role") == "scientific":
            reasons.insert(0, f"the training function never reads the scientific hyperparameter "
                              f"{f.evidence['param']!r}, so its values cannot differ")
    fair = not reasons
    verdict = _verdict(data, results, ordered, difference, sd, source, fair, reasons)
    return GoalAnswer(
        goal=data.study.goal, objective=(data.metric, data.mode), groups=results, best_group=best_group,
        difference=difference, trial_sd=sd, trial_sd_source=source, fair=fair, reasons=reasons, verdict=verdict,
    )


def _verdict(data: StudyData, results: list[GroupResult], ordered: list[GroupResult], difference: float | None,
             sd: float | None, source: str, fair: bool, reasons: list[str]) -> str:
    metric = data.metric
    if not ordered:
        failed = sum(t.state == "failed" for t in data.trials)
        if failed:
            return (f"No trial has completed: {failed} failed (see `tunebook status {data.study.name}`); "
                    "nothing to conclude until they are fixed and run again.")
        return "No trial has completed yet: nothing to conclude."
    top = ordered[0]
    if len(results) == 1 and not top.group:
        text = f"The best {metric} is {fmt(top.best_value)} (trial #{top.best_trial})."
        if reasons:
            text += " It may not be the best this setup can do: " + "; ".join(reasons) + "."
        return text
    if len(ordered) == 1:
        return f"Only {top.group} has completed trials (best {metric} {fmt(top.best_value)}): nothing to compare yet."
    runner = ordered[1]
    size = ""
    if sd is not None and sd > 0 and difference is not None:
        size = f", {difference / sd:.1f} trial standard deviations ({fmt(sd)}, from {source})"
    level = fmt(top.mean if top.mean is not None else top.best_value)
    if difference is not None and difference == 0:
        head = f"{top.group} and {runner.group} tie on the best {metric} ({level})."
    else:
        head = (f"{top.group} has the best {metric} ({level}), "
                f"ahead of {runner.group} ({fmt(runner.mean if runner.mean is not None else runner.best_value)}) "
                f"by {fmt(difference)}{size}.")
    unread = [r for r in reasons if r.startswith("the training function never reads")]
    if unread:  # not a matter of more trials: the training function or the spec is wrong
        return (head + " This study cannot answer its goal: " + "; ".join(unread) + ". Fix the name in the training "
                "function or the spec, then run the study again under a new name.")
    if not fair:
        return head + " The comparison is not yet fair: " + "; ".join(reasons) + ". Do not conclude yet."
    if sd is None or sd <= 0 or difference is None or not math.isfinite(difference):
        return head + " The trial variance is unknown: retrain each group's best (`tunebook retrain`) before concluding."
    if difference > 2 * sd:
        return head + f" The difference is larger than the trial variance: {top.group} is better."
    if difference > sd:
        return head + " The difference is only somewhat larger than the trial variance: retrain both bests to confirm."
    return head + " The difference is within the trial variance: the study does not separate them."
