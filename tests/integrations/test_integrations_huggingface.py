"""The Hugging Face Trainer callback in real studies: a tiny GPT-2 built from a config, nothing downloaded."""

from __future__ import annotations

import dataclasses
import math
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers", reason="the 'huggingface' extra is not installed (pip install 'tunebook[huggingface]')")
pytest.importorskip("accelerate", reason="the 'huggingface' extra is not installed: transformers' Trainer needs accelerate "
                                         "(pip install 'tunebook[huggingface]')")
torch = pytest.importorskip("torch")

import transformers  # noqa: E402

import tunebook as tb  # noqa: E402
from _frameworks import assert_curves_in_report  # noqa: E402
from tunebook.integrations.huggingface import TunebookCallback, default_name, training_args_from  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from train_huggingface import BASE_ARGS, train  # noqa: E402

STEPS, EVAL = 30, 10


def base(tmp_path, **changes):
    return dataclasses.replace(BASE_ARGS, output_dir=str(tmp_path / "hf"), eval_steps=EVAL, save_steps=EVAL, **changes)


def study_of(url, name, rates, **kwargs):
    space = tb.SearchSpace(scientific={"learning_rate": tb.Choice(rates)}, fixed={"width": 16, "warmup_steps": 2})
    return tb.create_study(name, space=space, objective=("val/loss", "min"), trials=len(rates), max_train_steps=STEPS,
                           storage=url, **kwargs)


def test_a_trainer_study_stores_curves_checkpoints_and_stops_a_diverging_trial(sqlite_url, tmp_path):
    study = study_of(sqlite_url, "hf", [3e-3, 50.0], infeasible_if={"train/loss": {"above": 20.0}})
    args = base(tmp_path)
    tb.run(study, lambda trial: train(trial, args), workers=0, progress=False, checkpoint_dir=tmp_path / "ckpt")
    by_lr = {t.params["learning_rate"]: t for t in study.trials()}
    good, bad = by_lr[3e-3], by_lr[50.0]
    assert good.state == "completed", good.error
    curves = study.metrics(good)
    assert [s for s, _ in curves["train/loss"]] == list(range(1, STEPS + 1))  # logging_steps=1, at the global step
    assert [s for s, _ in curves["val/loss"]] == [10, 20, 30]  # evaluations at their own step, stored once
    assert {"lr", "grad/norm"} <= set(curves) and not {"epoch", "val/runtime", "train_loss"} & set(curves)
    assert dict(curves["lr"])[3] == pytest.approx(3e-3)  # warmup_steps=2 from trial.params reached the Trainer
    assert all(math.isfinite(v) for name in curves for _, v in curves[name])
    assert curves["val/loss"][-1][1] < curves["val/loss"][0][1]
    kept = study.storage.get_checkpoints(good.id)
    assert good.best_step in [c.step for c in kept] and max(c.step for c in kept) == STEPS
    from tunebook.checkpoints import load

    packed = load(kept[-1].path)  # the file wraps the state with its store and trial ids
    assert packed["global_step"] == STEPS and "trainer_state.json" in packed["files"]
    assert any(name.startswith("model") for name in packed["files"]) and "optimizer.pt" in packed["files"]
    assert bad.state == "infeasible" and "infeasible_if" in bad.infeasible_reason
    assert max(s for s, _ in study.metrics(bad)["train/loss"]) < STEPS  # control.should_training_stop ended it
    assert_curves_in_report(study, good, {"val/loss": [10, 20, 30], "train/loss": list(range(1, STEPS + 1))})


class _Interrupt(transformers.TrainerCallback):
    def __init__(self, trial, at):
        self.trial, self.at = trial, at

    def on_step_end(self, args, state, control, **kwargs):
        if self.trial.attempt == 1 and state.global_step == self.at:
            raise KeyboardInterrupt


