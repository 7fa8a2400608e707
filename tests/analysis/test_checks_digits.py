"""The checklist on real digits studies with a known answer (see tests/_digits_cases.py for the cases
and the grid pilots behind them). One SQLite store per test session holds every trained study."""

from __future__ import annotations

import re

import pytest

import tunebook as tb
from _digits_cases import CASES, build_all

# trains ~33 real (tiny) digits trials once per session, all on one xdist worker (one store)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("digits-cases")]


@pytest.fixture(scope="session")
def digits_studies(tmp_path_factory):
    """Every case of CASES, trained once into one store; ``{case key: Study}``."""
    root = tmp_path_factory.mktemp("digits-cases")
    built = build_all(f"sqlite:///{root / 'digits.db'}", list(CASES.values()), root / "checkpoints")
    return {key: built[case.name] for key, case in CASES.items()}


#: Findings about the machine's timing, not the study: the digits workload spends 14-17% of its tiny step
#: fetching a batch on a quiet machine and 21% on a busy one, around input_bound's 20%. They are judged
#: neither way here (input_bound has its own known-answer tests on curves whose right answer is set).
TIMING_CHECKS = {"input_bound"}


def judged(report) -> list:
    """The warnings about the study itself (see TIMING_CHECKS)."""
    return [f for f in report.warnings() if f.check not in TIMING_CHECKS]


def warnings_of(report) -> set[str]:
    return {f.check for f in judged(report)}


def test_a_crossed_optimizer_comparison_with_sgd_limited_by_its_range_is_unfair(digits_studies):
    report = tb.analyze(digits_studies["optimizers"])
    boundary = [f for f in report.findings if f.check == "search_space_boundary"]
    assert [(f.evidence["group"], f.evidence["param"], f.evidence["side"]) for f in boundary] == [
        ("optimizer=sgd", "learning_rate", "upper")]
    answer = report.answer
    assert not answer.fair and answer.best_group == "optimizer=adam"
    assert any(r.startswith("optimizer=sgd is limited by its search space") for r in answer.reasons)
    assert "not yet fair" in answer.verdict and "Do not conclude yet" in answer.verdict
    # "train longer" is not advised for SGD while its best learning rate sits at the boundary
    longer = [f for f in report.findings if f.check in ("still_improving", "max_train_steps")]
    assert all(f.severity == "info" and f.evidence.get("qualified_by") == "search_space_boundary" for f in longer)
    # nothing warns about Adam
    assert not any(f.evidence.get("group") == "optimizer=adam" for f in judged(report))


def test_the_conditional_version_of_the_optimizer_comparison_is_fair(digits_studies):
    report = tb.analyze(digits_studies["optimizers_conditional"])
    study = digits_studies["optimizers_conditional"]
    params = {t.params["optimizer"]: set(t.params) for t in study.trials()}
    assert params["adam"] == params["sgd"] and "learning_rate" in params["sgd"]  # one name, two ranges
    ranges = {t.params["optimizer"]: t.params["learning_rate"] for t in study.trials()}
    assert 0.1 <= ranges["sgd"] <= 3.0 and 1e-3 <= ranges["adam"] <= 0.3
    assert not [f for f in report.findings if f.check == "search_space_boundary"]
    answer = report.answer
    assert answer.fair, answer.reasons
    assert {g.group for g in answer.groups} == {"optimizer=adam", "optimizer=sgd"}
    assert all(g.n_completed >= 6 for g in answer.groups)
    # What may still warn is SGD's own noise at its high best learning rates (the pilot's 0.5-1.0 region): a real
    # property of that optimizer here, not of the comparison. Nothing may warn about the search space or Adam.
    by_number = {t.number: t for t in study.trials()}
    for f in judged(report):
        assert f.check in ("step_variance", "instability"), (f.check, f.message)
        numbers = [int(n) for n in re.findall(r"#(\d+)", f.message)]
        assert numbers and all(by_number[n].params["optimizer"] == "sgd" and by_number[n].params["learning_rate"] >= 0.4
                               for n in numbers), f.message


def test_a_far_too_long_study_with_flat_validation(digits_studies):
    report = tb.analyze(digits_studies["too_long"])
    fired = warnings_of(report)
    assert "saturated_early" in fired or any(
        f.check == "max_train_steps" and f.evidence["verdict"] == "too long" for f in judged(report))
    assert "still_improving" not in {f.check for f in report.findings}
    assert fired <= {"saturated_early", "max_train_steps"}, [f.message for f in judged(report)]


def test_a_far_too_short_study_is_told_to_train_longer(digits_studies):
    report = tb.analyze(digits_studies["too_short"])
    fired = warnings_of(report)
    assert "still_improving" in fired or any(
        f.check == "max_train_steps" and f.evidence["verdict"] == "train longer" for f in judged(report))
    assert "saturated_early" not in fired
    assert fired <= {"still_improving", "max_train_steps"}, [f.message for f in judged(report)]
    for f in report.findings:  # the message names the window actually fitted (issue 21)
        if f.check == "still_improving":
            assert f.evidence["window_words"] in f.message and "25% of steps" not in f.message


def test_a_well_posed_study_gives_no_warnings(digits_studies):
    report = tb.analyze(digits_studies["well_posed"])
    assert judged(report) == [], [f.message for f in judged(report)]
    assert report.answer.fair and report.answer.groups[0].best_value == digits_studies["well_posed"].best_trial().value
