"""A derived round whose curves are flat from 45% of the run reports saturation (issue 21, item 6).

Truth by construction: `tunebook next-round` trains the best configuration longer, nothing tuned; here its
three runs improve linearly until 45% of the new budget and are flat (white noise) after, so the second
half of the budget bought nothing and a shorter budget is the answer. A tuning study with the same curves
stays as before (saturation there means 20% of the steps). Two workloads: an LM-like loss and a tabular
accuracy."""

from __future__ import annotations

import numpy as np
import pytest

import tunebook as tb
from _cases import KINDS, level, study
from tunebook.analysis import analyze
from tunebook.analysis.synthetic import write_study

STEPS = 2000


def _flat_from(kind, share):
    sign = 1.0 if kind == "lm" else -1.0
    metric = KINDS[kind][0][0]

    def curve(params, steps, rng):
        final = level(kind, 0.0)
        drop = 2.0 if kind == "lm" else 0.5
        ramp = np.clip(1 - steps / (share * STEPS), 0, None)  # linear down to the floor at `share`, flat after
        return {metric: final + sign * drop * ramp + 0.002 * rng.standard_normal(len(steps)),
                "train/loss": 0.5 + ramp}

    return curve


def _round(url, kind, share, name="base-r2"):
    base = study(url, kind, _flat_from(kind, 0.9), name="base", trials=4)  # the source: still improving
    best = base.best_trial()
    return write_study(url, name, _flat_from(kind, share), trials=3, max_train_steps=STEPS, evals=40,
                       objective=KINDS[kind][0], design="replicates", parent="base", round=2,
                       space=tb.SearchSpace(fixed={**best.params}, allow_fixed_only=True),
                       derived={"kind": "next-round", "source": "base", "trial": best.number})


def saturated(report):
    return [f for f in report.findings if f.check == "saturated_early"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_next_round_flat_from_45_percent_reports_saturation_and_a_shorter_budget(sqlite_url, kind):
    report = analyze(_round(sqlite_url, kind, 0.45))
    (f,) = saturated(report)
    assert f.severity == "warning" and f.evidence["round"]
    assert 0.3 * STEPS <= f.evidence["suggested_max_train_steps"] <= 0.55 * STEPS
    assert "shorter budget" in f.action and f"{f.evidence['suggested_max_train_steps']} steps" in f.action


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_next_round_still_improving_late_reports_no_saturation(sqlite_url, kind):
    assert not saturated(analyze(_round(sqlite_url, kind, 0.9)))


def test_a_tuning_study_flat_from_45_percent_is_not_saturated_early(sqlite_url):
    s = write_study(sqlite_url, "tuned", _flat_from("lm", 0.45), trials=6, max_train_steps=STEPS, evals=40,
                    objective=KINDS["lm"][0], space={"nuisance": {"learning_rate": {"min": 1e-3, "max": 1e-1, "scale": "log"}}})
    assert not saturated(analyze(s))