def test_an_interrupted_trainer_trial_resumes_from_its_packed_checkpoint(sqlite_url, tmp_path):
    study = study_of(sqlite_url, "hf-resume", [3e-3])
    args = base(tmp_path)
    resumed_from = []

    def run(trial):
        targs = training_args_from(trial, args)
        callback = TunebookCallback(trial)
        from train_huggingface import CountingSequences, tiny_gpt2

        torch.manual_seed(trial.seed)
        trainer = transformers.Trainer(model=tiny_gpt2(trial.params), args=targs, train_dataset=CountingSequences(512, 0),
                                       eval_dataset=CountingSequences(64, 1), callbacks=[callback, _Interrupt(trial, 15)])
        resumed_from.append(callback.resume_from_checkpoint(targs.output_dir))
        trainer.train(resume_from_checkpoint=resumed_from[-1])
        assert trainer.state.global_step == STEPS

    with pytest.raises(KeyboardInterrupt):  # saved, then raised: the script does not go on
        tb.run(study, run, workers=0, progress=False, checkpoint_dir=tmp_path / "ckpt")
    shutil.rmtree(tmp_path / "hf")  # a fresh machine: only tunebook's checkpoint is left
    tb.run(study, run, workers=0, progress=False, checkpoint_dir=tmp_path / "ckpt")
    (t,) = study.trials()
    assert t.state == "completed", t.error
    assert resumed_from[0] is None and resumed_from[1].endswith("checkpoint-10")
    assert (Path(resumed_from[1]) / "trainer_state.json").is_file()  # unpacked from the trial's checkpoint
    curves = study.metrics(t)
    assert [s for s, _ in curves["train/loss"]] == list(range(1, STEPS + 1))
    assert [s for s, _ in curves["val/loss"]] == [10, 20, 30]


def test_the_callback_logs_only_what_the_trainer_logs_and_only_on_world_process_zero(sqlite_url, tmp_path, monkeypatch):
    calls = []
    args = base(tmp_path, logging_steps=5)

    def run(trial):
        log = trial.log

        def recording(step, **metrics):
            calls.append((step, metrics))
            log(step, **metrics)

        trial.log = recording
        train(trial, args)

    study = study_of(sqlite_url, "hf-logs", [3e-3])
    tb.run(study, run, workers=0, progress=False, checkpoint_dir=tmp_path / "ckpt")
    # nothing on the steps between logging steps: the callback adds no per-step work, let alone a sync
    assert sorted({s for s, _ in calls}) == [5, 10, 15, 20, 25, 30]
    assert all(isinstance(v, float) for _, m in calls for v in m.values())  # the Trainer's own floats, passed on

    monkeypatch.setattr(transformers.Trainer, "is_world_process_zero", lambda self: False)  # another rank
    calls.clear()
    other = study_of(sqlite_url, "hf-rank1", [3e-3])
    tb.run(other, run, workers=0, progress=False, checkpoint_dir=tmp_path / "ckpt1")
    (t,) = other.trials()
    assert calls == [] and other.storage.get_checkpoints(t.id) == [] and other.metrics(t) == {}


def test_training_args_from_maps_params_steps_seed_and_output_dir(sqlite_url, tmp_path):
    space = tb.SearchSpace(nuisance={"learning_rate": tb.Float(1e-4, 1e-2, scale="log")},
                           fixed={"batch_size": 8, "beta1": 0.8, "weight_decay": 0.01, "grad_clip": 0.5, "width": 16})
    study = tb.create_study("hf-args", space=space, objective=("val/loss", "min"), trials=1, max_train_steps=77,
                            storage=sqlite_url)
    got = {}

    def run(trial):
        got["args"] = training_args_from(trial, base(tmp_path), logging_steps=7)
        got["trial"] = (trial.params, trial.seed, trial.number)
        trial.log(1, **{"val/loss": 1.0})

    tb.run(study, run, workers=0, progress=False, checkpoint_dir=tmp_path / "ckpt")
    a, (params, seed, number) = got["args"], got["trial"]
    assert a.learning_rate == params["learning_rate"] and a.per_device_train_batch_size == 8 and a.adam_beta1 == 0.8
    assert a.weight_decay == 0.01 and a.max_grad_norm == 0.5 and a.max_steps == 77 and a.logging_steps == 7
    assert a.seed == seed and a.data_seed == seed
    assert a.output_dir == str(tmp_path / "hf" / "hf-args" / f"trial-{number:05d}")
    assert BASE_ARGS.max_steps != 77  # the base is not changed
    # the names it maps are read by key (not handed on whole): "width" is left to the model, unread
    (used,) = study.storage.params_used(study.id).values()
    assert used["bulk"] is False and used["read"] == ["batch_size", "beta1", "grad_clip", "learning_rate",
                                                      "weight_decay"]


def test_default_names_and_the_closed_search_backend_registry():
    assert default_name("loss") == "train/loss" and default_name("eval_loss") == "val/loss"
    assert default_name("eval_accuracy") == "val/accuracy" and default_name("learning_rate") == "lr"
    assert default_name("epoch") is None and default_name("eval_runtime") is None and default_name("train_loss") is None
    # why there is no tunebook hyperparameter_search backend: transformers accepts only its enum's members
    with pytest.raises(ValueError):
        transformers.trainer_utils.HPSearchBackend("tunebook")
    with pytest.raises(tb.SpecError, match="checkpoint"):
        TunebookCallback(object(), checkpoint="zip")
