"""The sorting workload (tunebook.workloads.sorting): fixed seeded sequences and their sorted targets, a trial
that learns and logs what the module says, every hyperparameter read, max_train_steps honoured, a learning
rate that learns beating one that does not, and an exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tunebook as tb
from _resume import assert_resumes_to_the_same_curve
from tunebook.workloads import sorting

PARAMS = {"optimizer": "adam", "dropout": 0.1, "weight_decay": 1e-4, "d_model": 16, "heads": 4, "ff_units": 48,
          "layers": 1, "eval_every": 20}


def _study(name: str, url: str, rate: float = 2e-2, steps: int = 60, **options) -> tb.Study:
    space = {"nuisance": {"learning_rate": {"min": rate, "max": rate * 1.01}}, "fixed": dict(PARAMS)}
    space["fixed"].update(options.pop("fixed", {}))
    return tb.create_study(name, space=space, objective=("val/loss", "min"), trials=1, max_train_steps=steps,
                           storage=url, **options)


def test_the_data_is_a_fixed_draw_of_digits_and_their_sorted_order():
    x_tr, y_tr, x_val, y_val = sorting.dataset()
    assert x_tr.shape == y_tr.shape == (4000, 8) and x_val.shape == y_val.shape == (1000, 8)
    assert x_tr.dtype == np.int64 and x_tr.min() == 0 and x_tr.max() == 9
    again = sorting.dataset.__wrapped__()  # the same draw, not the cached arrays
    assert all(np.array_equal(a, b) for a, b in zip(again, (x_tr, y_tr, x_val, y_val)))
    # each target is its input's digits in ascending order (the same multiset, non-decreasing)
    assert (np.diff(y_tr, axis=1) >= 0).all() and (np.diff(y_val, axis=1) >= 0).all()
    assert np.array_equal(np.sort(x_val, axis=1), y_val)
    assert not np.array_equal(x_tr[:1000], x_val)  # train and validation sequences differ
    assert (x_tr != y_tr).any(axis=1).mean() > 0.99  # almost no input is sorted already


def test_a_trial_learns_logs_its_metrics_and_reads_every_hyperparameter(sqlite_url, tmp_path):
    study = _study("sorting", sqlite_url)
    tb.run(study, sorting.train, workers=0, progress=False, checkpoint_dir=tmp_path)
    (t,) = study.trials()
    assert t.state == "completed", t.error
    curves = study.metrics(t)
    for metric in ("val/loss", "val/error", "train/error"):
        assert [s for s, _ in curves[metric]] == [20, 40, 60], metric
    assert [s for s, _ in curves["train/loss"]] == list(range(1, 61)) and len(curves["grad/norm"]) == 60
    assert len(curves["lr"]) == 60
    first, last = curves["train/loss"][0][1], np.mean([v for _, v in curves["train/loss"][-10:]])
    assert last < 0.8 * first  # it learns: the initial loss is about ln(10) = 2.3 nats per token
    assert t.value == min(v for _, v in curves["val/loss"])
    errors = [v for _, v in curves["val/error"]]
    assert 0 <= errors[-1] < errors[0] <= 1  # a share of wrong tokens that falls
    assert not [f for f in tb.analyze(study).findings if f.check == "unused_hyperparameter"]


def test_max_train_steps_is_honoured_and_the_last_step_is_evaluated(sqlite_url, tmp_path):
    study = _study("short", sqlite_url, steps=37, fixed={"schedule": "cosine"})
    tb.run(study, sorting.train, workers=0, progress=False, checkpoint_dir=tmp_path)
    (t,) = study.trials()
    curves = study.metrics(t)
    assert [s for s, _ in curves["train/loss"]] == list(range(1, 38))
    assert [s for s, _ in curves["val/loss"]] == [20, 37]
    rates = [v for _, v in curves["lr"]]
    assert rates[0] == pytest.approx(t.params["learning_rate"])  # the peak rate at the first step
    assert rates[-1] < 0.01 * rates[0]  # the cosine decays over exactly these 37 steps


def test_a_rate_that_learns_beats_one_that_does_not(sqlite_url, tmp_path):
    values = {}
    for rate in (1e-7, 2e-2):
        study = _study(f"rate-{rate:g}", sqlite_url, rate=rate, steps=60, seed=3)
        tb.run(study, sorting.train, workers=0, progress=False, checkpoint_dir=tmp_path)
        (t,) = study.trials()
        curve = [v for _, v in study.metrics(t)["val/loss"]]
        values[rate] = (t.value, curve)
    (still, still_curve), (learned, _) = values[1e-7], values[2e-2]
    assert abs(still_curve[-1] - still_curve[0]) < 0.01 * still_curve[0]  # 1e-7: nothing moves
    assert learned < 0.7 * still


def test_the_model_sizes_follow_their_hyperparameters_and_see_the_whole_sequence():
    def size(**params):
        return sum(p.numel() for p in sorting.build_model(params).parameters())

    d, ff = 16, 48
    block = 4 * (d * d + d) + (d * ff + ff) + (ff * d + d) + 2 * 2 * d  # attention, feed-forward, two norms
    assert size(d_model=d, ff_units=ff) == 10 * d + 8 * d + block + (d * 10 + 10)
    assert size(d_model=d, ff_units=ff, layers=2) == size(d_model=d, ff_units=ff) + block
    assert size(d_model=d, ff_units=ff, heads=4) == size(d_model=d, ff_units=ff)  # heads split, not add
    model = sorting.build_model({"d_model": d}).eval()
    x = torch.from_numpy(sorting.dataset()[2][:5])
    with torch.no_grad():
        out = model(x)
        assert out.shape == (5, 10, 8)  # (batch, classes, positions): what cross_entropy wants
        changed = x.clone()
        changed[:, -1] = (changed[:, -1] + 1) % 10
        # attention: changing the last digit changes the logits at the first position
        assert not torch.allclose(model(changed)[:, :, 0], out[:, :, 0])


def test_an_interrupted_trial_resumes_to_the_same_curve(sqlite_url, tmp_path):
    def make(name):
        return _study(name, sqlite_url, seed=7, fixed={"schedule": "cosine", "warmup_steps": 5})

    assert_resumes_to_the_same_curve(make, sorting.train, stop_at=50, objective="val/loss",
                                     metrics=("train/loss", "val/loss", "val/error", "train/error", "grad/norm", "lr"),
                                     checkpoint_dir=tmp_path)
