"""Curve checks on short curves, and messages that state only what was measured (issue 21, items 3 and 5).

Every case's truth is set by construction (tests/analysis/_cases.py) on two unlike workloads: a
language-model-like loss (minimized) and a tabular accuracy (maximized)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from _cases import STEPS, bowl, curves, level, measure_trial_sd, study
from tunebook.analysis import analyze
from tunebook.analysis.checks import curve_noise

KINDS = ["lm", "tabular"]


def findings(report, check):
    return [f for f in report.findings if f.check == check]


# curve noise --------------------------------------------------------------------------------------
def test_the_noise_of_a_short_curve_leaves_out_its_early_transient():
    """8 evaluations (a word model evaluated every 250 steps): a steep first drop and an early spike must not
    count as noise. Truth: white noise of sd 0.01. Before, the whole curve's second differences gave ~2x."""
    estimates = []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        steps = np.arange(1, 9) * 250.0
        y = 3.0 + 3 * np.exp(-steps / 200)
        y[1] += 0.5  # one early spike
        estimates.append(curve_noise(y + 0.01 * rng.standard_normal(8)))
    assert 0.005 < float(np.median(estimates)) < 0.015


def test_the_noise_is_never_more_than_the_late_variation_of_the_curve():
    rng = np.random.default_rng(0)
    steps = np.arange(1, 11) * 100.0
    y = 2.0 + np.exp(-steps / 150) + 0.001 * rng.standard_normal(10)  # a bend in the late part, little noise
    late = y[len(y) // 4:]
    assert curve_noise(y) <= float(np.std(late, ddof=1))


# still improving: the window fitted ------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_still_improving_names_the_window_it_fitted_on_a_short_curve(sqlite_url, kind):
    """8 evaluations: the last 25% of the run holds 2 of them, so the trend is fitted on the last 4 (steps
    625-1000, 43% of the run). Truth: every curve is a straight line still falling at the end."""
    sign = 1.0 if kind == "lm" else -1.0

    def line(params, steps, rng):
        final = level(kind, bowl(params["learning_rate"]))
        y = final + sign * 1.5 * (1 - steps / STEPS) + 0.002 * rng.standard_normal(len(steps))
        return {("val/loss" if kind == "lm" else "val/accuracy"): y, "train/loss": 2.0 - steps / STEPS}

    report = analyze(study(sqlite_url, kind, line, trials=8, evals=8))
    f = findings(report, "still_improving")[0]
    assert f.severity == "warning"
    window = f.evidence["window"]
    assert window["evals"] == 4 and window["first_step"] == 625 and window["last_step"] == 1000
    assert "the last 4 evaluations (steps 625-1000, 43% of the run)" in f.message
    assert "25% of steps" not in f.message


@pytest.mark.parametrize("kind", KINDS)
def test_still_improving_is_silent_on_curves_flat_from_the_middle(sqlite_url, kind):
    def flat(params, steps, rng):
        return curves(kind, level(kind, bowl(params["learning_rate"])), steps, rng, tau=60)

    report = analyze(study(sqlite_url, kind, flat, trials=8, evals=8))
    assert not findings(report, "still_improving")


# overfitting: rises from the best point, the training loss as measured ---------------------------
def _rising(kind, train_shape="flat", first_step_near_best=True):
    """Validation best at ~40% of the run, then worse by 0.3 (loss) / 0.06 (accuracy); the first evaluation
    (step 50 of 20 evaluations) is already near the best, as in a word model evaluated late."""
    sign = 1.0 if kind == "lm" else -1.0
    rise = 0.3 if kind == "lm" else 0.06
    metric = "val/loss" if kind == "lm" else "val/accuracy"

    def curve(params, steps, rng):
        final = level(kind, bowl(params["learning_rate"]))
        tau = 10 if first_step_near_best else 60
        drop = 2.0 if kind == "lm" else 0.4  # a loss from ~5 to 3, an accuracy from ~0.5 to 0.9
        val = final + sign * drop * np.exp(-steps / tau) + sign * rise * np.clip(steps / STEPS - 0.4, 0, None) / 0.6
        train = np.full(len(steps), 1.2) if train_shape == "flat" else 1.0 + np.exp(-steps / 300)
        return {metric: val + 0.002 * rng.standard_normal(len(steps)), "train/loss": train}

    return curve


@pytest.mark.parametrize("kind", KINDS)
def test_overfitting_says_the_training_loss_is_flat_when_it_is_and_no_percentage_of_a_tiny_improvement(sqlite_url, kind):
    report = analyze(study(sqlite_url, kind, _rising(kind, "flat"), trials=8, evals=20))
    f = findings(report, "overfitting")[0]
    assert f.severity == "warning"
    assert "keeps falling" not in f.message and "training loss is flat" in f.message
    assert f.evidence["train_after_best"]["trend"] == "is flat"
    # the first evaluation is at step 50, already near the best: its "improvement" measures nothing, so no
    # share of it is given, and no percentage above 200%
    assert all(int(p) <= 200 for p in re.findall(r"(\d+)%", f.message)), f.message
    assert f.evidence["best_step"] <= 450  # flat at its best from the first evaluation to step 400
    rise = 0.3 if kind == "lm" else 0.06
    assert f.evidence["rise"] == pytest.approx(rise, rel=0.2)  # from the best point to the end


@pytest.mark.parametrize("kind", KINDS)
def test_overfitting_with_a_falling_training_loss_says_so_with_its_levels(sqlite_url, kind):
    report = analyze(study(sqlite_url, kind, _rising(kind, "falling", first_step_near_best=False), trials=8, evals=20))
    f = findings(report, "overfitting")[0]
    assert "training loss falls" in f.message and f.evidence["train_after_best"]["trend"] == "falls"


@pytest.mark.parametrize("kind", KINDS)
def test_no_overfitting_on_curves_that_stay_at_their_best(sqlite_url, kind):
    def flat(params, steps, rng):
        return curves(kind, level(kind, bowl(params["learning_rate"])), steps, rng)

    assert not findings(analyze(study(sqlite_url, kind, flat, trials=8, evals=20)), "overfitting")


# step variance -------------------------------------------------------------------------------------
def _noisy_groups(kind, noise, effect=0.0):
    """dropout 0 vs 0.3 on a grid of learning rates; dropout moves the floor by ``effect``; each curve's noise
    is seeded by its learning rate alone, so with no effect both groups' curves are identical (gap 0)."""
    metric = "val/loss" if kind == "lm" else "val/accuracy"

    def curve(params, steps, rng):
        own = np.random.default_rng(int(round(1e6 * params["learning_rate"])))
        final = level(kind, bowl(params["learning_rate"]) + effect * (params["dropout"] > 0))
        return curves(kind, final, steps, own, noise=noise, tau=60)

    space = {"scientific": {"dropout": {"choice": [0.0, 0.3]}},
             "nuisance": {"learning_rate": {"choice": [1e-3, 3e-3, 1e-2, 3e-2]}}}
    return curve, space, metric


@pytest.mark.parametrize("kind", KINDS)
def test_step_variance_is_silent_when_the_groups_are_identical(sqlite_url, kind):
    """A scientific value that changes nothing: both groups' curves are the same, the gap is exactly 0.
    Before, any noise exceeded a gap of 0 and step_variance warned."""
    curve, space, _ = _noisy_groups(kind, noise=0.05)
    s = study(sqlite_url, kind, curve, trials=8, space=space, design="grid")
    report = analyze(s)
    assert report.answer.difference == 0
    assert not findings(report, "step_variance")


@pytest.mark.parametrize("kind", KINDS)
def test_step_variance_against_the_measured_trial_sd(sqlite_url, kind):
    """Evaluation noise 0.05, groups 0.02 apart. With seeds spreading by 0.005 (measured by retrains) the
    step noise decides the comparison: a warning naming that sd. With seeds spreading by 0.2, the seed
    decides, not the step: silent. Unmeasured: info that says so."""
    curve, space, _ = _noisy_groups(kind, noise=0.05, effect=0.02)
    unmeasured = analyze(study(sqlite_url, kind, curve, name="u", trials=8, space=space, design="grid"))
    f = findings(unmeasured, "step_variance")[0]
    assert f.severity == "info" and "not measured" in f.message and f.evidence["trial_sd"] is None

    small = study(sqlite_url, kind, curve, name="small", trials=8, space=space, design="grid")
    measure_trial_sd(small, seed_sd=0.005)
    f = findings(analyze(small), "step_variance")[0]
    assert f.severity == "warning" and f.evidence["trial_sd_source"] == "retrains"
    assert 0.001 < f.evidence["trial_sd"] < 0.02 and "than the trial sd" in f.message

    large = study(sqlite_url, kind, curve, name="large", trials=8, space=space, design="grid")
    measure_trial_sd(large, seed_sd=0.2)
    assert not findings(analyze(large), "step_variance")


@pytest.mark.parametrize("kind", KINDS)
def test_one_spiked_curve_among_quiet_best_curves_is_not_step_variance(sqlite_url, kind):
    """15 evaluations a run (as on the signals workload), seed sd 0.01 measured by replicates, evaluation noise
    0.002; the best trial (a lucky seed) has one spike at 60% of its run, its neighbours' curves are quiet.
    The spike inflates that one curve's noise past the trial sd, but the step a trial ends on does not decide
    anything: info, not a warning (before: a warning). Where every curve is that noisy, it still warns
    (test_step_variance_against_the_measured_trial_sd)."""
    sign = 1.0 if kind == "lm" else -1.0
    metric = "val/loss" if kind == "lm" else "val/accuracy"
    lucky = {"left": 1}

    def curve(params, steps, rng):
        z = rng.standard_normal()
        spike = lucky["left"] and abs(math.log10(params["learning_rate"]) + 2) < 0.5
        if spike:
            lucky["left"], z = 0, -3.0
        out = curves(kind, level(kind, bowl(params["learning_rate"]) + 0.01 * z), steps, rng)
        if spike:
            out[metric][9] += sign * 0.3
        return out

    report = analyze(study(sqlite_url, kind, curve, trials=12, evals=15, replicates=3))
    (f,) = findings(report, "step_variance")
    assert f.severity == "info" and len(f.evidence["trials"]) < f.evidence["examined"] / 2, f.message
    assert f.evidence["trial_sd_source"] == "replicates" and f.evidence["noise"] > f.evidence["trial_sd"]
    assert f"Only {len(f.evidence['trials'])} of the {f.evidence['examined']}" in f.message
