"""The regression workload (tunebook.workloads.regression): fixed seeded data, a trial that learns and logs
what the module says, every hyperparameter read, and an exact resume."""

from __future__ import annotations

import numpy as np

import tunebook as tb
from _resume import assert_resumes_to_the_same_curve
from tunebook.workloads import regression

PARAMS = {"optimizer": "adam", "dropout": 0.1, "weight_decay": 1e-4, "hidden_units": 16, "eval_every": 20}


def _study(name: str, url: str, **options) -> tb.Study:
    space = {"nuisance": {"learning_rate": {"min": 2e-2, "max": 2.02e-2}}, "fixed": dict(PARAMS)}
    space["fixed"].update(options.pop("fixed", {}))
    return tb.create_study(name, space=space, objective=("val/mse", "min"), trials=1, max_train_steps=60,
                           storage=url, **options)


def test_the_data_is_a_fixed_draw_of_the_stated_function():
    x_tr, y_tr, x_val, y_val = regression.dataset()
    assert x_tr.shape == (2000, 8) and x_val.shape == (500, 8) and y_tr.shape == (2000, 1)
    assert x_tr.dtype == np.float32 and -1 <= x_tr.min() and x_tr.max() <= 1
    again = regression.dataset.__wrapped__()  # the same draw, not the cached arrays
    assert all(np.array_equal(a, b) for a, b in zip(again, (x_tr, y_tr, x_val, y_val)))
    # the targets are the function plus noise of sd NOISE: the residual's sd says so (2,000 rows: +-0.02)
    residual = y_tr[:, 0] - regression.target(x_tr)
    assert abs(float(residual.std()) - regression.NOISE) < 0.02 and abs(float(residual.mean())) < 0.03
    assert not np.array_equal(x_tr[:500], x_val)  # train and validation rows differ


def test_a_trial_learns_logs_its_metrics_and_reads_every_hyperparameter(sqlite_url, tmp_path):
    study = _study("regression", sqlite_url)
    tb.run(study, regression.train, workers=0, progress=False, checkpoint_dir=tmp_path)
    (t,) = study.trials()
    assert t.state == "completed", t.error
    curves = study.metrics(t)
    assert [s for s, _ in curves["val/mse"]] == [20, 40, 60] and [s for s, _ in curves["train/mse"]] == [20, 40, 60]
    assert [s for s, _ in curves["train/loss"]] == list(range(1, 61)) and len(curves["grad/norm"]) == 60
    first, last = curves["train/loss"][0][1], np.mean([v for _, v in curves["train/loss"][-10:]])
    assert last < 0.8 * first  # it learns: the targets' variance is about 1
    assert t.value == min(v for _, v in curves["val/mse"]) < 0.8
    assert not [f for f in tb.analyze(study).findings if f.check == "unused_hyperparameter"]


def test_the_width_changes_the_model():
    sizes = [sum(p.numel() for p in regression.build_model({"hidden_units": h}).parameters()) for h in (8, 32)]
    assert sizes == [8 * 8 + 8 + 8 * 8 + 8 + 8 + 1, 8 * 32 + 32 + 32 * 32 + 32 + 32 + 1]


def test_an_interrupted_trial_resumes_to_the_same_curve(sqlite_url, tmp_path):
    def make(name):
        return _study(name, sqlite_url, seed=7, fixed={"schedule": "cosine", "warmup_steps": 5})

    assert_resumes_to_the_same_curve(make, regression.train, stop_at=50, objective="val/mse",
                                     metrics=("train/loss", "val/mse", "train/mse", "grad/norm", "lr"),
                                     checkpoint_dir=tmp_path)
