"""Known answers on the signals workload (tunebook.workloads.signals: a 1-D CNN on generated waveforms,
objective val/loss). The truths come first, from the seeded grid pilot benchmarks/pilots/pilot_signals.py
(4 seeds a point, tests/assets/pilots/signals.json). The studies are four of the held-out evaluation's
(benchmarks/pilots/heldout_signals.py, same specs): before issue 21's second round their findings were
wrong on each (a boundary warning on a clean study and on a tie, which made the tie "not yet fair"; a
step_variance warning and no stability_edge on SGD's gradual edge). One SQLite store per session."""

from __future__ import annotations

import pytest
from _known_cases import Case, Studies, Truth, answer_kind, tie_or_not_separated, is_gradual_edge, judged, lr

import tunebook as tb

# trains ~59 real (tiny) CNN trials once per session, on one xdist worker (one store)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("signals-cases")]

TRUTH = Truth("signals")
ADAM = {"optimizer": "adam"}

CASES = {
    # Adam over [2e-3, 3e-2]: the pilot's optimum (1e-2) lies inside; at 3e-2 some seeds are better, some never learn
    "clean": Case("sig-clean", "signals", {"nuisance": lr(2e-3, 3e-2), "fixed": ADAM}, trials=12, goal="Adam, well posed"),
    # Adam over [1e-4, 1e-3]: the optimum lies above the upper bound
    "boundary": Case("sig-boundary", "signals", {"nuisance": lr(1e-4, 1e-3), "fixed": ADAM}, trials=12,
                     goal="Adam with a range below its optimum"),
    # plain SGD over [0.1, 32]: best near 1, steadily worse above, every seed diverges from 16 up
    "sgd_edge": Case("sig-sgd-edge", "signals", {"nuisance": lr(0.1, 32.0), "fixed": {"optimizer": "sgd"}},
                     trials=15, goal="Plain SGD's learning rate"),
    # 16 vs 24 channels, 8 trials per group and 2 replicates each: a tie
    "width": Case("sig-width", "signals", {"scientific": {"channels": {"choice": [16, 24]}},
                                           "nuisance": lr(1e-3, 0.1), "fixed": ADAM}, trials=20,
                  options={"replicates": 2}, goal="Do 24 channels beat 16?"),
}


@pytest.fixture(scope="session")
def signal_studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("signals-cases")
    return Studies(f"sqlite:///{root / 'signals.db'}", CASES, root / "checkpoints")


def boundary(report) -> list:
    return [f for f in report.findings if f.check == "search_space_boundary"]


def test_the_pilot_establishes_the_truths():
    key, _ = TRUTH.best("adam")
    assert 2e-3 < TRUTH.points[key]["params"]["learning_rate"] < 3e-2  # clean: the optimum inside its range
    assert TRUTH.points[key]["params"]["learning_rate"] > 1e-3  # boundary: above that range
    assert TRUTH.mean("adam lr=0.001") - TRUTH.mean(key) > 3 * TRUTH.seed_sd(key, "adam lr=0.001")
    assert is_gradual_edge(TRUTH.edge("sgd"), TRUTH.seed_sd(TRUTH.best("sgd")[0]))
    assert TRUTH.verdict("adam", "adam channels=24") == "tie"


def test_a_clean_study_whose_best_sits_at_the_edge_by_noise_has_no_boundary_warning(signal_studies):
    report = tb.analyze(signal_studies["clean"])
    assert not [f for f in boundary(report) if f.severity == "warning"], [f.message for f in boundary(report)]
    for f in boundary(report):  # said, as info, with what was measured
        assert not f.evidence["beyond_noise"] and f.evidence["trial_sd_source"] == "replicates"
        assert f.evidence["gap"] <= f.evidence["trial_sd"]
    assert {f.check for f in judged(report)} <= {"still_improving", "max_train_steps"}  # true: still falling


def test_an_optimum_above_the_range_is_a_boundary_and_only_that(signal_studies):
    report = tb.analyze(signal_studies["boundary"])
    (f,) = [f for f in boundary(report) if f.severity == "warning"]
    assert f.evidence["side"] == "upper" and f.evidence["beyond_noise"] and f.evidence["gap_in_sd"] > 1
    # sampling more inside the range is not the action while its best sits at the edge
    assert {g.check for g in judged(report)} == {"search_space_boundary"}, [g.message for g in judged(report)]
    assert not report.answer.fair


def test_a_tie_whose_wider_group_is_best_at_the_edge_by_noise_is_a_tie(signal_studies):
    report = tb.analyze(signal_studies["width"])
    # the pilot's truth is a tie; with few replicates the interval is wider than one trial sd: "not separated"
    assert answer_kind(report.answer) == tie_or_not_separated(report.answer), report.answer.verdict
    assert not [f for f in boundary(report) if f.severity == "warning"]


def test_sgds_gradual_edge_far_above_its_best_is_named_without_a_step_variance_alarm(signal_studies):
    report = tb.analyze(signal_studies["sgd_edge"])
    (f,) = [f for f in report.findings if f.check == "stability_edge"]
    assert f.severity == "warning" and f.evidence["rule"] == "steeper above"
    assert f.evidence["first_diverged"] >= 8 and 0.5 < f.evidence["best_value"] < 2.5
    assert f.evidence["width"] > 0.35  # beyond the old fixed window: judged by the shape, not the distance
    # one of the three best curves has a spike; the others are quieter than the trial sd: not step noise
    assert not [g for g in judged(report) if g.check == "step_variance"]
    assert {g.check for g in judged(report)} <= {"stability_edge", "still_improving", "max_train_steps",
                                                 "instability", "infeasible_share"}
