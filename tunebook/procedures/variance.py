"""Trial variance and the decision to adopt a change.

The playbook ("Determining whether to adopt a training pipeline change or
hyperparameter configuration"): before adopting a candidate, retrain the best
trial of the baseline and of the candidate several times with different
seeds (trial variance), and adopt the candidate only if its improvement is
larger than that variance.

- :func:`retrain` makes a replicate study: the trial's configuration, ``n`` seeds;
- :func:`compare` tests the difference (Welch's t-test, Hedges' g);
- :func:`adopt` records the candidate as the experiment's new baseline, with the evidence.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tunebook._errors import SpecError
from tunebook.procedures._common import Conclusion, best_params, derived_study, record
from tunebook.space import SearchSpace
from tunebook.storage.base import Storage
from tunebook.study import Study


def retrain(study: Study, trial: str | int = "best", n: int = 5) -> Study:
    """A replicate study of one trial's configuration with ``n`` new seeds (not run yet)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise SpecError("--n", f"need at least 2 retrains to measure variance, got {n!r}", "e.g. --n 5")
    number = None if trial == "best" else int(trial)
    params, source_trial = best_params(study, number)
    name = f"{study.name}-retrain-{source_trial.number}"
    return derived_study(
        study, name, space=SearchSpace(fixed=params, allow_fixed_only=True), trials=n, design="replicates",
        goal=f"Trial variance of {study.name} #{source_trial.number}: {n} seeds of its configuration",
    )


def _samples(study: Study) -> tuple[Study, np.ndarray]:
    """The retrained values behind a study: its own if it is a replicate study, else its retrain study's."""
    if study.design != "replicates":
        children = [s for s in study.storage.list_studies() if s.parent == study.name and s.spec.get("design") == "replicates"]
        if not children:
            raise SpecError(
                "study", f"{study.name!r} has no retrain study to measure its trial variance",
                f"run `tunebook retrain {study.name} --trial best --n 5` first",
            )
        study = Study(children[-1], study.storage)
    values = np.array([t.value for t in study.trials(["completed"]) if t.value is not None], dtype=float)
    if len(values) < 2:
        raise SpecError("study", f"{study.name!r} has {len(values)} completed retrain(s)", "run the retrain study to completion")
    return study, values


def welch(baseline: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Welch's t-test and Hedges' g (candidate minus baseline)."""
    from scipy import stats

    n1, n2 = len(baseline), len(candidate)
    diff = float(candidate.mean() - baseline.mean())
    pooled = math.sqrt(((n1 - 1) * baseline.var(ddof=1) + (n2 - 1) * candidate.var(ddof=1)) / (n1 + n2 - 2))
    if pooled == 0:  # identical retrains on both sides: the test is degenerate
        same = diff == 0
        return {"t": 0.0 if same else math.copysign(math.inf, diff), "p_value": 1.0 if same else 0.0,
                "hedges_g": 0.0 if same else math.copysign(math.inf, diff)}
    result = stats.ttest_ind(candidate, baseline, equal_var=False)
    g = diff / pooled * (1 - 3 / (4 * (n1 + n2) - 9))  # Cohen's d with the small-sample correction
    return {"t": float(result.statistic), "p_value": float(result.pvalue), "hedges_g": float(g)}


def decide(baseline: np.ndarray, candidate: np.ndarray, mode: str, alpha: float = 0.05) -> Conclusion:
    """The adoption decision from retrained values of both (the test of :func:`compare`)."""
    diff = float(candidate.mean() - baseline.mean())
    better = diff < 0 if mode == "min" else diff > 0
    test = welch(baseline, candidate)
    evidence: dict[str, Any] = {
        "baseline": {"n": len(baseline), "mean": float(baseline.mean()), "std": float(baseline.std(ddof=1))},
        "candidate": {"n": len(candidate), "mean": float(candidate.mean()), "std": float(candidate.std(ddof=1))},
        "difference": diff, "mode": mode, "alpha": alpha, **test,
    }
    significant = test["p_value"] < alpha
    if better and significant:
        text = (f"Adopt the candidate: it is better by {abs(diff):.4g} (p = {test['p_value']:.2g}, Hedges' g = "
                f"{test['hedges_g']:.2f}), more than the trial variance explains.")
        evidence["recommendation"] = "adopt"
    elif significant:
        text = f"Do not adopt: the candidate is worse by {abs(diff):.4g} (p = {test['p_value']:.2g})."
        evidence["recommendation"] = "reject"
    else:
        text = (f"Do not adopt yet: the difference ({diff:+.4g}) is within the trial variance (p = {test['p_value']:.2g}); "
                "more retrains would tell, or the change does not matter.")
        evidence["recommendation"] = "inconclusive"
    return Conclusion("compare", text, evidence)


def compare(baseline: Study, candidate: Study, alpha: float = 0.05) -> Conclusion:
    """Compare two studies by their retrained values; the conclusion is recorded in the notebook."""
    if baseline.objective != candidate.objective:
        raise SpecError("candidate", f"objectives differ: {baseline.objective} vs {candidate.objective}",
                        "compare studies of the same objective")
    base_study, base_values = _samples(baseline)
    cand_study, cand_values = _samples(candidate)
    result = decide(base_values, cand_values, baseline.objective[1], alpha)
    result.evidence.update({"baseline_study": baseline.name, "candidate_study": candidate.name})
    result.studies = [base_study.name, cand_study.name]
    return record(candidate, result)


def adopt(candidate: Study, *, experiment: str | None = None, force: bool = False) -> Conclusion:
    """Make ``candidate`` the experiment's baseline, keeping the decision's evidence."""
    store: Storage = candidate.storage
    experiment = experiment or candidate.experiment
    decisions = [n for n in store.get_notes(kind="compare") if n["evidence"].get("candidate_study") == candidate.name]
    if not decisions and not force:
        raise SpecError("candidate", f"no comparison of {candidate.name!r} against a baseline is recorded",
                        "run `tunebook compare BASELINE CANDIDATE` first (or pass --force)")
    last = decisions[-1] if decisions else None
    if last is not None and last["evidence"].get("recommendation") != "adopt" and not force:
        raise SpecError("candidate", f"the last comparison said: {last['conclusion']}", "pass --force to adopt anyway")
    previous = store.get_baselines().get(experiment)
    try:
        store.set_baseline(experiment, candidate.name)
    except KeyError:
        raise SpecError("--experiment", f"no experiment named {experiment!r}", "name the candidate's experiment") from None
    text = f"Adopted {candidate.name} as the baseline of {experiment}" + (f" (was {previous})." if previous else ".")
    evidence = {"previous_baseline": previous, "decision": last["conclusion"] if last else "forced",
                "decision_evidence": last["evidence"] if last else None}
    store.add_note("adopt", text, evidence, experiment=experiment, study=candidate.name)
    return Conclusion("adopt", text, evidence)


def trial_variance(replicas: Study) -> dict[str, Any] | None:
    """The spread of a replicate study's completed values (n, mean, sample std), or None below two."""
    values = np.array([t.value for t in replicas.trials(["completed"]) if t.value is not None], dtype=float)
    if len(values) < 2:
        return None
    return {"n": len(values), "mean": float(values.mean()), "std": float(values.std(ddof=1))}


__all__ = ["adopt", "compare", "decide", "retrain", "trial_variance", "welch"]
