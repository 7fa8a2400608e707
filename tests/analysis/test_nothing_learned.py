"""`nothing_learned`: known answers on three workloads of different kinds (signals: a 1-D CNN classifier;
regression: an MLP on a regression table; tabular: an MLP classifier that learns in about 20 steps).

The truths come first, from the seeded grid pilot benchmarks/pilots/pilot_nothing_learned.py (3 seeds a
point, tests/assets/pilots/nothing_learned.json): at the top of the range 1e-7..1e-6 every workload's best
value stays within 1% of the way from the untrained model (rate 0) to its best rate's (the range is far too
low: nothing learned), and at the clean ranges' rates (their own pilots, tests/assets/pilots/<workload>.json)
every workload learns. Before the check existed the far-too-low studies warned "still improving" and
"train longer" (a drift of a few ten-thousandths, beyond a smooth curve's near-zero noise).
"""

from __future__ import annotations

import pytest
from _known_cases import Case, Studies, Truth, lr, pilot

import tunebook as tb
from tunebook.analysis.checks.learned import PRESUMES_LEARNING
from tunebook.analysis.checks import Thresholds, run_checks
from tunebook.analysis.data import load

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("nothing-learned-cases")]

ADAM = {"optimizer": "adam"}
NONE = {"replicates": 0}
LOW = lr(1e-7, 1e-6)
CASES = {
    "signals_low": Case("nl-sig-low", "signals", {"nuisance": LOW, "fixed": ADAM}, trials=6, options=NONE),
    "regression_low": Case("nl-reg-low", "regression", {"nuisance": LOW, "fixed": ADAM}, trials=6, options=NONE),
    "tabular_low": Case("nl-tab-low", "tabular", {"nuisance": LOW, "fixed": ADAM}, trials=6, options=NONE),
    # the defaults: 3 replicates of the best, and (cosine decays to zero) 3 length probes at twice the steps,
    # which see the flat curve drift a little further and would ask for training longer
    "regression_low_defaults": Case("nl-reg-low-defaults", "regression", {"nuisance": LOW, "fixed": ADAM}, trials=9),
    "regression_clean": Case("nl-reg-clean", "regression", {"nuisance": lr(1e-2, 0.1), "fixed": ADAM}, trials=6,
                             options=NONE),
    # the fast learner: its first evaluation (step 10) comes when the good rates have mostly learned already
    "tabular_clean": Case("nl-tab-clean", "tabular", {"nuisance": lr(1e-3, 3e-2), "fixed": ADAM}, trials=6,
                          options=NONE),
    # seven decades: the lowest rates learn nothing, the top ones learn
    "signals_mixed": Case("nl-sig-mixed", "signals", {"nuisance": lr(1e-7, 1e-2), "fixed": ADAM}, trials=8,
                          options=NONE),
}
LEARNS = {"signals": (2e-3, 3e-2), "regression": (1e-2, 0.1), "tabular": (1e-3, 3e-2)}


@pytest.fixture(scope="session")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("nothing-learned-cases")
    return Studies(f"sqlite:///{root / 'nl.db'}", CASES, root / "checkpoints")


def flat(report) -> list:
    return [f for f in report.findings if f.check == "nothing_learned"]


def test_the_pilot_establishes_the_truths():
    truth = pilot("nothing_learned")
    for name in ("signals", "regression", "tabular"):
        points = truth["workloads"][name]["points"]
        untrained, top = points["lr=0"]["mean"], points["lr=1e-06"]["mean"]
        best = points[f"lr={truth['best'][name]:g}"]["mean"]
        assert untrained - best > 0.3 * untrained, name  # the workload learns at its best rate...
        assert abs(untrained - top) < 0.01 * (untrained - best), name  # ...and the low range does not
        own = Truth(name)  # the clean ranges hold rates that learn (their own pilots: plain Adam's sweep)
        lo, hi = LEARNS[name]
        inside = [p["mean"] for k, p in own.points.items() if k.startswith("adam lr=") and "steps" not in p
                  and lo <= p["params"]["learning_rate"] <= hi]
        assert inside and max(inside) < untrained - 0.3 * (untrained - best), name
    mixed = truth["workloads"]["signals"]["points"]
    assert mixed["lr=1e-07"]["mean"] > mixed["lr=0.01"]["mean"] + 0.3  # the mixed range's ends: flat, learned


