"""The playbook's checklist, as functions that return findings.

Before trusting a study, the playbook asks ("Extracting insight from
experimental results"): is the search space big enough (boundaries)? have we
sampled enough points? what fraction of trials is infeasible? how do the
training curves of the best trials look (overfitting, step-to-step variance,
still improving, saturated, training loss rising)? Each check below answers
one question and returns :class:`Finding` objects with a stable ``check`` id.

Every threshold lives in :class:`Thresholds`, with its default and meaning;
pass your own to :func:`run_diagnostics` (or ``tb.analyze(study, thresholds=...)``).
Curves are read as "loss-like" (lower is better) after multiplying by the
objective's sign, so each check works for ``min`` and ``max`` objectives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from tunebook.analysis.data import Curve, StudyData, TrialRow

INFO, WARNING = "info", "warning"

CHECKS = (
    "search_space_boundary",
    "infeasible_share",
    "infeasible_region",
    "overfitting",
    "step_variance",
    "still_improving",
    "saturated_early",
    "train_loss_rising",
    "periodic_validation",
    "max_train_steps",
    "sampled_enough",
    "adam_budget",
    "input_bound",
    "gradient_clipping",
    "instability",
)


@dataclass(frozen=True)
class Finding:
    """One answer of the checklist: ``check`` is a stable id from :data:`CHECKS`."""

    check: str
    severity: str
    message: str
    action: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Thresholds:
    """The checklist's defaults. Fractions of a range are in the scaled (log or linear) axis."""

    #: boundary: the best trial lies in this outer share of a numeric range...
    boundary_fraction: float = 0.1
    #: ...and at least this share of the top trials lies in twice that outer share.
    boundary_top_share: float = 1 / 3
    #: top trials: max(top_k_min, top_k_share * completed).
    top_k_min: int = 3
    top_k_share: float = 0.1
    #: infeasible share above which the study warns (below: info).
    infeasible_share: float = 0.25
    #: infeasible region: look this far (scaled range) beyond the best value...
    infeasible_window: float = 0.2
    #: ...and warn when at least this share of the trials there is infeasible.
    infeasible_region_share: float = 0.5
    #: curves: how many of the best trials to examine (plus the best of each scientific value).
    curve_top_k: int = 3
    #: overfitting: the validation curve ends this share of its improvement above its best.
    overfit_rise: float = 0.2
    #: step variance: residual std (after a 5-point moving average) over the curve's range.
    step_noise: float = 0.03
    #: still improving: improvement over the last 20% of steps, as a share of the whole improvement.
    still_improving: float = 0.02
    #: saturated early: within `saturation_tol` of its best before this share of max_train_steps.
    saturated_share: float = 0.1
    saturation_tol: float = 0.02
    #: training loss rising: its last 20% sits this share of its improvement above its minimum.
    train_rise: float = 0.25
    #: the training metric the curve checks read.
    train_metric: str = "train/loss"
    #: periodic validation: Fisher's g-test on the detrended curve rejects white noise at this p-value,
    periodic_pvalue: float = 0.01
    #: the residual is at least this large relative to the curve's range,
    periodic_amplitude: float = 0.02
    #: and the period repeats at least this many times.
    periodic_cycles: float = 3.0
    #: max_train_steps: this share of the top-half trials has its best step in the first 10%
    #: (too long) or the last 25% (train longer).
    best_step_share: float = 0.8
    best_step_early: float = 0.1
    best_step_late: float = 0.75
    #: sampled enough: the median best-of-k still improves, from k = n/2 to n, by this share of
    #: (median trial value - best value).
    sampled_enough_tol: float = 0.05
    bootstrap_samples: int = 500
    #: input-bound: share of step time spent waiting for data (metric `input/wait_fraction`).
    input_bound: float = 0.2
    #: gradient clipping: metric names of the unclipped total norm and the clipping threshold parameter.
    grad_norm_metric: str = "grad/norm"
    clip_params: tuple[str, ...] = ("grad_clip", "clip_norm", "max_grad_norm", "gradient_clipping")
    #: clipping more than this share of updates is "extremely aggressive".
    clipped_share: float = 0.5
    #: instability: after the first 10% of steps, a spike exceeds three times the rolling median
    #: and this share of the loss's improvement.
    spike_fraction: float = 0.5


