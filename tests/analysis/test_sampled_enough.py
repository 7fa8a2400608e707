"""`sampled_enough` judges whether more sampling could change the answer (issue 21, item 2).

Truth by construction on two unlike workloads (tests/analysis/_cases.py): each trial's value is its
configuration's floor (a bowl in log learning rate, shifted by the scientific value's effect) plus a
seed-to-seed offset of known sd, which retrains of each group's best measure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _cases import KINDS, level, measure_trial_sd, study
from tunebook.analysis import analyze

SEED_SD = {"lm": 0.005, "tabular": 0.002}
LR2 = {"learning_rate": {"min": 1e-3, "max": 1e-1, "scale": "log"}}  # two decades


def _dropout_study(url, kind, effect_in_sd, *, name="s", trials=16, width=0.5, best_lr=1e-2):
    """dropout 0 vs 0.3, 8 trials each over two decades of learning rate (a bowl of ``width`` per decade^2);
    dropout 0.3 is ``effect_in_sd`` seed sd worse (0: a true tie)."""
    sd = SEED_SD[kind]
    metric = KINDS[kind][0][0]

    def curve(params, steps, rng):
        bad = width * (math.log10(params["learning_rate"]) - math.log10(best_lr)) ** 2
        bad += effect_in_sd * sd * (params["dropout"] > 0)
        final = level(kind, bad) + (1 if kind == "lm" else -1) * 0 + sd * rng.standard_normal()
        sign = 1.0 if kind == "lm" else -1.0
        val = final + sign * 1.0 * np.exp(-steps / 60) + 0.001 * rng.standard_normal(len(steps))
        return {metric: val, "train/loss": 0.5 + np.exp(-steps / 60)}

    space = {"scientific": {"dropout": {"choice": [0.0, 0.3]}}, "nuisance": LR2}
    s = study(url, kind, curve, name=name, trials=trials, space=space)
    measure_trial_sd(s, seed_sd=sd)
    return s


def sampled(report):
    return {f.evidence["group"]: f for f in report.findings if f.check == "sampled_enough"}


@pytest.mark.parametrize("kind", ["lm", "tabular"])
def test_a_clear_winner_with_8_trials_per_group_is_concluded(sqlite_url, kind):
    """18 sd apart (the issue's dropout case): the answer names dropout=0.0, fair; more sampling cannot move
    dropout=0.3 past it. Before, every group was 'probably not sampled enough' and the answer 'do not conclude'."""
    report = analyze(_dropout_study(sqlite_url, kind, 18))
    answer = report.answer
    assert [g.n_completed for g in answer.groups] == [8, 8]
    assert answer.best_group == "dropout=0.0" and answer.fair, answer.reasons
    assert "Do not conclude" not in answer.verdict
    found = sampled(report)
    assert set(found) == {"dropout=0.0", "dropout=0.3"}
    assert all(f.severity == "info" and not f.evidence["could_change_answer"] for f in found.values())
    assert all(isinstance(f.evidence["more_trials"], int) and f.evidence["more_trials"] >= 0 for f in found.values())
    assert found["dropout=0.3"].evidence["gap_in_sd"] > 6


@pytest.mark.parametrize("kind", ["lm", "tabular"])
def test_a_true_tie_with_8_trials_per_group_is_a_tie_not_do_not_conclude(sqlite_url, kind):
    report = analyze(_dropout_study(sqlite_url, kind, 0, name="tie"))
    answer = report.answer
    assert answer.fair, answer.reasons
    assert "Do not conclude" not in answer.verdict
    assert abs(answer.difference) < 3 * answer.trial_sd
    assert not [f for f in sampled(report).values() if f.severity == "warning"]


@pytest.mark.parametrize("kind", ["lm", "tabular"])
def test_a_sharp_optimum_sampled_sparsely_could_change_the_answer_and_says_how_many_more(sqlite_url, kind):
    """sgd's optimum is sharp (a V of 3 per decade) and better than adam's broad one by 5 sd at its bottom, but
    with 5 trials over two decades its best found trails adam's: more trials of sgd could change the answer."""
    sd = SEED_SD[kind]
    metric = KINDS[kind][0][0]

    def curve(params, steps, rng):
        x = math.log10(params["learning_rate"]) + 1.63  # sgd's optimum at 10^-1.63, between grid-free samples
        bad = 3.0 * abs(x) if params["optimizer"] == "sgd" else 5 * sd + 0.02 * x ** 2
        final = level(kind, bad) + sd * rng.standard_normal()
        sign = 1.0 if kind == "lm" else -1.0
        return {metric: final + sign * np.exp(-steps / 60) + 0.001 * rng.standard_normal(len(steps)),
                "train/loss": 0.5 + np.exp(-steps / 60)}

    space = {"scientific": {"optimizer": {"choice": ["adam", "sgd"]}}, "nuisance": LR2}
    s = study(sqlite_url, kind, curve, trials=10, space=space)
    measure_trial_sd(s, seed_sd=sd)
    report = analyze(s)
    found = sampled(report)
    assert report.answer.best_group == "optimizer=adam"  # what the sparse sample shows
    sgd = found["optimizer=sgd"]
    assert sgd.severity == "warning" and sgd.evidence["could_change_answer"]
    assert sgd.evidence["more_trials"] > 0 and "more trial(s) of this group" in sgd.message
    assert "n (room / target)^(d/2) - n" in sgd.evidence["more_trials_how"]
    assert found["optimizer=adam"].severity == "info"
    assert not report.answer.fair and any("more trials of optimizer=sgd could change" in r for r in report.answer.reasons)


def test_why_sampled_enough_never_calls_a_move_larger_than_the_floor_within_it():
    # the helper's wording of an info: a group whose rival has more room (extra < 0) is not "within the trial sd"
    # when the rival could gain more than that sd on it (a fresh-eyes pass saw -0.0868 called within 0.0401)
    from tunebook.analysis.checks.sampling import _Standing, _why_enough

    words = "the trial sd (0.0401)"
    leader = _Standing(rival="sgd", trails_by=None, leads_by=0.5, extra=-0.0868, rival_room=0.1)
    assert _why_enough(leader, 0.0401, words) == "less than its lead of 0.5"
    assert "see sgd's finding" in _why_enough(_Standing("sgd", None, 0.05, -0.0868, 0.1), 0.0401, words)
    assert _why_enough(_Standing("sgd", None, 0.5, 0.02, 0.1), 0.0401, words) == f"within {words}"
    assert "only widen its lead" in _why_enough(_Standing("sgd", None, 0.5, 0.09, 0.1), 0.0401, words)
    assert _why_enough(_Standing("adam", 0.3, None, -0.09, 0.1), 0.0401, words) == "it would only fall further behind"
    assert _why_enough(_Standing("adam", 0.3, None, 0.09, 0.1), 0.0401, words) == "less than the 0.3 by which it trails"
