"""The explore page: parallel coordinates over the trials and hyperparameter importance with its method named.

Importance is checked on studies whose answer is known by construction: the objective depends on the
learning rate alone (and a little on the scientific value), a second nuisance hyperparameter does nothing;
and a study whose objective is noise, where no hyperparameter may look important. Two workloads (a loss
falling to a floor, an accuracy rising to a ceiling). Speed is measured in benchmarks/bench_dashboard.py.
"""

from __future__ import annotations

import math

import pytest

from tunebook.analysis.data import load
from tunebook.analysis.explore import importance, main_effect_share, parallel_spec
from tunebook.analysis.synthetic import exp_decay, write_study

SPACE = {"scientific": {"wd": {"choice": [0.0, 0.1]}},
         "nuisance": {"lr": {"min": 1e-4, "max": 1.0, "scale": "log"}, "idle": {"min": 0.0, "max": 1.0}}}


def loss(params, steps, rng):
    floor = 0.05 + 0.2 * abs(math.log10(params["lr"]) + 2) + 0.02 * params["wd"] + 0.01 * rng.standard_normal()
    return {"val/error": exp_decay(steps, floor, 1.0, 60)}


def accuracy(params, steps, rng):
    ceiling = 0.95 - 0.15 * abs(math.log10(params["lr"]) + 2.5) + 0.01 * rng.standard_normal()
    return {"val/accuracy": ceiling - exp_decay(steps, 0.0, 0.8, 60)}


def noise(params, steps, rng):
    return {"val/error": exp_decay(steps, 0.3 + 0.05 * rng.standard_normal(), 1.0, 60)}


@pytest.mark.parametrize("curve, objective", [(loss, ("val/error", "min")), (accuracy, ("val/accuracy", "max"))])
def test_the_hyperparameter_that_decides_the_objective_comes_first(sqlite_url, curve, objective):
    study = write_study(sqlite_url, "s", curve, space=SPACE, trials=120, objective=objective)
    result = importance(load(study))
    assert result.method.startswith("main-effect share") and result.trials == 120
    assert list(result.values)[0] == "lr" and result.values["lr"] > 0.5, result.values
    assert result.values["idle"] < 0.1, result.values  # it does nothing


def test_noise_makes_nothing_look_important(sqlite_url):
    study = write_study(sqlite_url, "n", noise, space=SPACE, trials=120)
    result = importance(load(study))
    assert max(result.values.values()) < 0.1, result.values


def test_a_share_is_zero_for_unrelated_values_and_one_for_a_function_of_them():
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.uniform(size=2000)
    assert main_effect_share(x, rng.normal(size=2000), categorical=False) < 0.02
    assert main_effect_share(x, np.floor(x * 10), categorical=False, bins=10) > 0.99


def test_too_few_trials_give_no_estimate_and_say_why(sqlite_url):
    study = write_study(sqlite_url, "few", loss, space=SPACE, trials=4)
    result = importance(load(study))
    assert result.values == {} and "needs 8 completed trials" in result.note


def test_the_page_names_its_method_and_draws_parallel_coordinates(sqlite_url):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from tunebook.dashboard import create_app

    study = write_study(sqlite_url, "p", loss, space=SPACE, trials=40)
    client = TestClient(create_app(sqlite_url), base_url="http://127.0.0.1")
    page = client.get("/study/p/explore")
    assert page.status_code == 200
    assert "<b>Method:</b> main-effect share of the objective&#39;s ranks (tunebook)" in page.text
    assert 'id="figure-parallel"' in page.text and 'id="figure-importance"' in page.text
    assert client.get("/study/p/explore?method=nope").status_code == 404
    assert client.get("/study/p/explore?view=interactive").status_code == 200
    spec = parallel_spec(load(study))
    assert [a["label"] for a in spec["axes"]] == ["wd", "lr (log)", "idle", "val/error"]
    completed = {t.number: t for t in study.trials() if t.state == "completed"}
    assert len(spec["group"]) == len(completed) and all(len(c) == len(completed) for c in spec["columns"])  # one line per trial
    assert [g["label"] for g in spec["groups"]] == ["wd=0.0", "wd=0.1"]
    assert [g["count"] for g in spec["groups"]] == [spec["group"].count(0), spec["group"].count(1)]
    # the objective's axis: each line ends at its trial's value, scaled to the objective's range
    values = sorted(t.value for t in completed.values())
    ends = sorted(spec["columns"][-1])
    assert ends[0] == 0 and ends[-1] == spec["scale"]
    scaled = [round((v - values[0]) / (values[-1] - values[0]) * spec["scale"]) for v in values]
    assert ends == pytest.approx(scaled, abs=1)
    # a choice's axis places each value at its choice's tick
    wd = spec["axes"][0]
    assert wd["ticks"] == [[0.0, "0.0"], [1.0, "0.1"]] and set(spec["columns"][0]) == {0, spec["scale"]}
