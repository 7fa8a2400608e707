"""Known answers about training length under a schedule that decays to zero, where the curves' flat end says
nothing and the length probes measure it (tunebook.designs.length_probes).

The truths come first, from the seeded grid pilots (5 seeds a point): on the regression workload, 40 cosine
steps against 80 (the probes' question: does twice the length help?) and against 300 (far better); the
300-step study is long enough for twice the length to show no clear gain (its case is in
test_known_answers_regression.py, which asserts it stays silent). The study here is the held-out evaluation's
case that was missed before the probes existed (benchmarks/pilots/heldout_regression.py, reg-too-short)."""

from __future__ import annotations

import math

import pytest
from _known_cases import Case, Studies, Truth, judged, lr

import tunebook as tb

# trains 15 tiny MLP trials of 40 steps and 3 probes of 80, once per session
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("length-cases")]

TRUTH = Truth("regression")


def best_of(prefix: str) -> tuple[str, dict]:
    key = min((k for k in TRUTH.points if k.startswith(prefix + " lr=")), key=lambda k: TRUTH.points[k]["mean"])
    return key, TRUTH.points[key]


CASES = {
    "short": Case("reg-too-short", "regression", {"nuisance": lr(1e-2, 0.2), "fixed": {"optimizer": "adam",
                                                                                       "eval_every": 5}},
                  trials=15, options={"max_train_steps": best_of("short adam")[1]["steps"]},
                  goal="Adam trained far too briefly"),
}


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("length-cases")
    return Studies(f"sqlite:///{root / 'length.db'}", CASES, root / "checkpoints")


def test_the_pilot_establishes_that_twice_the_length_helps():
    (_, short), (_, double) = best_of("short adam"), best_of("double adam")
    assert double["steps"] == 2 * short["steps"] == 80
    se = math.sqrt((short["sd"] ** 2 + double["sd"] ** 2) / len(TRUTH.data["seeds"]))
    assert short["mean"] - double["mean"] > 2 * se  # twice the length is better beyond two standard errors
    assert short["mean"] - TRUTH.best("adam")[1] > 5 * short["sd"]  # and 300 steps far better still
    curve = {int(s): v for s, v in short["curve"].items()}  # while its decayed end looks flat
    assert curve[35] - curve[40] < short["sd"]


def test_a_too_short_decaying_run_is_measured_by_its_probes(studies):
    study = studies["short"]
    assert sorted(set(study.probe_steps().values())) == [80] and len(study.probe_steps()) == 3
    report = tb.analyze(study)
    found = [f for f in judged(report) if f.check == "max_train_steps"]
    assert found and found[0].evidence["verdict"] == "train longer", [f.message for f in report.findings]
    ev = found[0].evidence
    assert ev["lower_bound"] > 0 and ev["probe_steps"] == 80 and ev["n_probes"] == 3
    # the probes are not search trials: neither the best trial nor in the answer's runs
    assert all(g.best_trial not in study.probe_steps() for g in report.answer.groups)
    assert not [f for f in judged(report) if f.check not in ("max_train_steps", "still_improving")]
