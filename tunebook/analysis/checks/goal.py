"""The answer to a study's goal: each group's level, the difference with its interval, fairness.

Built after the checks ran, from their findings: a group whose best sits at a
boundary of its range is "limited by" that range, which makes the
comparison not yet fair (the playbook's isolation plot compares the best of
each scientific value only when every value's nuisance hyperparameters were
tuned equally well).

One set of numbers. Where every group's best was re-run with new seeds (the
study's replicates, else retrains), each group's level is the mean of those
runs (the best trial's own value is left out: it was selected as the best of
the search, so it leans to a lucky seed), and the difference of the two best
means is given with its 95% interval from the pooled trial sd (pooled t with
the sd's degrees of freedom). Retrains of a replicated best (``tunebook retrain``,
what ``next`` proposes when the replicates do not separate the groups) join
its replicates. The interval decides: it excludes 0, the better group is
better; it holds 0 and its half-width is at most one pooled trial sd
(:data:`TIE_RULE`), a measured tie (differences larger than the noise are ruled
out); it holds 0 and is wider, *not separated yet*, with the runs of each
group's best that would bring it under one sd (:func:`runs_needed`). Otherwise the levels are the best trials' values,
set against the measured trial sd where one exists; where none does, the answer
says that trial variance is not measured and how to measure it.
"""

from __future__ import annotations

import math

import numpy as np

from tunebook.analysis.answer import GoalAnswer, GroupResult
from tunebook.analysis.data import StudyData

from .base import WARNING, Finding, Thresholds
from .common import Group, fmt, group_view, groups
from .variance import TrialVariance, pooled, replicate_sets, retrain_values, trial_variance

#: Confidence of the interval the answer states.
CONFIDENCE = 0.95
#: Kinds of derived studies that are a next round of their source (compared with the source's replicates).
ROUND_KINDS = ("next-round", "next")
#: When an interval that holds 0 is a tie (the rule stated in the answer).
TIE_RULE = "a tie only when the 95% interval's half-width is at most one pooled trial sd"
#: The most runs of each group's best :func:`runs_needed` looks at.
MAX_RUNS = 1000


def _retrains_of(best_params: dict, retrains: list[tuple[dict, np.ndarray]]) -> np.ndarray | None:
    """The retrained values of a configuration: the retrain studies whose fixed params match it."""
    vals = [v for fixed, v in retrains
            if fixed and all(k in best_params and best_params[k] == x for k, x in fixed.items() if k in best_params)
            and all(fixed.get(k) == x for k, x in best_params.items() if k in fixed)]
    return np.concatenate(vals) if vals else None


def _runs(data: StudyData, g: Group, best_number: int | None, sets: dict[int, np.ndarray],
          retrains: list[tuple[dict, np.ndarray]], best_params: dict | None) -> tuple[np.ndarray | None, str, int | None]:
    """The re-runs of a group's best: its replicates (else those of a former best of the group), else retrains."""
    own = [t.number for t in g.trials if t.number in sets]
    if own:
        of = best_number if best_number in sets else max(own, key=lambda n: len(sets[n]))
        return sets[of], "replicates", of
    if best_params is not None:
        again = _retrains_of(best_params, retrains)
        if again is not None and len(again):
            return again, "retrains", best_number
    return None, "", None


def _t_quantile(dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + CONFIDENCE / 2, dof))


def runs_needed(n1: int, n2: int, dof: int) -> int | None:
    """The fewest runs n of each group's best (each keeps at least its own) with a 95% half-width at most one
    pooled trial sd: t(0.975, dof') * sqrt(1/n1' + 1/n2') <= 1, dof' = dof + the runs added (n >= 2 t^2 for
    equal groups); None beyond :data:`MAX_RUNS`."""
    for n in range(max(n1, n2, 2), MAX_RUNS + 1):
        a, b = max(n1, n), max(n2, n)
        if _t_quantile(dof + (a - n1) + (b - n2)) * math.sqrt(1 / a + 1 / b) <= 1:
            return n
    return None