@pytest.mark.parametrize("case", ["signals_low", "regression_low", "tabular_low"])
def test_a_range_far_too_low_is_named_first_and_nothing_presumes_learning(studies, case):
    report = tb.analyze(studies[case])
    warnings = report.warnings()
    assert warnings and warnings[0].check == "nothing_learned", [f.check for f in warnings]
    f = warnings[0]
    assert f.message.startswith("No trial learned:") and "learning_rate from" in f.message
    assert "[1e-07, 1e-06]" in f.message and "first evaluations" in f.message and "train/loss goes from" in f.message
    assert "lr-sweep" in f.action and "tiny subset" in f.action
    assert len(f.evidence["trials"]) == 3 and f.evidence["train_logged"]
    assert all(m <= f.evidence["start_spread"] for m in f.evidence["moved"])
    # nothing that presumes learning is left a warning, and what it said is qualified
    assert [w.check for w in warnings] == ["nothing_learned"], [w.message for w in warnings]
    qualified = [g for g in report.findings if g.evidence.get("qualified_by") == "nothing_learned"]
    assert {g.check for g in qualified} & {"still_improving", "max_train_steps"}, [g.check for g in report.findings]
    presuming = [g for g in report.findings if g.check in PRESUMES_LEARNING]
    assert all(g.evidence.get("qualified_by") == "nothing_learned" and "widen" not in g.action for g in presuming), \
        [(g.check, g.action) for g in presuming]  # not even an info's "to be sure, widen its lower bound"
    assert not report.answer.fair and "learned" in report.answer.reasons[0]


# signals' clean range is judged silent by test_known_answers_signals.py's clean study (the same check runs there);
# here its mixed range (learning rates 1e-7 to 1e-2, whose best trials learn) is the 1-D CNN's silent case
@pytest.mark.parametrize("case", ["regression_clean", "tabular_clean", "signals_mixed"])
def test_studies_that_learned_are_silent(studies, case):
    report = tb.analyze(studies[case])
    assert not flat(report), [f.message for f in flat(report)]
    assert not [f for f in report.findings if f.evidence.get("qualified_by") == "nothing_learned"]


def test_in_the_mixed_range_the_lowest_rates_learned_nothing_but_the_best_did(studies):
    """The silence above is not for want of flat curves: the mixed study's lowest-rate trial is flat by the
    same measure, its best is not."""
    from tunebook.analysis.checks.learned import Flat, flat_trial, start_spread

    data, th = load(studies["signals_mixed"]), Thresholds()
    spread, _ = start_spread(data, th)
    lowest = min(data.completed, key=lambda t: t.params["learning_rate"])
    assert lowest.params["learning_rate"] < 1e-5
    assert isinstance(flat_trial(data, lowest, spread, th), Flat)
    assert flat_trial(data, data.ranked()[0], spread, th) is True


def test_the_fast_learner_is_kept_silent_by_its_training_loss(studies):
    """The tabular study's best trials are nearly flat after their first evaluation (step 10): without the
    training loss from the first steps the objective alone cannot tell, and the finding says so as info."""
    data = load(studies["tabular_clean"])
    blind = [f for f in run_checks(data, Thresholds(train_metric="train/never_logged")) if f.check == "nothing_learned"]
    assert all(f.severity == "info" for f in blind)
    assert all("whether the trials learned before their first evaluation is not measured" in f.message for f in blind)
    assert not [f for f in run_checks(data, Thresholds()) if f.check == "nothing_learned"]


def test_without_a_training_loss_a_flat_objective_is_info_that_says_what_was_not_measured(studies):
    data = load(studies["signals_low"])
    (f,) = [f for f in run_checks(data, Thresholds(train_metric="train/never_logged")) if f.check == "nothing_learned"]
    assert f.severity == "info" and not f.evidence["train_logged"]
    assert "train/never_logged" in f.message and "not measured" in f.message


@pytest.mark.parametrize("case", ["signals_low", "regression_low"])
def test_next_moves_the_rate_up_where_it_proposed_training_twice_as_long(studies, case):
    """Before the check, `tunebook next` read these studies' flat curves as compute-bound (still_improving,
    max_train_steps "train longer") and proposed 300 -> 600 steps."""
    from tunebook.procedures.next import next_study

    study = studies[case]
    proposal = next_study(study)
    assert proposal.action == "widen" and proposal.findings == ["nothing_learned"], proposal.lines()
    assert proposal.spec["max_train_steps"] == study.max_train_steps
    rate = proposal.spec["search_space"]["nuisance"]["learning_rate"]
    assert rate["min"] == pytest.approx(1e-6) and rate["max"] == pytest.approx(1e-3)


def test_with_replicates_and_length_probes_nothing_asks_for_a_longer_round(studies):
    study = studies["regression_low_defaults"]
    report = tb.analyze(study)
    assert [f.check for f in report.warnings()] == ["nothing_learned"], [f.message for f in report.warnings()]
    from tunebook.procedures.next import next_study

    proposal = next_study(study)
    assert proposal.action == "widen" and proposal.spec["max_train_steps"] == study.max_train_steps, proposal.lines()
