"""Known answers on the character-level language model (tunebook.workloads.char_lm: a 1-layer GRU on text
from a seeded grammar, objective val/bpc). The truths come first, from the seeded grid pilot
benchmarks/pilots/pilot_char_lm.py (4 seeds a point, tests/assets/pilots/char_lm.json); each test holds
tunebook's report to them. One SQLite store per session holds every study."""

from __future__ import annotations

import pytest
from _known_cases import Case, Studies, Truth, answer_kind, tie_or_not_separated, diverges_next_to_best, judged, lr, stability_findings

import tunebook as tb

# trains ~60 real (tiny) GRU trials once per session, on one xdist worker (one store)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("char-lm-cases")]

TRUTH = Truth("char_lm")


def longer_training_helps() -> bool:
    """The pilot's training-length truth: Adam at its best rate (2e-2) reaches a better val/bpc in 400 steps than
    in the studies' 200, by more than two standard errors of the difference of the seeds' means."""
    short, long = TRUTH.points["adam lr=0.02"], TRUTH.points["adam lr=0.02 (400 steps)"]
    n = len(TRUTH.data["seeds"])
    se = ((short["sd"] ** 2 + long["sd"] ** 2) / n) ** 0.5
    return short["mean"] - long["mean"] > 2 * se


def not_train_longer(report) -> list:
    """The warnings other than "train longer", which is true of every 200-step study here (see
    longer_training_helps): it may warn, it is not required."""
    return [f for f in judged(report) if not (f.check == "still_improving" or (
        f.check == "max_train_steps" and f.evidence.get("verdict") == "train longer"))]
ADAM_RANGE = lr(5e-3, 0.1)  # holds Adam's optimum (pilot: 2e-2..4e-2) well inside

CASES = {
    # a clear winner (pilot: no dropout beats dropout 0.3 by 4 seed sd at each one's best rate), 9 search trials
    # per group and 3 replicates of each group's best (with 2 + 2 the 95% interval, on 2 dof, includes 0)
    "dropout": Case("char-dropout", "char_lm", {"scientific": {"dropout": {"choice": [0.0, 0.3]}},
                                                "nuisance": ADAM_RANGE, "fixed": {"optimizer": "adam"}},
                    trials=24, goal="Does dropout 0.3 help the small character model?"),  # 18 + 2 x 3
    # a parameter that does not matter: Adam's epsilon at 1e-8 or 1e-6
    "epsilon": Case("char-epsilon", "char_lm", {"scientific": {"epsilon": {"choice": [1e-8, 1e-6]}},
                                                "nuisance": ADAM_RANGE, "fixed": {"optimizer": "adam"}},
                    trials=24, goal="Does Adam's epsilon matter for the character model?"),  # 18 + 2 x 3
    # plain SGD over a range whose best rates are followed by rates where more and more seeds diverge
    "sgd_edge": Case("char-sgd-edge", "char_lm", {"nuisance": lr(1.0, 32.0), "fixed": {"optimizer": "sgd"}},
                     trials=12, goal="Plain SGD on the character model"),
}


@pytest.fixture(scope="session")
def char_studies(tmp_path_factory):
    """Each case's study, trained on first use into one store."""
    root = tmp_path_factory.mktemp("char_lm-cases")
    return Studies(f"sqlite:///{root / 'char.db'}", CASES, root / "checkpoints")


def test_the_pilot_establishes_the_truths():
    """What the tests below rely on, read from the pilot (fails if the pilot is re-run and the truths move)."""
    assert TRUTH.verdict("adam", "adam dropout=0.3") == "winner" and TRUTH.gap_in_sd("adam", "adam dropout=0.3") > 0
    assert TRUTH.verdict("adam", "adam epsilon=1e-6") == "tie"  # does not matter
    assert longer_training_helps()  # 200 steps is short of the best: "train longer" is true
    edge = TRUTH.edge("sgd")
    assert diverges_next_to_best(edge)  # seeds start to diverge within 2x the best rate, all of them at the top
    assert 1.0 < edge["best_rate"] < 32.0  # inside the case's range, which holds diverging rates too


def test_a_parameter_that_does_not_matter_is_a_tie(char_studies):
    report = tb.analyze(char_studies["epsilon"])
    # the pilot's truth is a tie; with few replicates the interval is wider than one trial sd: "not separated"
    assert answer_kind(report.answer) == tie_or_not_separated(report.answer), report.answer.verdict
    assert report.answer.trial_sd_source == "replicates"
    assert not_train_longer(report) == [], [f.message for f in judged(report)]


def test_an_edge_of_stability_is_named(char_studies):
    report = tb.analyze(char_studies["sgd_edge"])
    found = stability_findings(report)
    assert found, [f"{f.check}: {f.message}" for f in report.findings]
    assert all(f.evidence.get("param", "learning_rate") == "learning_rate" for f in found)


def test_a_clear_winner_is_named_with_its_measured_interval(char_studies):
    report = tb.analyze(char_studies["dropout"])
    answer = report.answer
    assert answer_kind(answer) == "winner" and answer.best_group == "dropout=0.0", answer.verdict
    assert answer.trial_sd_source == "replicates" and answer.difference - answer.interval > 0
    assert "3+3 runs" in answer.verdict
    assert not_train_longer(report) == [], [f.message for f in judged(report)]