def _with_retrains(data: StudyData, sets: dict[int, np.ndarray], tv: TrialVariance | None
                   ) -> tuple[dict[int, np.ndarray], TrialVariance | None]:
    """The replicate sets with the retrains of the trial each re-runs added, and the trial sd pooled over them."""
    retrains = retrain_values(data)
    if not sets or not retrains:
        return sets, tv
    params = {t.number: t.params for t in data.trials}
    out = {}
    for of, values in sets.items():
        again = _retrains_of(params.get(of) or {}, retrains) if of in params else None
        out[of] = values if again is None else np.concatenate([values, again])
    got = pooled(list(out.values()))
    if got is None or tv is None or tv.source != "replicates":
        return out, tv
    return out, TrialVariance(got[0], got[1], got[2], "replicates", got[3])


def build_answer(data: StudyData, findings: list[Finding], th: Thresholds) -> GoalAnswer:
    s = data.sign()
    sets, tv = _with_retrains(data, replicate_sets(data), trial_variance(data, th))
    retrains = retrain_values(data) if not sets else []
    results: list[GroupResult] = []
    for g in groups(data, th.scientific_buckets):
        view = group_view(data, g)
        best = view.best()
        r = GroupResult(
            group=g.label, values=dict(g.values), n_trials=len(view.finished), n_completed=len(view.completed),
            best_value=None if best is None else float(best.value),  # type: ignore[arg-type]
            best_trial=None if best is None else best.number, best_step=None if best is None else best.best_step,
        )
        runs, source, of = _runs(data, g, r.best_trial, sets, retrains, None if best is None else best.params)
        if runs is not None and len(runs):
            r.mean, r.n_runs, r.runs_source, r.runs_of = float(np.mean(runs)), len(runs), source, of
            r.sd = float(np.std(runs, ddof=1)) if len(runs) >= 2 else None
        for f in findings:
            if f.check == "search_space_boundary" and f.severity == WARNING and f.evidence.get("group", "") == g.label:
                r.limited_by.append(f"{f.evidence['param']} at its {f.evidence['side']} bound ({f.evidence['bound']:g})")
        results.append(r)

    done = [r for r in results if r.best_value is not None]
    by_means = bool(done) and all(r.mean is not None for r in done)

    def level(r: GroupResult) -> float:
        return s * (r.mean if by_means else r.best_value)  # type: ignore[operator]

    ordered = sorted(done, key=level)
    best_group = ordered[0].group if ordered else None
    difference = (level(ordered[1]) - level(ordered[0])) if len(ordered) >= 2 else None
    half = None
    if by_means and difference is not None and tv is not None:
        n1, n2 = ordered[0].n_runs, ordered[1].n_runs
        half = _t_quantile(tv.dof) * tv.sd * math.sqrt(1 / n1 + 1 / n2)
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
        if f.check == "nothing_learned" and f.severity == WARNING:
            reasons.insert(0, f"no trial of {f.evidence.get('group') or 'the study'} learned (see nothing_learned): "
                              "its values are where training started, not what its hyperparameters can reach")
        if f.check == "failed_trials":
            for label in f.evidence.get("short_groups", ()):
                bad, n = f.evidence["groups"][label]
                reasons.append(f"{label} lost {bad} of its {n} trials to failures (fix them and --retry-failed)")
        if f.check == "unused_hyperparameter" and f.evidence.get("role") == "scientific":
            reasons.insert(0, f"the training function never reads the scientific hyperparameter "
                              f"{f.evidence['param']!r}, so its values cannot differ")
    fair = not reasons
    interval = _interval_text(ordered, difference, half, tv) if half is not None else ""
    answer = GoalAnswer(
        goal=data.study.goal, objective=(data.metric, data.mode), groups=results, best_group=best_group,
        difference=difference, trial_sd=None if tv is None else tv.sd, trial_sd_source="" if tv is None else tv.source,
        fair=fair, reasons=reasons, verdict="", trial_dof=None if tv is None else tv.dof,
        trial_runs=None if tv is None else tv.runs, interval=half, interval_text=interval,
        compared="means" if by_means else "bests",
    )
    if half is not None and difference is not None and tv is not None:
        answer.separation = "separated" if difference - half > 0 else "tie" if half <= tv.sd else "not separated"
        if answer.separation == "not separated":
            answer.runs_needed = runs_needed(ordered[0].n_runs, ordered[1].n_runs, tv.dof)
    answer.verdict = _verdict(data, answer, ordered, tv)
    answer.versus_source = versus_source(data, th, answer)
    if answer.versus_source:
        answer.verdict += " " + answer.versus_source
    return answer


