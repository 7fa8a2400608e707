"""Bayesian optimization for the exploitation phase, over tunebook's own store."""

from __future__ import annotations

import optuna
import pytest

import _workloads as w
import tunebook as tb
from tunebook.designs import bayesian

SPACE = tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1.0, "log")})


def explore(url, tmp_path, train=w.quadratic, trials=10, name="explore"):
    study = tb.create_study(name, space=SPACE, objective=("val/error", "min"), trials=trials, max_train_steps=5, storage=url)
    tb.run(study, train, workers=0, progress=False, checkpoint_dir=tmp_path)
    return study


def exploit(url, sampler, trials=6, parent="explore", name=None):
    return tb.create_study(name or f"exploit-{sampler}", space=SPACE, objective=("val/error", "min"), trials=trials,
                           max_train_steps=5, storage=url, design="bayesian", parent=parent, sampler=sampler)


def test_infeasible_trials_are_constraints_never_values(sqlite_url, tmp_path):
    parent = explore(sqlite_url, tmp_path, train=w.cliff)
    bad = [t for t in parent.trials() if t.state == "infeasible"]
    assert bad, "the exploration must hit the cliff"
    dists = {"lr": bayesian.distribution(SPACE.params["lr"])}
    frozen = bayesian._frozen(optuna, SPACE, dists, bad[0])
    assert frozen.state == optuna.trial.TrialState.PRUNED and frozen.value is None
    assert frozen.constraints == {"infeasible": 1.0} and frozen.intermediate_values == {}
    good = next(t for t in parent.trials() if t.state == "completed")
    feasible = bayesian._frozen(optuna, SPACE, dists, good)
    assert feasible.value == good.value and feasible.constraints == {"infeasible": 0.0}


@pytest.mark.parametrize("sampler", ["gp", "tpe"])
def test_two_workers_stop_at_the_budget(sqlite_url, tmp_path, sampler):
    explore(sqlite_url, tmp_path)
    study = exploit(sqlite_url, sampler)
    assert study.trials() == []  # nothing materialized: proposed as it runs
    result = tb.run(study, w.quadratic, workers=2, progress=False, checkpoint_dir=tmp_path)
    assert result.finished and result.counts["completed"] == 6
    assert [t.number for t in study.trials()] == list(range(6))  # never past the budget, no gap


def test_gp_warm_start_goes_straight_to_the_optimum(sqlite_url, tmp_path):
    parent = explore(sqlite_url, tmp_path)
    study = exploit(sqlite_url, "gp")
    tb.run(study, w.quadratic, workers=0, progress=False, checkpoint_dir=tmp_path)
    # the model already knows from the exploration that the optimum is near lr = 0.01
    lrs = sorted(t.params["lr"] for t in study.trials())
    assert 0.003 < lrs[len(lrs) // 2] < 0.03, lrs
    assert study.best_trial().value <= parent.best_trial().value


def test_gp_proposals_stay_out_of_the_known_infeasible_region(sqlite_url, tmp_path):
    explore(sqlite_url, tmp_path, train=w.cliff, trials=12)
    study = exploit(sqlite_url, "gp", trials=8)
    tb.run(study, w.cliff, workers=0, progress=False, checkpoint_dir=tmp_path)
    assert sum(t.state == "infeasible" for t in study.trials()) <= 1
    assert study.best_trial().params["lr"] < 0.05


def test_refined_bounds_narrow_around_the_best_trials(sqlite_url, tmp_path):
    parent = explore(sqlite_url, tmp_path, trials=20)
    refined = bayesian.refined_space(parent)["lr"]
    best = parent.best_trial().params["lr"]
    assert refined["min"] <= best <= refined["max"] and refined["scale"] == "log"
    assert refined["min"] > 1e-4 and refined["max"] < 1.0


def test_bayesian_spec_errors(sqlite_url):
    with pytest.raises(tb.SpecError, match="sampler: unknown sampler"):
        exploit(sqlite_url, "cmaes", parent=None)
    with pytest.raises(tb.SpecError, match="parent: no study named 'missing'"):
        exploit(sqlite_url, "gp", parent="missing")
    with pytest.raises(tb.SpecError, match="only a bayesian study has a sampler"):
        tb.create_study("qr", space=SPACE, objective=("v", "min"), trials=2, max_train_steps=5, storage=sqlite_url, sampler="gp")
    study = exploit(sqlite_url, "tpe", trials=4, parent=None, name="grow")
    grown = exploit(sqlite_url, "tpe", trials=9, parent=None, name="grow")
    assert grown.trials_budget == 9 and grown.trials() == [] and grown.id == study.id


def test_known_infeasible_region_by_nearest_neighbours():
    space = tb.SearchSpace(nuisance={"x": tb.Float(0.0, 1.0)})
    known = [({"x": 0.1}, False), ({"x": 0.2}, False), ({"x": 0.8}, True), ({"x": 0.9}, True), ({"x": 0.95}, True)]
    assert bayesian.infeasible_neighbourhood(space, {"x": 0.85}, known)
    assert not bayesian.infeasible_neighbourhood(space, {"x": 0.15}, known)
    assert not bayesian.infeasible_neighbourhood(space, {"x": 0.5}, [])
    # beside one infeasible point, two close feasible ones outvote it
    assert not bayesian.infeasible_neighbourhood(space, {"x": 0.5}, [({"x": 0.45}, False), ({"x": 0.55}, False), ({"x": 0.5}, True)][:2] + [({"x": 0.9}, True)])
