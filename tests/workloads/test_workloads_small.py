"""The small known-answer workloads (char_lm, tabular, signals): fixed data, learning, exact resume."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import tunebook as tb
from _resume import assert_resumes_to_the_same_curve
from tunebook.workloads import char_lm, signals, tabular

#: workload -> (objective, hyperparameters of a short run that learns)
WORKLOADS = {
    "char_lm": ("val/bpc", {"learning_rate": 2e-2, "dropout": 0.1, "eval_every": 20}),
    "tabular": ("val/loss", {"learning_rate": 1e-2, "dropout": 0.1, "eval_every": 20}),
    "signals": ("val/loss", {"learning_rate": 1e-2, "dropout": 0.1, "eval_every": 20}),
}


def test_the_data_is_fixed_and_shaped():
    train, val, alphabet = char_lm.corpus()
    assert len(train) == char_lm.TRAIN_CHARS and len(val) == char_lm.VAL_CHARS
    assert {" ", "."} <= set(alphabet) <= set("abcdefghijklmnopqrstuvwxyz .")
    text = "".join(alphabet[i] for i in train[:200])
    assert ". " in text and "the " in text  # sentences of the grammar
    assert char_lm._text(1, 500) == char_lm._text(1, 500) and char_lm._text(1, 500) != char_lm._text(2, 500)

    x_tr, y_tr, x_val, y_val = tabular.split()
    assert x_tr.shape == (398, 30) and x_val.shape == (171, 30) and set(y_tr.tolist()) == {0, 1}
    assert abs(float(x_tr.mean())) < 1e-4 and abs(float(x_tr.std()) - 1) < 1e-3  # standardized by train rows

    x_tr, y_tr, x_val, y_val = signals.dataset()
    assert x_tr.shape == (2400, 1, 64) and x_val.shape == (600, 1, 64) and set(y_val.tolist()) == {0, 1, 2, 3}
    assert np.array_equal(signals.dataset.__wrapped__()[3], y_val)  # the same draw every time


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_a_trial_learns_logs_its_metrics_and_reads_every_hyperparameter(name, sqlite_url, tmp_path):
    objective, params = WORKLOADS[name]
    study = tb.create_study(name, space={"nuisance": {"learning_rate": {"min": params["learning_rate"],
                                                                      "max": params["learning_rate"] * 1.01}},
                                         "fixed": {k: v for k, v in params.items() if k != "learning_rate"}},
                            objective=(objective, "min"), trials=1, max_train_steps=60, storage=sqlite_url)
    train = importlib.import_module(f"tunebook.workloads.{name}").train
    tb.run(study, train, workers=0, progress=False, checkpoint_dir=tmp_path)
    (t,) = study.trials()
    assert t.state == "completed", t.error
    curves = study.metrics(t)
    steps = [s for s, _ in curves[objective]]
    assert steps == [20, 40, 60]  # by step, and at the last step
    assert [s for s, _ in curves["train/loss"]] == list(range(1, 61)) and len(curves["grad/norm"]) == 60
    first, last = curves["train/loss"][0][1], np.mean([v for _, v in curves["train/loss"][-10:]])
    assert last < 0.95 * first  # it learns
    assert t.value == min(v for _, v in curves[objective])
    assert not [f for f in tb.analyze(study).findings if f.check == "unused_hyperparameter"]


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_an_interrupted_trial_resumes_to_the_same_curve(name, sqlite_url, tmp_path):
    objective, params = WORKLOADS[name]
    module = importlib.import_module(f"tunebook.workloads.{name}")
    space = {"nuisance": {"learning_rate": {"min": params["learning_rate"], "max": params["learning_rate"] * 1.01}},
             "fixed": {**{k: v for k, v in params.items() if k != "learning_rate"}, "schedule": "cosine",
                       "warmup_steps": 5}}

    def make(study_name):
        return tb.create_study(study_name, space=space, objective=(objective, "min"), trials=1, max_train_steps=60,
                               storage=sqlite_url, seed=7)

    # the same curve, point for point (dropout masks included)
    assert_resumes_to_the_same_curve(make, module.train, stop_at=50, objective=objective,
                                     metrics=("train/loss", objective, "grad/norm", "lr"), checkpoint_dir=tmp_path)