def _interval_text(ordered: list[GroupResult], difference: float | None, half: float, tv: TrialVariance) -> str:
    """E.g. ``"0.031 ± 0.012 (95%, 3+3 runs, pooled sd 0.008, 4 dof)"``."""
    return (f"{fmt(difference)} \u00b1 {fmt(half)} ({CONFIDENCE:.0%}, {ordered[0].n_runs}+{ordered[1].n_runs} runs, "
            f"pooled sd {fmt(tv.sd)}, {tv.dof} dof)")


def _n_runs(n: int) -> str:
    return f"{n} run" + ("" if n == 1 else "s")


def not_measured(data: StudyData) -> str:
    """Why the study has no trial variance, and how to measure it."""
    study = data.study
    retrain = f"`tunebook retrain {study.name} --trial N` for each group's best trial N"
    how = f"set `replicates: 3` in the spec (each group's best re-run with 3 new seeds, within trials), or run {retrain}"
    try:
        plan = study.replicate_plan
    except Exception:  # noqa: BLE001 - a study of a design not registered here
        plan = None
    if plan is not None and plan.per_group and not data.replicates:
        return ("Trial variance is not measured yet: each group's best is re-run with new seeds once every "
                f"search trial has finished (`tunebook run {study.name}`).")
    if plan is not None and plan.skipped:
        return (f"Trial variance is not measured: the replicates were skipped ({plan.skipped}); raise trials, "
                f"or run {retrain}.")
    if plan is not None and plan.asked == 0:
        how = f"remove `replicates: 0` from the spec (a new study), or run {retrain}"
    return f"Trial variance is not measured: {how}."


def _verdict(data: StudyData, a: GoalAnswer, ordered: list[GroupResult], tv: TrialVariance | None) -> str:
    metric, results, reasons, difference = data.metric, a.groups, a.reasons, a.difference
    if not ordered:
        failed = sum(t.state == "failed" for t in data.trials)
        if failed:
            return (f"No trial has completed: {failed} failed (see `tunebook status {data.study.name}`); "
                    "nothing to conclude until they are fixed and run again.")
        return "No trial has completed yet: nothing to conclude."
    top = ordered[0]
    if len(results) == 1 and not top.group:
        text = f"The best {metric} is {fmt(top.best_value)} (trial #{top.best_trial})."
        if top.mean is not None:
            text += (f" Re-run with new seeds ({top.n_runs} {top.runs_source}), it averages {fmt(top.mean)}"
                     + (f" (sd {fmt(top.sd)})." if top.sd is not None else "."))
        if reasons:
            text += " It may not be the best this setup can do: " + "; ".join(reasons) + "."
        return text
    if len(ordered) == 1:
        return f"Only {top.group} has completed trials (best {metric} {fmt(top.best_value)}): nothing to compare yet."
    runner = ordered[1]
    if a.compared == "means":
        runs = f"{top.runs_source} of each group's best"
        lead = (f"{top.group} has the best mean {metric} over {runs} ({fmt(top.mean)}, {_n_runs(top.n_runs)}), "
                f"ahead of {runner.group} ({fmt(runner.mean)}, {_n_runs(runner.n_runs)}) by ")
        head = lead + (a.interval_text or fmt(difference)) + "."
    elif difference == 0:
        head = f"{top.group} and {runner.group} tie on the best {metric} ({fmt(top.best_value)})."
    else:
        size = f", {difference / tv.sd:.1f} trial sd ({tv.describe()}, from {tv.source})" \
            if tv is not None and tv.sd > 0 and difference is not None else ""
        head = (f"{top.group} has the best {metric} ({fmt(top.best_value)}), ahead of {runner.group} "
                f"({fmt(runner.best_value)}) by {fmt(difference)}{size}.")
    unread = [r for r in reasons if r.startswith("the training function never reads")]
    if unread:  # not a matter of more trials: the training function or the spec is wrong
        return (head + " This study cannot answer its goal: " + "; ".join(unread) + ". Fix the name in the training "
                "function or the spec, then run the study again under a new name.")
    measured = tv is not None and tv.sd > 0
    if not a.fair:
        return (head + " The comparison is not yet fair: " + "; ".join(reasons) + ". Do not conclude yet."
                + ("" if measured else " " + not_measured(data)))
    if not measured or difference is None or not math.isfinite(difference):
        return head + " " + not_measured(data) + " Until then the difference cannot be judged."
    if a.interval is not None:
        if a.separation == "separated":
            return head + f" The interval excludes 0: {top.group} is better."
        if a.separation == "tie":
            return (head + f" The interval includes 0 and its half-width ({fmt(a.interval)}) is at most one pooled "
                    f"trial sd ({fmt(tv.sd)}): a measured tie ({TIE_RULE}); differences larger than the trial "
                    "variance are ruled out.")
        return head + " " + _not_separated(a, top, runner, tv)
    if difference > 2 * tv.sd:
        return head + f" The difference is larger than the trial variance: {top.group} is better."
    if difference > tv.sd:
        return head + " The difference is only somewhat larger than the trial variance: re-run both bests to confirm."
    return head + " The difference is within the trial variance: the study does not separate them."