# small numerical helpers ------------------------------------------------------
def moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """Centered moving average with shrinking windows at the ends (same length)."""
    if len(y) == 0 or window <= 1:
        return y.astype(float)
    half = window // 2
    cumsum = np.concatenate([[0.0], np.cumsum(y, dtype=float)])
    idx = np.arange(len(y))
    lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, len(y))
    return (cumsum[hi] - cumsum[lo]) / (hi - lo)


def initial_level(y: np.ndarray) -> float:
    """Where a curve starts: the median of its first three points (robust to one outlier)."""
    return float(np.median(y[:3]))


def _loss_like(curve: Curve, sign: float) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(curve.values)
    return curve.steps[ok], sign * curve.values[ok]


def top_k(data: StudyData, th: Thresholds) -> list[TrialRow]:
    ranked = data.ranked()
    k = max(th.top_k_min, int(math.ceil(th.top_k_share * len(ranked))))
    return ranked[:k]


def curve_trials(data: StudyData, th: Thresholds) -> list[TrialRow]:
    """The trials whose curves the checklist reads: the best few and the best of each scientific value."""
    chosen = {t.number: t for t in data.ranked()[: th.curve_top_k]}
    for t in data.best_by_scientific().values():
        chosen.setdefault(t.number, t)
    return [chosen[n] for n in sorted(chosen)]


def bootstrap_best_of_k(
    values: np.ndarray, ks: list[int], samples: int, rng: np.random.Generator
) -> dict[int, np.ndarray]:
    """Best-of-k of ``values`` (loss-like; +inf for infeasible) resampled with replacement.

    One draw of ``max(ks)`` trials per sample serves every k (a running minimum), so
    each sample's best-of-k never gets worse as k grows.
    """
    draws = values[rng.integers(0, len(values), size=(samples, max(ks)))]
    running = np.minimum.accumulate(draws, axis=1)
    return {k: running[:, k - 1] for k in ks}


