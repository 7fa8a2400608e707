"""What the training curves of the best trials say (run per group), judged against each curve's noise.

The playbook ("Examining the training curves"): look at the curves of at
least the best few trials, and of the best trial of each scientific value,
for problematic overfitting, high step-to-step variance, still improving at
the end (compute-bound), saturated early (not compute-bound), a training loss
that rises (a pipeline bug) and periodic validation metrics (overlapping or
badly shuffled data).

A curve is read "loss-like" (multiplied by the objective's sign, so lower is
better). Every judgment here compares a change with the curve's noise
(:func:`~tunebook.analysis.checks.common.curve_noise`: ``noise_z`` standard
errors) and with the curve's own scale (how much it improved): a validation
example flipping at the last evaluation is neither improvement nor
overfitting.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from tunebook.analysis.data import StudyData, TrialRow

from .base import INFO, WARNING, Finding, Thresholds, check
from .common import (
    Group,
    curve_finding,
    curve_hits,
    curve_noise,
    curve_trials,
    first_within,
    fmt,
    for_groups,
    initial_level,
    moving_average,
    percent_of,
    read_curve,
    running_median,
    scale,
    tail_gain,
)
from .sampling import measured_trial_sd


#: the fewest evaluations a curve needs for its step-to-step noise to be judged
MIN_CURVE_EVALS = 8


def majority(hits: list[Any], read: int) -> bool:
    """At least half of the curves read (and at least one)."""
    return bool(hits) and len(hits) >= math.ceil(read / 2)


# tests on one curve (loss-like arrays) -----------------------------------------
def still_improving(steps: np.ndarray, y: np.ndarray, th: Thresholds) -> dict[str, Any] | None:
    """The trend over the last 25% of steps (at least the last 4 evaluations) gains materially: against the
    noise and the curve's improvement. The evidence names the window actually fitted."""
    sc = scale(y)
    if sc <= 0:
        return None
    gain, se, window = tail_gain(steps, y)
    if gain > th.noise_z * se and gain > th.still_improving * sc:
        return {"late_gain": gain, "late_gain_se": se, "late_improvement_share": gain / sc, "noise": curve_noise(y),
                "window": window.__dict__, "window_words": window.words()}
    return None


def saturation(steps: np.ndarray, y: np.ndarray, th: Thresholds) -> dict[str, Any] | None:
    """Where the robust smooth of a curve comes within its noise of its best (None for a curve that never improved)."""
    sc = scale(y)
    if sc <= 0:
        return None
    smooth = running_median(y)
    m = float(np.min(smooth))
    noise = curve_noise(y)
    band = max(th.noise_z * noise, th.saturation_tol * sc)
    first = first_within(y, smooth, band)
    b = int(np.argmin(y))
    return {"saturation_step": int(steps[first]), "band": band, "noise": noise, "smooth_best": m,
            "best": float(y[b]), "best_step_measured": int(steps[b])}


def rise_after_best(y: np.ndarray, th: Thresholds, positive_floor: float | None,
                    spread: float | None = None) -> dict[str, Any] | None:
    """How far a curve ends above its best point, if that is material: more than its noise, and more than
    ``overfit_rise`` of its improvement (when the improvement since the first evaluation is itself beyond
    the noise), or, for a positive loss or error, ``overfit_rise_relative`` of its best, or (when the first
    evaluation came too late to measure an improvement) ``overfit_rise`` of ``spread``, how much the group's
    configurations differ (its median trial's value minus its best).

    The rise is measured from the best point of the robust smooth to the median of the last 3 evaluations.
    """
    smooth = running_median(y)
    b = int(np.argmin(smooth))
    if b >= len(y) - 2:
        return None
    best = float(smooth[b])
    end = float(np.median(y[-3:]))
    rise = end - best
    noise = curve_noise(y)
    improvement = initial_level(y) - best
    measured = improvement > th.noise_z * noise  # a first evaluation already near the best measures no improvement
    relative = rise / positive_floor if positive_floor and positive_floor > 0 else None
    big = (measured and rise > th.overfit_rise * improvement) or (
        relative is not None and relative > th.overfit_rise_relative) or (
        not measured and spread is not None and spread > 0 and rise > th.overfit_rise * spread)
    if rise > th.noise_z * noise and big:
        return {"best_index": b, "best_level": best, "end_level": end, "rise": rise,
                "rise_share": rise / improvement if measured else None, "rise_relative": relative, "noise": noise,
                "improvement": improvement, "group_spread": spread}
    return None


