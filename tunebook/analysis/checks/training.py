"""Training-side checks: Adam's tuning budget, an input-bound pipeline, gradient clipping.

The playbook's FAQ ("How should Adam's hyperparameters be tuned?"): with fewer
than 10 trials tune only the learning rate; 10-25 trials add beta1; 25 and
more add epsilon; well beyond, beta2. Gradient clipping: clip at about the
90th percentile of the unclipped norms; clipping more than half the updates
is extremely aggressive (lower the learning rate instead).
"""

from __future__ import annotations

import math

import numpy as np

from tunebook.analysis.data import StudyData

from .base import INFO, WARNING, Finding, Thresholds, check


def recommend_clipping(norms: np.ndarray, threshold: float | None = None) -> dict[str, float]:
    """The playbook's clipping rule: threshold at the 90th percentile of unclipped norms.

    Returns the recommended threshold and, when a threshold is in use, the share
    of updates it clips.
    """
    norms = np.asarray(norms, dtype=float)
    norms = norms[np.isfinite(norms)]
    out = {"recommended_threshold": float(np.percentile(norms, 90)) if len(norms) else math.nan}
    if threshold is not None and len(norms):
        out["threshold"] = float(threshold)
        out["clipped_share"] = float(np.mean(norms > threshold))
    return out



_ADAM_ALIASES = {
    "learning_rate": ("learning_rate", "lr"),
    "beta1": ("beta1", "b1", "adam_beta1", "momentum"),
    "epsilon": ("epsilon", "eps", "adam_epsilon"),
    "beta2": ("beta2", "b2", "adam_beta2"),
}


def adam_recommendation(trials: int) -> list[str]:
    """The playbook's rule for which Adam hyperparameters a budget of trials can tune."""
    if trials < 10:
        return ["learning_rate"]
    if trials < 25:
        return ["learning_rate", "beta1"]
    if trials < 100:
        return ["learning_rate", "beta1", "epsilon"]
    return ["learning_rate", "beta1", "epsilon", "beta2"]


def _uses_adam(data: StudyData) -> bool:
    values = [v for v in data.fixed.values() if isinstance(v, str)]
    for p in data.space.values():
        values += [v for v in getattr(p, "values", ()) if isinstance(v, str)]
    return any("adam" in v.lower() for v in values)


@check("adam_budget", family="training", order=140)
def check_adam_budget(data: StudyData, th: Thresholds) -> list[Finding]:
    if not _uses_adam(data):
        return []
    n_groups = max(1, len(data.best_by_scientific()) or 1)
    budget = max(1, len(data.trials) // n_groups)
    recommended = adam_recommendation(budget)
    tuned = [canon for canon, aliases in _ADAM_ALIASES.items()
             if any(a in data.space and data.roles.get(a) == "nuisance" for a in aliases)]
    extra = [p for p in tuned if p not in recommended]
    missing = [p for p in recommended if p not in tuned]
    ev = {"trials_per_scientific_value": budget, "recommended": recommended, "tuned": tuned}
    if extra:
        return [Finding(
            "adam_budget", WARNING,
            f"With {budget} trials per scientific value, the playbook tunes only {', '.join(recommended)} of Adam; "
            f"this study also tunes {', '.join(extra)}.",
            f"Fix {', '.join(extra)} (to the defaults) or raise the trial budget.",
            ev,
        )]
    if missing:
        return [Finding(
            "adam_budget", INFO,
            f"With {budget} trials per scientific value, the playbook would also tune {', '.join(missing)} of Adam.",
            f"Consider adding {', '.join(missing)} as nuisance hyperparameters.",
            ev,
        )]
    return []


@check("input_bound", family="training", order=150, uses=("input_bound",))
def check_input_bound(data: StudyData, th: Thresholds) -> list[Finding]:
    best = data.best()
    if best is None:
        return []
    curve = data.curves(best).get("input/wait_fraction")
    if curve is None or not len(curve):
        return []
    # the median window: a wall-clock share, so a few windows slowed by a busy machine must not decide
    share = float(np.nanmedian(curve.values))
    if not share > th.input_bound:
        return []
    return [Finding(
        "input_bound", WARNING,
        f"Input-bound: {share:.0%} of step time is spent waiting for data (trial #{best.number}).",
        "Speed up the input pipeline before tuning further (prefetching, more loader workers, caching, "
        "moving preprocessing off the critical path).",
        {"trial": best.number, "wait_fraction": share},
    )]


@check("gradient_clipping", family="training", order=160, figure="grad_norms", uses=("grad_norm_metric", "clip_params", "clipped_share"))
def check_gradient_clipping(data: StudyData, th: Thresholds) -> list[Finding]:
    best = data.best()
    if best is None:
        return []
    curve = data.curves(best).get(th.grad_norm_metric)
    if curve is None or not len(curve):
        return []
    threshold = next((float(best.params[p]) for p in th.clip_params if isinstance(best.params.get(p), (int, float)) and best.params.get(p)), None)
    rec = recommend_clipping(curve.values, threshold)
    ev = {"trial": best.number, **rec}
    if threshold is not None and rec["clipped_share"] > th.clipped_share:
        return [Finding(
            "gradient_clipping", WARNING,
            f"Clipping at {threshold:g} clips {rec['clipped_share']:.0%} of the updates of trial #{best.number}: "
            "extremely aggressive.",
            "Lower the learning rate instead; if you clip, use about the 90th percentile of the unclipped norms "
            f"({rec['recommended_threshold']:.4g}).",
            ev,
        )]
    return [Finding(
        "gradient_clipping", INFO,
        f"Gradient norms are logged: the playbook's clipping threshold for trial #{best.number} would be "
        f"{rec['recommended_threshold']:.4g} (90th percentile of unclipped norms)"
        + (f"; the current threshold clips {rec['clipped_share']:.0%} of updates." if threshold is not None else "."),
        "Clip at about that value if training shows instability (`tunebook stability`).",
        ev,
    )]
