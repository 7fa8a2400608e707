"""The trial table's SQL: sort by any hyperparameter and filter by one, on SQLite and PostgreSQL;
trials that lack a (conditional) hyperparameter sort last and show a blank cell."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

import tunebook as tb
from tunebook.analysis.synthetic import exp_decay, write_study
from tunebook.dashboard.table import TableQuery, page as trials_page

SPACE = {"scientific": {"opt": {"choice": ["adam", "sgd"]}},
         "nuisance": {"lr": {"min": 1e-4, "max": 1.0, "scale": "log"}, "beta1": {"min": 0.8, "max": 0.99}}}


def curve(params, steps, rng):
    return {"val/error": exp_decay(steps, 0.05 + 0.1 * params["lr"], 1.0, 60)}


@pytest.fixture
def study(storage_url):
    s = write_study(storage_url, "t", curve, space=SPACE, trials=30)
    # a conditional hyperparameter: beta1 exists for adam only
    from tunebook.storage.sql import trials

    engine = sa.create_engine(storage_url)
    with engine.begin() as conn:
        for t in s.trials():
            if t.params["opt"] == "sgd":
                params = {k: v for k, v in t.params.items() if k != "beta1"}
                conn.execute(trials.update().where(trials.c.id == t.id).values(params=json.dumps(params)))
    engine.dispose()
    return tb.load_study("t", storage=storage_url)


def test_sort_by_a_hyperparameter_and_filter_in_sql(study):
    store = study.storage
    rows, total = trials_page(store, study.id, TableQuery(order="p.lr", limit=100))
    assert total == 30 and [t.params["lr"] for t in rows] == sorted(t.params["lr"] for t in study.trials())
    rows, _ = trials_page(store, study.id, TableQuery(order="p.beta1", descending=True, limit=100))
    with_beta = [t for t in rows if "beta1" in t.params]
    assert rows[:len(with_beta)] == with_beta  # absent values last, whatever the direction
    assert [t.params["beta1"] for t in with_beta] == sorted((t.params["beta1"] for t in with_beta), reverse=True)
    rows, total = trials_page(store, study.id, TableQuery(choices={"opt": "sgd"}, order="p.lr", limit=5, offset=5))
    expected = sorted((t for t in study.trials() if t.params["opt"] == "sgd"), key=lambda t: t.params["lr"])
    assert total == len(expected) and [t.number for t in rows] == [t.number for t in expected[5:10]]
    rows, total = trials_page(store, study.id, TableQuery(ranges={"lr": (1e-3, 1e-1)}, limit=100))
    assert total == sum(1e-3 <= t.params["lr"] <= 1e-1 for t in study.trials()) and all(1e-3 <= t.params["lr"] <= 0.1 for t in rows)


def test_the_page_shows_absent_hyperparameters_as_blank_cells(study):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from tunebook.dashboard import create_app

    client = TestClient(create_app(study.storage), base_url="http://127.0.0.1")
    html = client.get("/study/t/table?order=p.beta1").text  # the table alone: the checks are not conditional-aware yet
    assert html.count('data-param="beta1"></td>') == sum(t.params["opt"] == "sgd" for t in study.trials())
    assert client.get("/study/t/trials.csv?p.opt=sgd").text.count("\n") == 1 + sum(t.params["opt"] == "sgd" for t in study.trials())