def train_trend_after(steps: np.ndarray, y: np.ndarray, after: int, th: Thresholds) -> tuple[str, float, float] | None:
    """What a training loss did from step ``after`` to the end: ("falls" | "is flat" | "rises", level then,
    level at the end), each level the median of the evaluations around it; None when nothing is logged after."""
    after_steps = steps >= after
    if after_steps.sum() < 3:
        return None
    at = y[(steps >= after * 0.9) & (steps <= after * 1.1 + 1)]
    k = max(3, len(y) // 10)
    end = y[-k:]
    level_at, level_end = float(np.median(at if len(at) else y[after_steps][:1])), float(np.median(end))
    se = th.noise_z * curve_noise(y) / math.sqrt(len(end))
    if level_end < level_at - se:
        return "falls", level_at, level_end
    if level_end > level_at + se:
        return "rises", level_at, level_end
    return "is flat", level_at, level_end


def loss_rising(steps: np.ndarray, y: np.ndarray, th: Thresholds) -> dict[str, Any] | None:
    """A loss that climbs back after its minimum (lower is better), beyond its noise: the evidence, or None."""
    ys = moving_average(y, max(5, len(y) // 20))
    m = int(np.argmin(ys))
    start = initial_level(y)
    gain = start - ys[m]
    tail = ys[int(0.8 * len(ys)):]
    noise = curve_noise(y)
    # A loss that never learned (its "improvement" is within its noise, or a sliver of where it started) cannot
    # be said to climb back: its wandering is noise, not a pipeline bug.
    # (the noise of the descent itself: a later jump must not make the descent look like noise)
    before = curve_noise(y[: m + 1]) if m >= 4 else noise
    if gain <= max(th.noise_z * before, 0.05 * abs(start)) or m >= 0.8 * len(ys):
        return None
    rise = float(np.mean(tail) - ys[m])
    material = rise > th.noise_z * noise / math.sqrt(max(1, len(tail)))
    return {"min_step": int(steps[m]), "rise_share": rise / float(gain)} if rise > th.train_rise * gain and material else None


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


def training_unstable_after(steps: np.ndarray, y: np.ndarray, after: int, th: Thresholds) -> str | None:
    """Why the training loss does not look like overfitting after step ``after`` (spikes, or it stops falling)."""
    spikes = loss_spikes(steps, y, th)
    if spikes is not None and spikes["first_spike_step"] >= after * 0.5:
        return f"the training loss spikes (first at step {spikes['first_spike_step']})"
    at = y[(steps >= after * 0.9) & (steps <= after * 1.1 + 1)]
    end = y[steps >= steps[0] + 0.9 * (steps[-1] - steps[0])]
    if len(at) and len(end):
        level_at, level_end = float(np.median(at)), float(np.median(end))
        noise = curve_noise(y)
        if level_end > level_at + th.noise_z * noise / math.sqrt(len(end)) and level_end > 0.1 * level_at:
            return f"the training loss rises too (from {level_at:.3g} to {level_end:.3g})"
    return None


def rise_context(ev: dict[str, Any], steps: np.ndarray) -> str:
    """The rise as shares of what was measured: of the best value (a positive loss or error, not near zero)
    and of the improvement since the first evaluation (when that improvement is beyond the noise)."""
    out = ""
    of_best = percent_of(ev["rise"], ev["best_level"], ev["noise"]) if ev.get("rise_relative") is not None else None
    if of_best is not None:
        out += f", {of_best} above its best"
    share = ev.get("rise_share")
    if share is not None:
        out += (f", giving back {share:.0%} of its improvement since its first evaluation (step {int(steps[0])})"
                if share <= 1 else f", above its first evaluation (step {int(steps[0])})")
    return out


def top_of(view: StudyData, th: Thresholds) -> list[TrialRow]:
    return view.ranked()[: th.curve_top_k]


def improvement_given_back(share: float) -> str:
    """How much of its improvement a curve gives back, in words a share above 100% reads right in."""
    if not math.isfinite(share):
        return "more than it had gained (it never improved)"
    if share > 1.0:  # no percentage of an improvement smaller than the rise: the levels say it
        return "all of its improvement and more (it ends above its first evaluations)"
    return f"{share:.0%} of its improvement"


# the checks -------------------------------------------------------------------
@check("overfitting", family="curves", order=60, figure="curves", uses=("overfit_rise", "overfit_rise_relative", "noise_z", "spike_fraction", "train_metric"))
def check_overfitting(data: StudyData, th: Thresholds) -> list[Finding]:
    s = data.sign()

    def judge(view: StudyData, g: Group) -> list[Finding]:
        best = view.best()
        if best is None:
            return []
        c = read_curve(view, best, view.metric, s)
        if c is None:
            return []
        steps, y = c
        floor = float(best.value) if data.mode == "min" and best.value is not None and best.value > 0 else None
        values = view.loss_like_values()
        values = values[np.isfinite(values)]
        ev = rise_after_best(y, th, floor, float(np.median(values) - np.min(values)) if len(values) >= 3 else None)
        if ev is None:
            return []
        b = ev.pop("best_index")
        best_step, ev["best_measured"] = int(steps[b]), float(y[b])
        ev = {"trial": best.number, "trials": [best.number], "best_step": best_step, **ev}
        train = read_curve(view, best, th.train_metric, 1.0)
        why = training_unstable_after(*train, best_step, th) if train is not None else None
        prefix = f"[{g.label}] " if g.label else ""
        if why is not None:
            return [Finding(
                "overfitting", INFO,
                prefix + f"The validation {data.metric} of trial #{best.number} gets worse after step {best_step}, "
                f"but {why}: that is training instability, not overfitting.",
                "Treat it as instability (see the instability check): warmup, gradient clipping or a lower learning rate.",
                {**ev, "instability": why},
            )]
        trend = train_trend_after(*train, best_step, th) if train is not None else None
        if trend is None:
            train_words = f"no training loss ({th.train_metric}) was logged after it to compare"
        else:
            ev["train_after_best"] = {"trend": trend[0], "at_best_step": trend[1], "at_end": trend[2]}
            train_words = f"meanwhile its training loss {trend[0]} ({trend[1]:.3g} then, {trend[2]:.3g} at the end)"
        return [Finding(
            "overfitting", WARNING,
            prefix + f"Problematic overfitting: the validation {data.metric} of trial #{best.number} (the best"
            + (f" of {g.label}" if g.label else "") + f") is best at step {best_step} ({fmt(s * ev['best_measured'])} measured; "
            f"{fmt(s * ev['best_level'])} smoothed, the running median around it) "
            f"and ends {ev['rise']:.3g} worse ({fmt(s * ev['end_level'])}, the median of its last 3 evaluations"
            + rise_context(ev, steps) + f"; noise {ev['noise']:.2g}); {train_words}.",
            "Add regularization (weight decay, dropout, label smoothing, augmentation) or compare the scientific "
            "values with regularization tuned as a nuisance; the trial value already uses the best checkpoint.",
            ev,
        )]

    return for_groups(data, th, judge)


def compared_gap(data: StudyData, th: Thresholds) -> tuple[float, str]:
    """What the study must tell apart: the gap between the two best groups (several scientific values),
    else the spread of the top trials' values.

    Where every group's best was replicated, the answer compares the groups' replicate means (see
    :func:`~tunebook.analysis.checks.goal.build_answer`), and so does this gap; else it is the gap between
    the groups' best search trials."""
    from .common import group_view, groups
    from .variance import replicate_sets

    s = data.sign()
    sets = replicate_sets(data)
    means = []
    for g in groups(data, th.scientific_buckets):
        b = group_view(data, g).best()
        own = [t.number for t in g.trials if t.number in sets]
        if b is None or not own:
            break
        means.append(s * float(np.mean(sets[b.number if b.number in sets else max(own, key=lambda n: len(sets[n]))])))
    else:
        if len(means) >= 2:
            means.sort()
            return means[1] - means[0], "the gap between the two best scientific values' replicate means (the answer's)"
    bests = sorted(s * float(b.value) for g in groups(data, th.scientific_buckets)  # type: ignore[arg-type]
                   if (b := group_view(data, g).best()) is not None)
    if len(bests) >= 2:
        return bests[1] - bests[0], "the gap between the two best scientific values"
    top = [s * float(t.value) for t in data.ranked()[: th.curve_top_k]]  # type: ignore[arg-type]
    return (max(top) - min(top), "the spread of the top trials") if len(top) >= 2 else (math.inf, "")


@check("step_variance", family="curves", order=70, figure="curves", uses=("step_noise", "curve_top_k"))
def check_step_variance(data: StudyData, th: Thresholds) -> list[Finding]:
    """High step-to-step variance: noise large against the curve's range, against what the study compares
    *and* against the measured trial variance.

    The playbook's concern is that trials randomly end on "lucky" or "unlucky" steps, which
    interferes with comparing scientific values (or, in a study without them, its trials). Which
    evaluation a trial ends on decides a comparison only when that noise is larger than the gap
    compared and than the seed-to-seed spread (the trial sd): a comparison of identical groups (gap 0)
    has nothing to decide, and under a larger trial sd the step noise is not what decides it. Without
    a measured trial sd the finding is info (it says that sd is unmeasured), as it is when fewer than half
    of the curves read are that noisy (one curve with a spike is not the configuration's step noise).
    """
    gap, what = compared_gap(data, th)
    if not gap > 0:
        return []  # identical bests: nothing for the step noise to decide
    sd, source = measured_trial_sd(data, th)

    def test(t: TrialRow, steps: np.ndarray, y: np.ndarray) -> dict[str, Any] | None:
        if len(y) < MIN_CURVE_EVALS:
            return None
        span = float(np.max(moving_average(y, 3)) - np.min(running_median(y)))  # the curve's range, robust to one outlier
        if span <= 0:
            return None
        noise = curve_noise(y)
        if noise / span > th.step_noise and noise > gap and (sd is None or noise > sd):
            return {"relative_noise": noise / span, "noise": noise, "compared_gap": gap, "trial_sd": sd,
                    "trial_sd_source": source or None, "evals": len(y)}
        return None

    hits, read = curve_hits(data, curve_trials(data, th), data.metric, data.sign(), test)
    # A property of how the best configurations train, shown by most of their curves: one noisy curve among
    # quiet ones (an isolated spike, say: see instability) does not make the end step decide the comparison.
    most = majority(hits, read)

    def message(t: TrialRow, ev: dict[str, Any]) -> str:
        noise = f"trial #{t.number}: noise {ev['noise']:.3g} over {ev['evals']} evaluations, {ev['relative_noise']:.1%} of"
        if sd is not None and not most:
            return (f"Only {len(hits)} of the {read} best trials' validation {data.metric} curves are noisier than "
                    f"{what} ({ev['compared_gap']:.3g}) and the trial sd ({sd:.3g} from {source}) ({noise} the curve's "
                    "range); the others are quieter, so the step a trial ends on does not decide the comparison.")
        if sd is None:
            return (f"Step-to-step variance in the validation {data.metric} of the best trials ({noise} the curve's "
                    f"range) is larger than {what} ({ev['compared_gap']:.3g}). The trial variance (seed to seed) is not "
                    "measured, so whether the evaluation a trial ends on decides the comparison is unknown.")
        return (f"High step-to-step variance in the validation {data.metric} of the best trials ({noise} the curve's "
                f"range, more than {what}, {ev['compared_gap']:.3g}, and than the trial sd, {sd:.3g} from {source}): "
                "which step a trial ends on decides the comparison, and results are hard to reproduce.")

    remedy = "evaluate on a larger validation sample, decay the learning rate, increase the batch size, or use Polyak averaging."
    return curve_finding(
        "step_variance", Group("", {}, []), hits, read, message,
        ("Measure the trial variance (replicates of each group's best, or `tunebook retrain`); if the step noise is "
         "larger, " + remedy) if sd is None else remedy[0].upper() + remedy[1:],
        severity=INFO if sd is None or not most else WARNING,
    )


@check("still_improving", family="curves", order=80, figure="curves", uses=("still_improving", "noise_z", "curve_top_k"))
def check_still_improving(data: StudyData, th: Thresholds) -> list[Finding]:
    def judge(view: StudyData, g: Group) -> list[Finding]:
        hits, read = curve_hits(view, top_of(view, th), view.metric, view.sign(), lambda t, s, y: still_improving(s, y, th))
        if not majority(hits, read):
            return []
        return curve_finding(
            "still_improving", g, hits, read,
            lambda t, ev: (
                f"The best trials are still improving at the end of training ({len(hits)} of {read}; for example "
                f"trial #{t.number} gains {ev['late_gain']:.3g} over {ev['window_words']}, "
                + (f"{ev['late_improvement_share']:.0%} of its improvement"
                   if ev['late_improvement_share'] <= 1 else "most of its improvement (its trend is steepest at the end)")
                + f" and {ev['late_gain'] / max(ev['late_gain_se'], 1e-300):.1f} standard errors of its noise): "
                "training is compute-bound."
            ),
            "Train longer: raise max_train_steps in the next round (a new study), or retune the schedule "
            "(`tunebook next-round`).",
        )

    return for_groups(data, th, judge)


def derived_kind(data: StudyData) -> str | None:
    """The kind of procedure that made this study (``next-round``, ``retrain``...), None for a tuned one."""
    record = getattr(data.study, "record", None)
    derived = (getattr(record, "spec", None) or {}).get("derived") if record is not None else None
    return derived.get("kind") if isinstance(derived, dict) else None


@check("saturated_early", family="curves", order=90, figure="curves",
       uses=("saturated_share", "saturation_tol", "noise_z", "curve_top_k"), thresholds={"saturated_share_round": 0.5})
def check_saturated_early(data: StudyData, th: Thresholds) -> list[Finding]:
    """The best trials come within their noise of their best long before the final step.

    "Long before" is ``saturated_share`` (20%) of max_train_steps in a tuning study. A next round
    (`tunebook next-round`: the best configuration trained longer, nothing tuned) exists to measure how long
    to train: there a flat second half (``saturated_share_round``, 50%) already says the budget is too long,
    and the finding proposes a shorter one (the latest step at which the curves read went flat).
    """
    round_ = derived_kind(data) == "next-round"
    share_limit = th.saturated_share_round if round_ else th.saturated_share

    def test(t: TrialRow, steps: np.ndarray, y: np.ndarray) -> dict[str, Any] | None:
        sat = saturation(steps, y, th)
        if sat is None:
            return None
        share = sat["saturation_step"] / data.max_train_steps
        if share > share_limit or still_improving(steps, y, th) is not None:
            return None
        if rise_after_best(y, th, None) is not None:
            return None  # worse after its best: overfitting's business
        return {**sat, "share": share}

    def within(t: TrialRow, ev: dict[str, Any]) -> str:
        s = data.sign()
        return (f"within its noise band ({ev['band']:.3g}: {th.noise_z:g} x its noise {ev['noise']:.2g}, or "
                f"{th.saturation_tol:.0%} of its improvement) of its best (smoothed {fmt(s * ev['smooth_best'])}; "
                f"measured {fmt(s * ev['best'])} at step {ev['best_step_measured']}) by step {ev['saturation_step']} "
                f"({ev['share']:.0%} of max_train_steps) and gains nothing beyond that band after")

    def judge(view: StudyData, g: Group) -> list[Finding]:
        hits, read = curve_hits(view, top_of(view, th), view.metric, view.sign(), test)
        if not majority(hits, read):
            return []
        latest = max(ev["saturation_step"] for _, ev in hits)
        found = curve_finding(
            "saturated_early", g, hits, read,
            lambda t, ev: (
                (f"This round's runs saturate ({len(hits)} of {read}): trial #{t.number} is {within(t, ev)}; "
                 f"the latest of them by step {latest}."
                 if round_ else
                 f"The best trials saturate early ({len(hits)} of {read}): trial #{t.number} is {within(t, ev)}.")
            ),
            (f"Training longer did not help past step {latest}: use a shorter budget (about {latest} steps, not "
             f"{data.max_train_steps}) for the next studies." if round_ else
             "Most of the compute is spent after the curve went flat: lower max_train_steps in the next round, "
             "or use the budget for more trials."),
        )
        return [replace(f, evidence={**f.evidence, "round": round_, "share_limit": share_limit,
                                     **({"suggested_max_train_steps": latest} if round_ else {})}) for f in found]

    return for_groups(data, th, judge)


@check("train_loss_rising", family="curves", order=100, figure="curves", uses=("train_rise", "noise_z", "train_metric", "curve_top_k"))
def check_train_loss_rising(data: StudyData, th: Thresholds) -> list[Finding]:
    def judge(view: StudyData, g: Group) -> list[Finding]:
        hits, read = curve_hits(view, top_of(view, th), th.train_metric, 1.0, lambda t, s, y: loss_rising(s, y, th))
        return curve_finding(
            "train_loss_rising", g, hits, read,
            lambda t, ev: (
                f"The training loss ({th.train_metric}) rises during training in trial #{t.number} "
                f"(after step {ev['min_step']} it climbs back {improvement_given_back(ev['rise_share'])})."
            ),
            "A training loss that increases usually means a bug in the pipeline (data, augmentation, schedule) "
            "or instability: check the input pipeline and the learning-rate schedule.",
        )

    return for_groups(data, th, judge)


@check("periodic_validation", family="curves", order=110, figure="curves", uses=("periodic_pvalue", "periodic_amplitude", "periodic_cycles"))
def check_periodic_validation(data: StudyData, th: Thresholds) -> list[Finding]:
    def test(t: TrialRow, steps: np.ndarray, y: np.ndarray) -> dict[str, Any] | None:
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

    hits, read = curve_hits(data, curve_trials(data, th), data.metric, data.sign(), test)
    return curve_finding(
        "periodic_validation", Group("", {}, []), hits, read,
        lambda t, ev: (
            f"The validation {data.metric} of trial #{t.number} oscillates with a period of about "
            f"{ev['period_evals']:.1f} evaluations (Fisher's test p = {ev['pvalue']:.1g})."
        ),
        "Periodic validation curves point at overlap between training and validation data, or at data "
        "that is not shuffled well (e.g. epoch boundaries): check the splits and the shuffling.",
    )


@check("instability", family="curves", order=170, figure="curves", uses=("spike_fraction", "train_metric"))
def check_instability(data: StudyData, th: Thresholds) -> list[Finding]:
    hits, read = curve_hits(data, curve_trials(data, th), th.train_metric, 1.0, lambda t, s, y: loss_spikes(s, y, th))
    return curve_finding(
        "instability", Group("", {}, []), hits, read,
        lambda t, ev: (
            f"The training loss of trial #{t.number} spikes {ev['spikes']} time(s) (first at step "
            f"{ev['first_spike_step']}): a sign of training instability."
        ),
        "Try learning-rate warmup or gradient clipping (`tunebook stability` / `tunebook warmup`), "
        "or a lower learning rate.",
    )
