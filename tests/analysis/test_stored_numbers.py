"""Every number in a check's message is what was measured (issue 21, item 5), on the curve shapes a tabular
dropout study (24 trials, 6 replicates) produced: a best trial whose first evaluation is far above its best,
and an overfitting curve whose running median at its best step is not the stored value there.

The two curves below are trial #4 (dropout 0.0) and trial #1 (dropout 0.3) of that study, as stored
(val/loss every 20 steps of 200)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tunebook as tb
from tunebook.analysis.checks import effective_best_step
from tunebook.analysis.checks.curves import compared_gap, saturation
from tunebook.analysis.checks.variance import replicate_sets
from tunebook.analysis.synthetic import exp_decay, write_study

STEPS = np.arange(20, 201, 20)
# falls 0.084 after its first evaluation (to 0.0364 at step 160) under a noise of about 0.016
FALLS_LATE = np.array([0.1208, 0.0664, 0.0665, 0.0756, 0.0611, 0.0866, 0.0601, 0.0364, 0.0429, 0.0687])
# best at step 120 (0.0386 stored; its running median there is 0.0527), then worse to 0.66
OVERFITS = np.array([0.162, 0.0634, 0.0671, 0.099, 0.1005, 0.0386, 0.0527, 0.0484, 0.1788, 0.6621])
LR = {"nuisance": {"learning_rate": {"min": 1e-3, "max": 1e-1, "scale": "log"}}}


def _findings(report, check):
    return [f for f in report.findings if f.check == check]


def _shaped(base):
    """Every trial follows ``base``, scaled by how far its learning rate is from 1e-2 (the best trial is base)."""
    def curve(params, steps, rng):
        assert len(steps) == len(base) and np.array_equal(steps, STEPS)
        worse = 1 + 0.3 * abs(math.log10(params["learning_rate"]) + 2)
        return {"val/loss": base * worse, "train/loss": np.full(len(steps), 0.02)}

    return curve


def test_a_first_evaluation_far_above_the_best_is_not_within_the_noise():
    """The smooth's start window (the first three evaluations) took the second point's level for the first:
    step 20 (0.121, 0.084 above the best) read as within 0.041 of the best. It is step 40 (0.0664)."""
    th = tb.Thresholds()
    sat = saturation(STEPS, FALLS_LATE, th)
    assert sat["saturation_step"] == 40
    assert FALLS_LATE[0] - sat["best"] > sat["band"]  # the first evaluation is beyond the band: never "within"
    assert effective_best_step(STEPS, FALLS_LATE, th) == 40
    assert sat["best"] == pytest.approx(0.0364) and sat["best_step_measured"] == 160


def test_a_curve_already_at_its_level_at_the_first_evaluation_still_saturates_there():
    rng = np.random.default_rng(0)
    flat = 0.066 + 0.004 * rng.standard_normal(len(STEPS))
    assert saturation(STEPS, flat, tb.Thresholds())["saturation_step"] == 20
    assert effective_best_step(STEPS, flat, tb.Thresholds()) == 20


def test_max_train_steps_does_not_call_a_late_fall_early(sqlite_url):
    """Trials shaped like the stored trial #4 fall beyond their noise after step 20: no 'max_train_steps is too
    high'; a saturated_early finding, if any, names the stored best and its step."""
    report = tb.analyze(write_study(sqlite_url, "late", _shaped(FALLS_LATE), space=LR, trials=8,
                                    max_train_steps=200, evals=10, objective=("val/loss", "min")))
    assert not _findings(report, "max_train_steps")
    for f in _findings(report, "saturated_early"):
        t = next(t for t in report.data.trials if t.number == f.evidence["trials"][0])
        lowest = float(np.min(report.data.curve(t, "val/loss").values))
        assert "by step 20 " not in f.message and f"measured {lowest:.3g} at step 160)" in f.message


def test_max_train_steps_still_warns_on_curves_flat_from_the_first_evaluation(sqlite_url):
    rng = np.random.default_rng(1)
    flat = 0.066 + 0.004 * rng.standard_normal(len(STEPS))
    report = tb.analyze(write_study(sqlite_url, "flat", _shaped(flat), space=LR, trials=8,
                                    max_train_steps=200, evals=10, objective=("val/loss", "min")))
    f = _findings(report, "max_train_steps")[0]
    assert f.evidence["verdict"] == "too long"


def test_overfitting_states_the_stored_value_at_its_best_step(sqlite_url):
    report = tb.analyze(write_study(sqlite_url, "over", _shaped(OVERFITS), space=LR, trials=8,
                                    max_train_steps=200, evals=10, objective=("val/loss", "min")))
    f = _findings(report, "overfitting")[0]
    assert f.evidence["best_step"] == 120
    data = report.data
    best = next(t for t in data.trials if t.number == f.evidence["trial"])
    stored = data.curve(best, "val/loss")
    at = float(stored.values[list(stored.steps).index(120)])
    assert f"is best at step 120 ({at:.3g} measured; {f.evidence['best_level']:.3g} smoothed" in f.message


def _seeded(params, steps, rng):
    """A configuration's level plus seed noise that moves the whole run (the replicates' spread)."""
    floor = 0.2 + 0.01 * (math.log10(params["lr"]) + 2) ** 2 + (0.01 if params["wd"] == 0.1 else 0.0)
    floor += 0.01 * rng.standard_normal()
    return {"val/error": exp_decay(steps, floor, 1.0, steps[-1] / 20) + 0.02 * rng.standard_normal(len(steps))}


@pytest.mark.parametrize("replicates", [3, 0])
def test_step_variance_compares_with_the_gap_the_answer_compares(sqlite_url, replicates):
    """With replicates the answer compares replicate means, and so must step_variance; without, the bests."""
    space = {"scientific": {"wd": {"choice": [0.0, 0.1]}}, "nuisance": {"lr": {"min": 1e-3, "max": 1.0, "scale": "log"}}}
    s = write_study(sqlite_url, f"gap{replicates}", _seeded, space=space, trials=24, seed=3, max_train_steps=200,
                    evals=20, replicates=replicates)
    report = tb.analyze(s)
    gap, what = compared_gap(report.data, tb.Thresholds())
    assert report.answer.compared == ("means" if replicates else "bests")
    assert gap == pytest.approx(report.answer.difference)
    assert ("replicate means" in what) == bool(replicates)
    if replicates:
        assert replicate_sets(report.data)
        bests = sorted(t.value for t in report.data.best_by_scientific().values())
        assert gap != pytest.approx(bests[1] - bests[0])  # the gap of the search bests is another number