def _not_separated(a: GoalAnswer, top: GroupResult, runner: GroupResult, tv: TrialVariance) -> str:
    """The verdict when the interval holds 0 but is wider than one trial sd, with the runs that would settle it."""
    text = (f"The interval includes 0 but its half-width ({fmt(a.interval)}) is {a.interval / tv.sd:.1f} pooled trial "
            f"sd ({fmt(tv.sd)}): not separated yet, not a tie ({TIE_RULE}).")
    n = a.runs_needed
    if n is None:
        return text + f" No number of runs up to {MAX_RUNS} per group brings it under one sd."
    dof = tv.dof + max(n - top.n_runs, 0) + max(n - runner.n_runs, 0)
    return (text + f" {n} runs of each group's best ({top.n_runs} and {runner.n_runs} now) would bring it under one "
            f"sd: t(0.975, {dof} dof) x sqrt(1/{n} + 1/{n}) = {_t_quantile(dof) * math.sqrt(2 / n):.2f} <= 1, "
            f"i.e. n >= 2 t^2 = {2 * _t_quantile(dof) ** 2:.1f}.")


def versus_source(data: StudyData, th: Thresholds, answer: GoalAnswer) -> str:
    """A next round against its source: how far it moved the objective, in the source's trial sd."""
    derived = data.study.record.spec.get("derived") or {}
    if derived.get("kind") not in ROUND_KINDS or not derived.get("source"):
        return ""
    from tunebook.analysis.data import load
    from tunebook.study import load_study

    try:
        source = load(load_study(derived["source"], data.study.storage))
    except Exception:  # noqa: BLE001 - the source is gone from this store
        return ""
    here = _study_level(data, answer)
    src_tv = trial_variance(source, th)
    src_answer = build_answer(source, [], th)
    there = _study_level(source, src_answer)
    if here is None or there is None:
        return ""
    (mine, how_mine), (theirs, how_theirs) = here, there
    gain = data.sign() * (theirs - mine)
    name = f"round {data.study.record.round}"
    moved = f"improved {data.metric} by {fmt(gain)}" if gain > 0 else f"did not improve {data.metric} ({fmt(-gain)} worse)"
    text = f"Against {source.study.name}: {name} {moved} ({how_mine} {fmt(mine)} against {how_theirs} {fmt(theirs)}"
    if src_tv is None:
        return text + f"; {source.study.name}'s trial variance is not measured, so the size cannot be judged)."
    return text + f"; {gain / src_tv.sd:.1f} source trial sd, sd {src_tv.describe()} from its {src_tv.source})."


def _study_level(data: StudyData, answer: GoalAnswer) -> tuple[float, str] | None:
    """A study's level: the mean of its best group's re-runs, else of all its trials when they are one
    configuration with seeds (a next round's long runs), else its best value."""
    best = next((r for r in answer.groups if r.group == answer.best_group), None)
    if best is not None and best.mean is not None:
        return best.mean, f"mean of {best.n_runs} {best.runs_source}"
    values = [float(t.value) for t in data.completed]  # type: ignore[arg-type]
    if data.study.design == "replicates" and values:
        return float(np.mean(values)), f"mean of {len(values)} runs"
    if best is not None and best.best_value is not None:
        return best.best_value, "best"
    return None
