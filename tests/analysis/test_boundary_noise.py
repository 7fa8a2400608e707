"""search_space_boundary against the measured trial noise (issue 21: boundary false alarms on noisy workloads).

Truth by construction, on two unlike kinds of workload (a language-model-like loss, a tabular accuracy):
every run's final value is its configuration's level plus a seed effect of sd 0.05, and the replicate phase
(3 new seeds of the best) measures that sd. In the *inside* study the optimum (lr 0.03) lies well inside
[1e-4, 1]; the one trial sampled at the top of the range gets a lucky seed (2.5 sd), which makes it the
study's best by noise. In the *outside* study the same noise is drawn but the optimum lies beyond the upper
bound (the level keeps improving towards it). The boundary warning must rest on the edge beating the inside
of the range by more than the noise: silent (an info finding) inside, a warning outside; unmeasured (no
replicates), the position alone still warns and says the noise is not measured.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from _cases import KINDS, bowl, curves, level, study
from tunebook.analysis import analyze

SEED_SD = 0.05


def _noisy(kind: str, best_lr: float, lucky_above: float = 0.6):
    """Final level of ``bowl(lr, best_lr)`` plus a seed effect of sd SEED_SD; the first run above ``lucky_above``
    (the search trial at the top of the range, not its replicates) draws -2.5 sd."""
    lucky = {"left": 1}
    sign = KINDS[kind][1]

    def curve(params, steps, rng):
        lr = params["learning_rate"]
        z = rng.standard_normal()
        if lr > lucky_above and lucky["left"]:
            lucky["left"], z = 0, -2.5
        badness = bowl(lr, best_lr, width=0.02) + SEED_SD * z
        out = curves(kind, level(kind, 0.0), steps, rng)
        metric = KINDS[kind][0][0]
        out[metric] = out[metric] + sign * badness  # the seed effect moves the whole curve, as a seed does
        return out

    return curve


def boundary(report) -> list:
    return [f for f in report.findings if f.check == "search_space_boundary"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_best_at_the_edge_by_seed_noise_is_not_a_boundary_warning(sqlite_url, kind):
    s = study(sqlite_url, kind, _noisy(kind, best_lr=0.03), trials=15, replicates=3)
    report = analyze(s)
    found = boundary(report)
    assert found, [f.message for f in report.findings]  # the best does sit at the upper edge...
    (f,) = found
    assert f.evidence["side"] == "upper" and f.evidence["best_value"] > 0.6
    # ...but it beats the best trial inside the range by less than the trial sd the replicates measured
    assert f.severity == "info", f.message
    assert f.evidence["trial_sd_source"] == "replicates" and 0.02 < f.evidence["trial_sd"] < 0.12
    assert f.evidence["gap_in_sd"] <= 1.0 and not f.evidence["beyond_noise"]
    assert "within the noise of one run" in f.message and "trial sd" in f.message
    assert report.answer.fair, report.answer.reasons


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_optimum_beyond_the_bound_still_warns_beyond_the_noise(sqlite_url, kind):
    s = study(sqlite_url, kind, _noisy(kind, best_lr=30.0), trials=15, replicates=3)
    report = analyze(s)
    (f,) = [f for f in boundary(report) if f.severity == "warning"]
    assert f.evidence["side"] == "upper" and f.evidence["beyond_noise"]
    assert f.evidence["gap_in_sd"] > 1.0 and f.evidence["trial_sd_source"] == "replicates"
    inside = f.evidence["inside_trial"]
    assert f"#{inside}" in f.message and "trial sd" in f.message
    assert not report.answer.fair


@pytest.mark.parametrize("kind", list(KINDS))
def test_without_measured_noise_the_position_alone_warns_and_says_so(sqlite_url, kind):
    s = study(sqlite_url, kind, _noisy(kind, best_lr=0.03), trials=15, replicates=0)
    (f,) = boundary(analyze(s))
    assert f.severity == "warning" and "trial_sd" not in f.evidence
    assert "trial variance is not measured" in f.message
    assert math.isfinite(f.evidence["gap"]) and np.isfinite(f.evidence["inside_best"])
