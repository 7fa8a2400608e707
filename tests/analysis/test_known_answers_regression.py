"""Known answers on the regression workload (tunebook.workloads.regression: an MLP fitting a seeded synthetic
function, objective val/mse), the second held-out workload: no check or threshold was tuned on it. The truths
come first, from the seeded grid pilot benchmarks/pilots/pilot_regression.py (5 seeds a point, 300 cosine
steps, tests/assets/pilots/regression.json). The studies are two of the held-out evaluation's
(benchmarks/pilots/heldout_regression.py, same specs, default 3 replicates), both judged right there: a clear
winner and a clean study. One SQLite store per session."""

from __future__ import annotations

import math

import pytest
from _known_cases import Case, Studies, Truth, answer_kind, judged, lr

import tunebook as tb

# trains 41 real (tiny) MLP trials once per session, on one xdist worker (one store)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("regression-cases")]

TRUTH = Truth("regression")
ADAM = {"optimizer": "adam"}
WIDE = lr(1e-2, 0.2)

CASES = {
    # dropout 0 vs 0.3, 10 search trials per group and 3 replicates of each group's best: dropout 0 is better
    "dropout": Case("reg-dropout", "regression", {"scientific": {"dropout": {"choice": [0.0, 0.3]}},
                                                  "nuisance": WIDE, "fixed": ADAM}, trials=26,
                    options={"length_probes": 0}, goal="Does dropout 0.3 hurt?"),  # length: the clean case's question
    # Adam over [1e-2, 0.2]: the pilot's optimum (flat from 3e-2 to 0.1) lies inside, and the curves are flat at
    # the end of a cosine decayed to zero: its 3 length probes at 600 steps measure the gain of training longer
    # (the pilot's 600-step points: 3.6-3.8 standard errors better at 0.03-0.05, 0.8 at 0.1), so "train longer"
    # is true there and may be measured (or not: 3 pairs); nothing else is
    "clean": Case("reg-clean", "regression", {"nuisance": WIDE, "fixed": ADAM}, trials=15, goal="Adam, well posed"),
}


@pytest.fixture(scope="session")
def regression_studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("regression-cases")
    return Studies(f"sqlite:///{root / 'regression.db'}", CASES, root / "checkpoints")


def test_the_pilot_establishes_the_truths():
    key, best = TRUTH.best("adam")
    assert 3e-2 <= TRUTH.points[key]["params"]["learning_rate"] <= 0.1  # clean: well inside [1e-2, 0.2]
    n = len(TRUTH.data["seeds"])
    for edge in ("adam lr=0.01", "adam lr=0.2"):  # both ends worse than the optimum beyond two standard errors
        assert TRUTH.mean(edge) - best > 2 * math.sqrt(2 / n) * TRUTH.seed_sd(key, edge)
    assert TRUTH.verdict("adam", "adam dropout=0.3") == "winner" and TRUTH.gap_in_sd("adam", "adam dropout=0.3") > 3
    curve = {int(s): v for s, v in TRUTH.points[key]["curve"].items()}  # flat at its decayed end
    assert curve[240] - curve[300] < TRUTH.points[key]["sd"]
    short, long = TRUTH.points["adam lr=0.05"], TRUTH.points["long adam lr=0.05"]  # yet 600 steps are better
    assert short["mean"] - long["mean"] > 2 * math.sqrt((short["sd"] ** 2 + long["sd"] ** 2) / n)


def test_a_clear_winner_is_named_from_replicates_without_a_warning(regression_studies):
    report = tb.analyze(regression_studies["dropout"])
    answer = report.answer
    assert answer_kind(answer) == "winner" and answer.best_group == "dropout=0.0", answer.verdict
    assert answer.trial_sd_source == "replicates" and answer.interval is not None
    assert answer.difference - answer.interval > 0  # the 95% interval of the replicates' difference excludes 0
    assert not judged(report), [f.message for f in judged(report)]


def test_a_clean_study_warns_of_nothing_but_a_measured_length(regression_studies):
    study = regression_studies["clean"]
    report = tb.analyze(study)
    assert not [f for f in judged(report) if f.check != "max_train_steps"], [f.message for f in judged(report)]
    assert len(study.probe_steps()) == 3  # the probes ran: "train longer" is measured, not read from flat curves
    verdicts = [f.evidence.get("verdict") for f in report.findings if f.check == "max_train_steps"]
    assert len(verdicts) == 1 and verdicts[0] in ("train longer", "no measured gain"), verdicts
    assert report.answer.trial_sd_source == "replicates"
    boundary = [f for f in report.findings if f.check == "search_space_boundary"]
    assert not [f for f in boundary if f.severity == "warning"]