def bootstrap_ks(n: int) -> list[int]:
    """k = 1..n, thinned geometrically beyond 30 points."""
    if n <= 30:
        return list(range(1, n + 1))
    return sorted({int(round(x)) for x in np.geomspace(1, n, 30)} | {n, max(1, n // 2)})


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


# the checks -----------------------------------------------------------------
def check_search_space_boundary(data: StudyData, th: Thresholds) -> list[Finding]:
    best = data.best()
    if best is None:
        return []
    top = top_k(data, th)
    findings = []
    for name, param in data.numeric_params().items():
        if name not in best.params:  # a conditional name of another group
            continue
        param = data.param_for(best, name) or param
        u_best = data.unit(name, best.params[name], best)
        for side, near, far in (("upper", lambda u: u >= 1 - th.boundary_fraction, lambda u: u >= 1 - 2 * th.boundary_fraction),
                                ("lower", lambda u: u <= th.boundary_fraction, lambda u: u <= 2 * th.boundary_fraction)):
            share = np.mean([far(data.unit(name, t.params[name], t)) for t in data.with_param(name, top)])
            if near(u_best) and share >= th.boundary_top_share:
                bound = param.high if side == "upper" else param.low
                findings.append(Finding(
                    "search_space_boundary", WARNING,
                    f"The best trial's {name} = {best.params[name]:.4g} is near the {side} boundary "
                    f"({bound:g}) of the search space, with {share:.0%} of the top {len(top)} trials there too: "
                    "the best point may lie outside the range.",
                    f"Expand the search space for {name} in the {side} direction and run a new study.",
                    {"param": name, "side": side, "best_value": best.params[name], "bound": bound,
                     "top_share_near": float(share), "top_k": len(top)},
                ))
    return findings


def check_infeasible_share(data: StudyData, th: Thresholds) -> list[Finding]:
    finished = data.finished
    if not finished:
        return []
    n_bad = len(data.infeasible)
    share = n_bad / len(finished)
    if n_bad == 0:
        return []
    reasons: dict[str, int] = {}
    for t in data.infeasible:
        key = (t.infeasible_reason or "unknown").split(" at step")[0].split(" = ")[0]
        reasons[key] = reasons.get(key, 0) + 1
    evidence = {"infeasible": n_bad, "finished": len(finished), "share": share, "reasons": reasons}
    if share > th.infeasible_share:
        return [Finding(
            "infeasible_share", WARNING,
            f"{n_bad} of {len(finished)} finished trials ({share:.0%}) were infeasible.",
            "Shrink or reparameterize the search space to avoid sampling infeasible points; "
            "if infeasible trials appear where they should not, look for a bug.",
            evidence,
        )]
    return [Finding(
        "infeasible_share", INFO,
        f"{n_bad} of {len(finished)} finished trials ({share:.0%}) were infeasible.",
        "No action needed at this share; they are plotted as red x.",
        evidence,
    )]


def check_infeasible_region(data: StudyData, th: Thresholds) -> list[Finding]:
    best = data.best()
    if best is None or not data.infeasible:
        return []
    findings = []
    for name in data.numeric_params():
        if name not in best.params:  # a conditional name of another group
            continue
        u_best = data.unit(name, best.params[name], best)
        for side, direction in (("upper", 1), ("lower", -1)):
            near = [t for t in data.with_param(name, data.finished)
                    if 0 < direction * (data.unit(name, t.params[name], t) - u_best) <= th.infeasible_window]
            bad = [t for t in near if t.state == "infeasible"]
            if bad and len(bad) / len(near) >= th.infeasible_region_share:
                nearest = min(bad, key=lambda t: abs(data.unit(name, t.params[name], t) - u_best))
                findings.append(Finding(
                    "infeasible_region", WARNING,
                    f"The best {name} = {best.params[name]:.4g} sits next to an infeasible region on its {side} side "
                    f"({len(bad)} of {len(near)} trials just {'above' if side == 'upper' else 'below'} it diverged, "
                    f"the nearest at {nearest.params[name]:.4g}): a sign of training instability.",
                    "Stabilize training so that the best point is not at the edge of stability: "
                    "try learning-rate warmup or gradient clipping (`tunebook warmup`), then re-tune.",
                    {"param": name, "side": side, "best_value": best.params[name],
                     "nearest_infeasible": nearest.params[name], "infeasible_near": len(bad), "near": len(near)},
                ))
    return findings


def _for_curves(
    data: StudyData,
    th: Thresholds,
    metric: str,
    test: Callable[[np.ndarray, np.ndarray], dict[str, Any] | None],
    sign: float,
    trials: list[TrialRow] | None = None,
) -> list[tuple[TrialRow, dict[str, Any]]]:
    hits = []
    for t in trials if trials is not None else curve_trials(data, th):
        curve = data.curves(t).get(metric)
        if curve is None:
            continue
        steps, y = _loss_like(curve, sign)
        if len(y) < 4:
            continue
        found = test(steps, y)
        if found is not None:
            hits.append((t, found))
    return hits


def _numbers(hits: list[tuple[TrialRow, dict[str, Any]]]) -> list[int]:
    return [t.number for t, _ in hits]


def _curve_finding(
    check: str,
    hits: list[tuple[TrialRow, dict[str, Any]]],
    message: Callable[[TrialRow, dict[str, Any]], str],
    action: str,
) -> list[Finding]:
    """One warning for a curve check, worded from its first hit, listing every trial that hit."""
    if not hits:
        return []
    t, ev = hits[0]
    return [Finding(check, WARNING, message(t, ev), action, {"trials": _numbers(hits), **ev})]


def check_overfitting(data: StudyData, th: Thresholds) -> list[Finding]:
    def test(steps: np.ndarray, y: np.ndarray) -> dict[str, Any] | None:
        ys = moving_average(y, 3)
        b = int(np.argmin(ys))
        gain = ys[0] - ys[b]
        rise = ys[-1] - ys[b]
        if gain > 0 and b < len(ys) - 1 and rise > th.overfit_rise * gain:
            return {"best_step": int(steps[b]), "rise_share": float(rise / gain)}
        return None

    best_each = list(data.best_by_scientific().values())
    hits = _for_curves(data, th, data.metric, test, data.sign(), best_each)
    return _curve_finding(
        "overfitting", hits,
        lambda t, ev: (
            f"Problematic overfitting: the validation {data.metric} of trial #{t.number} gets worse after step "
            f"{ev['best_step']} (it gives back {ev['rise_share']:.0%} of its improvement); "
            f"{len(hits)} of {len(best_each)} best-per-scientific-value trials do this."
        ),
        "Add regularization (weight decay, dropout, label smoothing, augmentation) or compare the scientific "
        "values with regularization tuned as a nuisance; the trial value already uses the best checkpoint.",
    )


def check_step_variance(data: StudyData, th: Thresholds) -> list[Finding]:
    def test(steps: np.ndarray, y: np.ndarray) -> dict[str, Any] | None:
        if len(y) < 8:
            return None
        span = float(np.max(moving_average(y, 5)) - np.min(moving_average(y, 5)))
        if span <= 0:
            return None
        half = y[len(y) // 2:]
        noise = float(np.std(half - moving_average(half, 5)) / span)
        return {"relative_noise": noise} if noise > th.step_noise else None

    hits = _for_curves(data, th, data.metric, test, data.sign())
    return _curve_finding(
        "step_variance", hits,
        lambda t, ev: (
            f"High step-to-step variance in the validation {data.metric} of the best trials "
            f"(trial #{t.number}: noise {ev['relative_noise']:.1%} of the curve's range): "
            "it makes trials hard to compare and hurts reproducibility."
        ),
        "Evaluate on a larger validation sample, decay the learning rate, increase the batch size, "
        "or use Polyak averaging.",
    )


def check_still_improving(data: StudyData, th: Thresholds) -> list[Finding]:
    def test(steps: np.ndarray, y: np.ndarray) -> dict[str, Any] | None:
        ys = moving_average(y, 3)
        gain = ys[0] - np.min(ys)
        tail = steps >= steps[0] + 0.8 * (steps[-1] - steps[0])
        if gain <= 0 or tail.sum() < 2:
            return None
        late = ys[np.argmax(tail)] - ys[-1]
        return {"late_improvement_share": float(late / gain)} if late > th.still_improving * gain else None

    hits = _for_curves(data, th, data.metric, test, data.sign(), data.ranked()[: th.curve_top_k])
    return _curve_finding(
        "still_improving", hits,
        lambda t, ev: (
            f"The best trials are still improving at the end of training (trial #{t.number} gained "
            f"{ev['late_improvement_share']:.1%} of its improvement in the last 20% of steps): training is compute-bound."
        ),
        "Train longer: raise max_train_steps in the next round (a new study), or retune the schedule "
        "(`tunebook next-round`).",
    )


def check_saturated_early(data: StudyData, th: Thresholds) -> list[Finding]:
    def test(steps: np.ndarray, y: np.ndarray) -> dict[str, Any] | None:
        ys = moving_average(y, 3)
        gain = ys[0] - np.min(ys)
        if gain <= 0:
            return None
        first = int(np.argmax(ys <= np.min(ys) + th.saturation_tol * gain))
        share = float(steps[first] / data.max_train_steps)
        worse_after = ys[-1] - np.min(ys) > th.overfit_rise * gain
        return {"saturation_step": int(steps[first]), "share": share} if share <= th.saturated_share and not worse_after else None

    hits = _for_curves(data, th, data.metric, test, data.sign(), data.ranked()[: th.curve_top_k])
    return _curve_finding(
        "saturated_early", hits,
        lambda t, ev: (
            f"The best trials saturate early: trial #{t.number} is within {th.saturation_tol:.0%} of its best by step "
            f"{ev['saturation_step']} ({ev['share']:.0%} of max_train_steps) and gains nothing after."
        ),
        "Most of the compute is spent after the curve went flat: lower max_train_steps in the next round, "
        "or use the budget for more trials.",
    )


def loss_rising(steps: np.ndarray, y: np.ndarray, th: Thresholds) -> dict[str, Any] | None:
    """A loss that climbs back after its minimum (lower is better): the evidence, or None."""
    ys = moving_average(y, max(5, len(y) // 20))
    m = int(np.argmin(ys))
    gain = initial_level(y) - ys[m]
    tail = ys[int(0.8 * len(ys)):]
    if gain <= 0 or m >= 0.8 * len(ys):
        return None
    rise = float(np.mean(tail) - ys[m])
    return {"min_step": int(steps[m]), "rise_share": rise / float(gain)} if rise > th.train_rise * gain else None


def check_train_loss_rising(data: StudyData, th: Thresholds) -> list[Finding]:
    hits = _for_curves(data, th, th.train_metric, lambda s, y: loss_rising(s, y, th), 1.0)
    return _curve_finding(
        "train_loss_rising", hits,
        lambda t, ev: (
            f"The training loss ({th.train_metric}) rises during training in trial #{t.number} "
            f"(after step {ev['min_step']} it climbs back {ev['rise_share']:.0%} of its improvement)."
        ),
        "A training loss that increases usually means a bug in the pipeline (data, augmentation, schedule) "
        "or instability: check the input pipeline and the learning-rate schedule.",
    )


def check_periodic_validation(data: StudyData, th: Thresholds) -> list[Finding]:
    def test(steps: np.ndarray, y: np.ndarray) -> dict[str, Any] | None:
        if len(y) < 16:
            return None
        part = y[len(y) // 4:]  # past the initial drop
        x = np.linspace(-1, 1, len(part))
        resid = part - np.polyval(np.polyfit(x, part, 2), x)
        span = float(np.max(y) - np.min(y))
        power = np.abs(np.fft.rfft(resid - resid.mean()))[1:] ** 2
        m = len(power)
        if span <= 0 or power.sum() <= 0 or m < 4:
            return None
        k = int(np.argmax(power)) + 1  # cycles over the analysed part
        g = float(power[k - 1] / power.sum())
        # Fisher's g-test: chance that white noise puts this share of its power in one frequency
        pvalue = min(1.0, m * (1 - g) ** (m - 1))
        amplitude = float(np.std(resid) / span)
        if pvalue <= th.periodic_pvalue and amplitude >= th.periodic_amplitude and k >= th.periodic_cycles:
            return {"period_evals": len(part) / k, "power_share": g, "pvalue": pvalue}
        return None

    hits = _for_curves(data, th, data.metric, test, data.sign())
    return _curve_finding(
        "periodic_validation", hits,
        lambda t, ev: (
            f"The validation {data.metric} of trial #{t.number} oscillates with a period of about "
            f"{ev['period_evals']:.1f} evaluations (Fisher's test p = {ev['pvalue']:.1g})."
        ),
        "Periodic validation curves point at overlap between training and validation data, or at data "
        "that is not shuffled well (e.g. epoch boundaries): check the splits and the shuffling.",
    )


def check_max_train_steps(data: StudyData, th: Thresholds) -> list[Finding]:
    ranked = data.ranked()
    top = ranked[: max(3, len(ranked) // 2)]
    steps = np.array([t.best_step for t in top if t.best_step is not None], dtype=float)
    if len(steps) < 3:
        return []
    share_early = float(np.mean(steps <= th.best_step_early * data.max_train_steps))
    share_late = float(np.mean(steps >= th.best_step_late * data.max_train_steps))
    ev = {"max_train_steps": data.max_train_steps, "share_first_10pct": share_early,
          "share_last_25pct": share_late, "trials": len(steps)}
    if share_early >= th.best_step_share:
        return [Finding(
            "max_train_steps", WARNING,
            f"{share_early:.0%} of the better trials reach their best checkpoint in the first "
            f"{th.best_step_early:.0%} of the {data.max_train_steps} steps: max_train_steps is too high.",
            "Lower max_train_steps in the next round (a new study); it is never tuned inside a study.",
            ev,
        )]
    if share_late >= th.best_step_share:
        return [Finding(
            "max_train_steps", WARNING,
            f"{share_late:.0%} of the better trials reach their best checkpoint in the last "
            f"{1 - th.best_step_late:.0%} of the {data.max_train_steps} steps: they may benefit from training longer.",
            "Raise max_train_steps in the next round (a new study), and retune the learning-rate schedule with it.",
            ev,
        )]
    return []


def check_sampled_enough(data: StudyData, th: Thresholds) -> list[Finding]:
    if len(data.completed) < 2:
        return []
    s = data.sign()
    values = data.loss_like_values()
    n = len(values)
    rng = np.random.default_rng(0)
    half = max(1, n // 2)
    boot = bootstrap_best_of_k(values, [half, n], th.bootstrap_samples, rng)
    med_half, med_full = float(np.median(boot[half])), float(np.median(boot[n]))
    feasible = np.sort(values[np.isfinite(values)])
    scale = float(np.median(feasible) - feasible[0])
    if not math.isfinite(med_half) or scale <= 0:
        return []
    gain = (med_half - med_full) / scale
    q1, q3 = np.percentile(boot[n][np.isfinite(boot[n])], [25, 75]) if np.isfinite(boot[n]).any() else (math.nan, math.nan)
    ev = {"trials": n, "median_best_of_half": s * med_half, "median_best_of_all": s * med_full,
          "relative_gain": float(gain), "bootstrap_iqr_at_n": float(q3 - q1)}
    if gain > th.sampled_enough_tol:
        return [Finding(
            "sampled_enough", WARNING,
            f"Not sampled enough: doubling from {half} to {n} trials still improves the typical best value by "
            f"{gain:.0%} of the spread of trial values; the result at this budget is not stable.",
            "Raise `trials` of this study: it appends the next quasi-random points and keeps the finished ones.",
            ev,
        )]
    return [Finding(
        "sampled_enough", INFO,
        f"Sampled enough: going from {half} to {n} trials improves the typical best value by only {gain:.1%} "
        "of the spread of trial values.",
        "More trials of this study are unlikely to change its conclusion.",
        ev,
    )]


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


def check_adam_budget(data: StudyData, th: Thresholds) -> list[Finding]:
    if not _uses_adam(data):
        return []
    n_groups = max(1, len(data.best_by_scientific()) or 1)
    budget = max(1, len(data.trials) // n_groups)
    recommended = adam_recommendation(budget)
    tuned = [canon for canon, aliases in _ADAM_ALIASES.items()
             if any(a in data.space and data.roles[a] == "nuisance" for a in aliases)]
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


def check_input_bound(data: StudyData, th: Thresholds) -> list[Finding]:
    best = data.best()
    if best is None:
        return []
    curve = data.curves(best).get("input/wait_fraction")
    if curve is None or not len(curve):
        return []
    share = float(np.nanmean(curve.values))
    if share <= th.input_bound:
        return []
    return [Finding(
        "input_bound", WARNING,
        f"Input-bound: {share:.0%} of step time is spent waiting for data (trial #{best.number}).",
        "Speed up the input pipeline before tuning further (prefetching, more loader workers, caching, "
        "moving preprocessing off the critical path).",
        {"trial": best.number, "wait_fraction": share},
    )]


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


def loss_spikes(steps: np.ndarray, y: np.ndarray, th: Thresholds) -> dict[str, Any] | None:
    """Spikes of a loss curve (lower is better) after its first 10%: the evidence, or None."""
    if len(y) < 20:
        return None
    ys = moving_average(y, max(5, len(y) // 20))
    gain = initial_level(y) - np.min(ys)
    if gain <= 0:
        return None
    window = max(5, len(y) // 20) | 1
    pad = np.pad(y, window // 2, mode="edge")
    median = np.median(np.lib.stride_tricks.sliding_window_view(pad, window), axis=1)
    start = max(1, len(y) // 10)
    spikes = np.where((y[start:] > 3 * median[start:]) & (y[start:] - median[start:] > th.spike_fraction * gain))[0]
    if len(spikes) == 0:
        return None
    return {"spikes": int(len(spikes)), "first_spike_step": int(steps[start + spikes[0]])}


def check_instability(data: StudyData, th: Thresholds) -> list[Finding]:
    hits = _for_curves(data, th, th.train_metric, lambda s, y: loss_spikes(s, y, th), 1.0)
    return _curve_finding(
        "instability", hits,
        lambda t, ev: (
            f"The training loss of trial #{t.number} spikes {ev['spikes']} time(s) (first at step "
            f"{ev['first_spike_step']}): a sign of training instability."
        ),
        "Try learning-rate warmup or gradient clipping (`tunebook stability` / `tunebook warmup`), "
        "or a lower learning rate.",
    )


ALL_CHECKS: dict[str, Callable[[StudyData, Thresholds], list[Finding]]] = {
    "search_space_boundary": check_search_space_boundary,
    "infeasible_share": check_infeasible_share,
    "infeasible_region": check_infeasible_region,
    "overfitting": check_overfitting,
    "step_variance": check_step_variance,
    "still_improving": check_still_improving,
    "saturated_early": check_saturated_early,
    "train_loss_rising": check_train_loss_rising,
    "periodic_validation": check_periodic_validation,
    "max_train_steps": check_max_train_steps,
    "sampled_enough": check_sampled_enough,
    "adam_budget": check_adam_budget,
    "input_bound": check_input_bound,
    "gradient_clipping": check_gradient_clipping,
    "instability": check_instability,
}
assert tuple(ALL_CHECKS) == CHECKS


def run_diagnostics(data: StudyData, thresholds: Thresholds | None = None) -> list[Finding]:
    """Every check, warnings first."""
    th = thresholds or Thresholds()
    findings: list[Finding] = []
    for check in ALL_CHECKS.values():
        findings.extend(check(data, th))
    return sorted(findings, key=lambda f: (f.severity != WARNING, CHECKS.index(f.check)))
