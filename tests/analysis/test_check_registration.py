"""A check carries its own metadata (issue 24): order in the report, figure, thresholds all on its ``@check``.

Adding a check is one decorated function: the toy check below registers itself, is listed where its
``order`` says, points at the figure its ``figure`` names and reads a threshold of its own, then
unregisters and leaves nothing behind."""

from __future__ import annotations

import math

import pytest

from tunebook.analysis import CHECKS, Finding, Thresholds, analyze
from tunebook.analysis.checks import FIGURE_OF_CHECK, REGISTRY, check, check_ids, thresholds_of, unregister
from tunebook.analysis.html import figure_index
from tunebook.analysis.synthetic import exp_decay, write_study


def _curve(params, steps, rng):
    # the optimum (lr 3.0) lies beyond the range's upper bound: search_space_boundary warns (order 20)
    floor = 0.05 + 0.1 * (math.log10(params["learning_rate"]) - math.log10(3.0)) ** 2
    return {"val/error": exp_decay(steps, floor, 1.0, 60) + 0.001 * rng.standard_normal(len(steps)),
            "train/loss": exp_decay(steps, 0.8 * floor, 2.3, 60) + 0.001 * rng.standard_normal(len(steps))}


def test_a_check_registered_in_one_place_is_ordered_linked_and_reads_its_own_threshold(sqlite_url):
    study = write_study(sqlite_url, "toy", _curve, trials=12, max_train_steps=1000, evals=40,
                        space={"nuisance": {"learning_rate": {"min": 1e-4, "max": 1.0, "scale": "log"}}})
    before = CHECKS

    @check("toy_few_trials", family="custom", order=15, figure="curves", uses=("noise_z",),
           thresholds={"toy_min_trials": 50})
    def toy(data, th):
        n = len(data.completed)
        if n >= th.toy_min_trials:
            return []
        return [Finding("toy_few_trials", "warning", f"{n} trials, fewer than {th.toy_min_trials}", "run more", {})]

    try:
        ids = check_ids()
        assert ids.index("toy_few_trials") == ids.index("unused_hyperparameter") + 1  # order 15: between 10 and 20
        assert thresholds_of("toy_few_trials") == {"noise_z": 2.5, "toy_min_trials": 50}
        assert Thresholds().toy_min_trials == 50
        report = analyze(study)
        warned = [f.check for f in report.warnings()]
        assert warned[:2] == ["toy_few_trials", "search_space_boundary"], warned  # listed by its order
        toy_finding = report.warnings()[0]
        assert FIGURE_OF_CHECK["toy_few_trials"] == "curves"
        i = figure_index(toy_finding, report.figures)
        assert i is not None and report.figures[i].kind == "curves"
        # its own threshold is set like any other, and read
        quiet = analyze(study, thresholds=Thresholds().with_values(toy_min_trials=5, noise_z=3.0))
        assert "toy_few_trials" not in quiet.checks()
        with pytest.raises(ValueError, match="no threshold named"):
            Thresholds().with_values(toy_min_trial=5)
        with pytest.raises(ValueError, match="already exist"):
            check("other", family="custom", thresholds={"noise_z": 1.0})
    finally:
        unregister("toy_few_trials")
    assert "toy_few_trials" not in REGISTRY and "toy_few_trials" not in FIGURE_OF_CHECK
    assert check_ids() == before
    with pytest.raises(AttributeError, match="toy_min_trials"):
        _ = Thresholds().toy_min_trials


def test_every_built_in_check_states_its_order_and_the_figures_come_from_the_registrations():
    assert all(math.isfinite(REGISTRY[c].order) for c in CHECKS)
    assert len({REGISTRY[c].order for c in CHECKS}) == len(CHECKS)  # no two share a place
    assert dict(FIGURE_OF_CHECK) == {c: REGISTRY[c].figure for c in CHECKS if REGISTRY[c].figure}
    assert FIGURE_OF_CHECK["sampled_enough"] == "sampled_enough" and "batch_size" not in FIGURE_OF_CHECK
