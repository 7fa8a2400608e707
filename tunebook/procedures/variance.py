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

from tunebook.errors import SpecError
from tunebook.procedures._common import (
    Conclusion, best_params, derived_studies, derived_study, free_name, lineage, record, run_command, study_train,
)
from tunebook.space import SearchSpace
from tunebook.storage.base import Storage
from tunebook.study import Study


def retrain(study: Study, trial: str | int = "best", n: int = 5, *, train: str | None = None) -> Study:
    """A replicate study of one trial's configuration with ``n`` new seeds (not run yet).

    Its lineage says ``retrain`` of ``study`` #N, which is what :func:`compare` looks for.
    ``train`` (a ``module:function``) overrides the stored training function; when the study stores
    none, the replicate study stores none either and ``tb.run(replicas, train)`` brings it.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise SpecError("--n", f"need at least 2 retrains to measure variance, got {n!r}", "e.g. --n 5")
    number = None if trial == "best" else int(trial)
    params, source_trial = best_params(study, number)
    # the CLI checks the training function before this; from Python, tb.run(replicas, train) can bring it
    ref = train or (study_train(study)[0] if study.train_ref else None)
    name = f"{study.name}-retrain-{source_trial.number}"
    existing = study.storage.get_study(name)
    if existing is not None and (existing.spec.get("derived") or {}).get("trial") != source_trial.number:
        name = free_name(study, name)
    return derived_study(
        study, name, kind="retrain", trial=source_trial.number, train=ref,
        space=SearchSpace(fixed=params, allow_fixed_only=True), trials=n, design="replicates",
        # no count in the goal: `--n` raised later extends the same retrain study (the spec is the same)
        goal=f"Trial variance of {study.name} #{source_trial.number}: new seeds of its configuration",
    )


def _is_retrain(study: Study) -> bool:
    derived = lineage(study)
    if derived is not None:
        return derived["kind"] == "retrain"
    # a store from before lineage: a replicate study whose goal says it is a retrain
    return study.design == "replicates" and study.goal.startswith("Trial variance of ")


def retrains_of(study: Study) -> Study:
    """The retrain study behind ``study``: itself when it is one, else the one of its best trial.

    Raises :class:`SpecError` (one line) when there is none, or more than one to choose from.
    Early-instability, warmup and other derived studies are never retrains; empty ones are ignored.
    """
    if _is_retrain(study):
        return study
    if lineage(study) is not None or study.design == "replicates":
        kind = (lineage(study) or {}).get("kind", "replicate")
        article = "an" if kind[0] in "aeiou" else "a"
        raise SpecError("study", f"{study.name!r} is {article} {kind} study, not a retrain",
                        "name the tuned study (its best trial's retrains are used) or a retrain study")
    best = study.best_trial()
    if best is None:
        raise SpecError("study", f"study {study.name!r} has no completed trial yet", "run it first")
    found = derived_studies(study, "retrain", trial=best.number)
    legacy = [Study(r, study.storage) for r in study.storage.list_studies()
              if r.parent == study.name and not r.spec.get("derived") and r.spec.get("design") == "replicates"
              and r.goal.startswith(f"Trial variance of {study.name} #{best.number}:")]
    found += [s for s in legacy if s.counts()["completed"]]
    if len(found) > 1:
        raise SpecError("study", f"{study.name!r} has {len(found)} retrain studies of its best trial #{best.number}: "
                        f"{', '.join(s.name for s in found)}", "name the one to use instead of the tuned study")
    if not found:
        others = [s.name for s in derived_studies(study, "retrain")]
        also = f" (it has retrains of other trials: {', '.join(others)})" if others else ""
        raise SpecError("study", f"{study.name!r} has no retrains of its best trial #{best.number}{also}",
                        f"run `tunebook retrain {study.name} --trial best --n 5` first")
    return found[0]


def _samples(study: Study) -> tuple[Study, np.ndarray]:
    """The retrained values behind a study (see :func:`retrains_of`)."""
    study = retrains_of(study)
    values = np.array([t.value for t in study.trials(["completed"]) if t.value is not None], dtype=float)
    if len(values) < 2:
        raise SpecError("study", f"{study.name!r} has {len(values)} completed retrain(s)",
                        f"run it to completion: `{run_command(study.name, study.storage)}`")
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
    if base_study.name == cand_study.name:
        raise SpecError("candidate", f"both sides are the retrains of {base_study.name!r}", "compare two different studies")
    result.evidence.update({"baseline_study": baseline.name, "candidate_study": candidate.name,
                            "baseline_retrains": base_study.name, "candidate_retrains": cand_study.name,
                            "candidate_source": (lineage(cand_study) or {}).get("source")})
    result.studies = [base_study.name, cand_study.name]
    return record(candidate, result)


def adopt(candidate: Study, *, experiment: str | None = None, force: bool = False) -> Conclusion:
    """Make ``candidate`` the experiment's baseline, keeping the decision's evidence."""
    store: Storage = candidate.storage
    experiment = experiment or candidate.experiment
    decisions = [n for n in store.get_notes(kind="compare")
                 if candidate.name in (n["evidence"].get("candidate_study"), n["evidence"].get("candidate_source"))]
    if not decisions and not force:
        raise SpecError("candidate", f"no comparison of {candidate.name!r} against a baseline is recorded",
                        "run `tunebook compare BASELINE CANDIDATE` first (or pass --force)")
    last = decisions[-1] if decisions else None
    if last is not None and last["evidence"].get("recommendation") != "adopt" and not force:
        raise SpecError("candidate", f"the last comparison said: {last['conclusion'].rstrip('.')}",
                        "pass --force to adopt anyway")
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




# study variance -------------------------------------------------------------------------
def study_variance_studies(study: Study, seeds: int = 2, *, train: str | None = None) -> list[Study]:
    """``seeds`` copies of ``study`` with other design seeds (same space, budget and steps; not run yet)."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise SpecError("--seeds", f"expected 1 or more, got {seeds!r}", "e.g. --seeds 2")
    if study.design not in ("quasi_random", "random"):
        raise SpecError("study", f"{study.name!r} has design {study.design!r}: only a sampled study has a design seed "
                        "to vary", "name a quasi_random or random study")
    ref = train or study_train(study)[0]
    out = []
    for k in range(1, seeds + 1):
        out.append(derived_study(
            study, f"{study.name}-seed{k}", kind="study-variance", train=ref, space=study.space,
            trials=study.trials_budget, design=study.design, seed=(study.seed + 7919 * k) % 2**31,
            goal=f"Study variance of {study.name}: the same study with design seed #{k}",
        ))
    return out


