"""The Keras 3 callback in real studies, on Keras' torch backend (no TensorFlow)."""

from __future__ import annotations

import math
import os
import sys
import threading
from pathlib import Path

import pytest

if os.environ.setdefault("KERAS_BACKEND", "torch") != "torch":
    pytest.skip(f"these tests run Keras on its torch backend; KERAS_BACKEND is {os.environ['KERAS_BACKEND']!r}",
                allow_module_level=True)
keras = pytest.importorskip("keras", reason="the 'keras' extra is not installed (pip install 'tunebook[keras]')")
torch = pytest.importorskip("torch")

import tunebook as tb  # noqa: E402
from _frameworks import assert_curves_in_report  # noqa: E402
from tunebook.integrations.keras import TunebookCallback, default_name  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from train_keras import StepBatches, build_model, train  # noqa: E402

from tunebook.workloads import digits  # noqa: E402

STEPS, EVAL = 30, 10


def study_of(url, name, rates, **kwargs):
    space = tb.SearchSpace(scientific={"learning_rate": tb.Choice(rates)},
                           fixed={"batch_size": 32, "hidden_units": 16, "eval_every": EVAL})
    return tb.create_study(name, space=space, objective=("val/loss", "min"), trials=len(rates), max_train_steps=STEPS,
                           storage=url, **kwargs)


def test_a_keras_study_stores_curves_checkpoints_and_stops_a_diverging_trial(sqlite_url, tmp_path):
    assert keras.backend.backend() == "torch"
    study = study_of(sqlite_url, "keras", [3e-3, 300.0], infeasible_if={"train/loss": {"above": 10.0}})
    tb.run(study, train, workers=0, progress=False, checkpoint_dir=tmp_path)
    by_lr = {t.params["learning_rate"]: t for t in study.trials()}
    good, bad = by_lr[3e-3], by_lr[300.0]
    assert good.state == "completed", good.error
    curves = study.metrics(good)
    assert [s for s, _ in curves["train/loss"]] == list(range(1, STEPS + 1))
    assert [s for s, _ in curves["train/accuracy"]] == list(range(1, STEPS + 1))
    assert [s for s, _ in curves["val/loss"]] == [10, 20, 30] and [s for s, _ in curves["val/accuracy"]] == [10, 20, 30]
    assert all(math.isfinite(v) for name in curves for _, v in curves[name])
    assert curves["val/loss"][-1][1] < curves["val/loss"][0][1]
    kept = study.storage.get_checkpoints(good.id)
    assert good.best_step in [c.step for c in kept] and max(c.step for c in kept) == STEPS
    from tunebook.checkpoints import load

    state = load(kept[-1].path)  # the file wraps the state with its store and trial ids
    assert state["step"] == STEPS and state["epoch"] == 3 and len(state["weights"]) == 6 and state["optimizer"]
    assert bad.state == "infeasible" and "infeasible_if" in bad.infeasible_reason
    assert max(s for s, _ in study.metrics(bad)["train/loss"]) < STEPS  # model.stop_training ended it
    assert_curves_in_report(study, good, {"val/loss": [10, 20, 30], "train/loss": list(range(1, STEPS + 1))})


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, trial, at):
        super().__init__()
        self.trial, self.at, self.seen = trial, at, 0

    def on_train_batch_begin(self, batch, logs=None):
        self.seen += 1
        if self.trial.attempt == 1 and self.seen == self.at:
            raise KeyboardInterrupt


def test_an_interrupted_keras_trial_resumes_from_its_checkpoint(sqlite_url, tmp_path):
    study = study_of(sqlite_url, "keras-resume", [3e-3])
    initial = []
    uninterrupted = study_of(sqlite_url, "keras-uninterrupted", [3e-3], seed=study.seed)
    tb.run(uninterrupted, train, workers=0, progress=False, checkpoint_dir=tmp_path / "u")

    def run(trial):
        keras.utils.set_random_seed(trial.seed)
        x_tr, y_tr, x_val, y_val = digits.split()
        model = build_model(16, trial.params["learning_rate"])
        callback = TunebookCallback(trial)
        initial.append(callback.resume(model))
        data = StepBatches(x_tr, y_tr, 32, trial.seed, callback.step + 1, STEPS)
        model.fit(data, validation_data=(x_val, y_val), steps_per_epoch=EVAL, epochs=STEPS // EVAL,
                  initial_epoch=initial[-1], shuffle=False, callbacks=[callback, _Interrupt(trial, 16)], verbose=0)

    with pytest.raises(KeyboardInterrupt):  # saved, then raised: the script does not go on
        tb.run(study, run, workers=0, progress=False, checkpoint_dir=tmp_path)
    tb.run(study, run, workers=0, progress=False, checkpoint_dir=tmp_path)
    (t,) = study.trials()
    assert t.state == "completed", t.error
    assert initial == [0, 1]  # resumed after the first epoch's checkpoint (step 10)
    curves = study.metrics(t)
    assert [s for s, _ in curves["train/loss"]] == list(range(1, STEPS + 1))  # each step once
    assert [s for s, _ in curves["val/loss"]] == [10, 20, 30]
    # the resumed trial followed the uninterrupted one: same weights, optimizer state and batches from step 11 on
    (u,) = uninterrupted.trials()
    assert u.seed == t.seed
    assert [v for _, v in curves["val/loss"]] == pytest.approx([v for _, v in uninterrupted.metrics(u)["val/loss"]], rel=1e-6)


def test_step_metrics_reach_trial_log_as_device_tensors_from_the_training_thread(sqlite_url, tmp_path):
    calls = []

    def run(trial):
        log = trial.log

        def recording(step, **metrics):
            calls.append((step, threading.current_thread(), metrics))
            log(step, **metrics)

        trial.log = recording
        train(trial)

    study = study_of(sqlite_url, "keras-sync", [3e-3])
    tb.run(study, run, workers=0, progress=False, checkpoint_dir=tmp_path)
    steps = [(s, m) for s, thread, m in calls if "train/loss" in m]
    assert [s for s, _ in steps] == list(range(1, STEPS + 1))
    # the train_function's own tensors, unconverted: trial.log turns them into numbers in its flush thread
    assert all(isinstance(v, torch.Tensor) for _, m in steps for v in m.values())
    assert all(thread is threading.main_thread() for _, thread, _ in calls)
    # and Keras keeps converting its logs for on_train_batch_end in its thread pool, not in the training loop
    model = build_model(8, 1e-3)
    assert keras.callbacks.CallbackList([TunebookCallback(object.__new__(tb.Trial))], model=model)._async_train
    assert model.train_function is None or model.train_function.__name__ != "train_function"


def test_only_process_zero_writes(sqlite_url, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    study = study_of(sqlite_url, "keras-rank1", [3e-3])
    tb.run(study, train, workers=0, progress=False, checkpoint_dir=tmp_path)
    (t,) = study.trials()
    assert study.metrics(t) == {} and study.storage.get_checkpoints(t.id) == [] and not any(tmp_path.rglob("*.ckpt"))


def test_default_names():
    assert default_name("loss") == "train/loss" and default_name("val_loss") == "val/loss"
    assert default_name("accuracy") == "train/accuracy" and default_name("val_accuracy") == "val/accuracy"
    assert default_name("learning_rate") == "lr"