def _winner(study: Study) -> tuple[float, dict[str, Any]] | None:
    best = study.best_trial()
    if best is None or best.value is None:
        return None
    return float(best.value), {k: best.params.get(k) for k in study.space.scientific}


def study_variance(study: Study, reruns: list[Study]) -> Conclusion:
    """Set the best values of ``study`` and its re-runs against the trial variance (recorded in the notebook)."""
    rows = []
    for s in [study, *reruns]:
        won = _winner(s)
        rows.append({"study": s.name, "seed": s.seed, "best": None if won is None else won[0],
                     "winner": None if won is None else won[1]})
    finished = [r for r in rows if r["best"] is not None]
    evidence: dict[str, Any] = {"studies": rows}
    names = [s.name for s in reruns]
    if len(finished) < 2:
        return record(study, Conclusion("study-variance", "Not concluding: fewer than two of the studies have a completed "
                                        "trial; run the re-runs first (tunebook study-variance ... --run).",
                                        evidence, names, concluded=False))
    bests = np.array([r["best"] for r in finished])
    spread = float(bests.max() - bests.min())
    evidence["spread"] = spread
    try:
        replicas = retrains_of(study)
        spread_of_seeds = trial_variance(replicas)
    except SpecError:
        replicas, spread_of_seeds = None, None
    same_winner = all(r["winner"] == finished[0]["winner"] for r in finished)
    scientific = bool(study.space.scientific)
    winner_text = ""
    if scientific:
        winner_text = (" Every study picked the same scientific values." if same_winner else
                       " The studies picked different scientific values: " +
                       "; ".join(f"{r['study']}: {r['winner']}" for r in finished) + ".")
    values = ", ".join(f"{r['study']} {r['best']:.4g}" for r in finished)
    if spread_of_seeds is None:
        text = (f"Best values {values}: spread {spread:.3g}. Trial variance is unmeasured, so this spread cannot be "
                f"judged: run `tunebook retrain {study.name} --trial best --n 5`, then this again.{winner_text}")
        return record(study, Conclusion("study-variance", text, evidence, names, concluded=False))
    std = spread_of_seeds["std"]
    evidence.update({"trial_std": std, "retrains": replicas.name if replicas else None, "same_winner": same_winner})
    if spread <= 2 * std:
        text = (f"Best values {values} differ by {spread:.3g}, within twice the trial std ({std:.3g}): the study's "
                f"outcome does not hinge on its design seed; a second study would likely find an equally good "
                f"configuration.{winner_text}")
        evidence["stable"] = True
    else:
        text = (f"Best values {values} differ by {spread:.3g}, more than twice the trial std ({std:.3g}): the winner "
                f"depends on the design seed. Sample more trials (raise trials) before trusting it.{winner_text}")
        evidence["stable"] = False
    return record(study, Conclusion("study-variance", text, evidence, names))


__all__ = ["adopt", "compare", "decide", "retrain", "retrains_of", "study_variance", "study_variance_studies",
           "trial_variance", "welch"]
