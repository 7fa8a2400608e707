"""The Lightning callback in real studies: curves, checkpoints, resume, infeasible stop, no host sync, rank 0 only."""

from __future__ import annotations

import math
import sys
import threading
from pathlib import Path

import pytest

L = pytest.importorskip("lightning", reason="the 'lightning' extra is not installed (pip install 'tunebook[lightning]')")
torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

import tunebook as tb  # noqa: E402
from _frameworks import assert_curves_in_report  # noqa: E402
from _spy import SYNCING  # noqa: E402
from tunebook.integrations.lightning import TunebookCallback, fit, trainer_kwargs  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from train_lightning import DigitsMLP, loaders  # noqa: E402

STEPS, EVAL = 30, 10


def make_train(module=DigitsMLP, **trainer_overrides):
    def train(trial):
        hp = trial.params
        L.seed_everything(trial.seed, verbose=False)
        model = module(hp["learning_rate"], 16)
        train_loader, val_loader = loaders(32, trial.seed)
        trainer = L.Trainer(**trainer_kwargs(trial, accelerator="cpu", devices=1, num_sanity_val_steps=0,
                                             val_check_interval=EVAL, check_val_every_n_epoch=None, **trainer_overrides))
        fit(trainer, model, train_loader, val_loader)
    return train


def study_of(url, name, rates, trials=None, **kwargs):
    space = tb.SearchSpace(scientific={"learning_rate": tb.Choice(rates)})
    return tb.create_study(name, space=space, objective=("val/error", "min"), trials=trials or len(rates),
                           max_train_steps=STEPS, storage=url, **kwargs)


def test_a_lightning_study_stores_curves_checkpoints_and_stops_a_diverging_trial(sqlite_url, tmp_path):
    study = study_of(sqlite_url, "lightning", [3e-3, 300.0], infeasible_if={"train/loss": {"above": 10.0}})
    tb.run(study, make_train(), workers=0, progress=False, checkpoint_dir=tmp_path)
    by_lr = {t.params["learning_rate"]: t for t in study.trials()}
    good, bad = by_lr[3e-3], by_lr[300.0]
    assert good.state == "completed", good.error
    curves = study.metrics(good)
    assert [s for s, _ in curves["train/loss"]] == list(range(1, STEPS + 1))  # the global step, from 1
    assert [s for s, _ in curves["val/error"]] == [10, 20, 30] and [s for s, _ in curves["val/loss"]] == [10, 20, 30]
    assert all(math.isfinite(v) for name in curves for _, v in curves[name])
    assert curves["train/loss"][-1][1] < curves["train/loss"][0][1]
    assert good.value == min(v for _, v in curves["val/error"]) and good.best_step in (10, 20, 30)
    kept = study.storage.get_checkpoints(good.id)
    assert good.best_step in [c.step for c in kept] and max(c.step for c in kept) == STEPS
    from tunebook.checkpoints import load

    state = load(kept[-1].path)  # the file wraps the state with its store and trial ids
    assert state["global_step"] == STEPS and "state_dict" in state and state["optimizer_states"]
    # the diverging trial: stopped by the callback (trainer.should_stop), recorded as infeasible, no checkpoint
    assert bad.state == "infeasible" and "train/loss" in bad.infeasible_reason and "infeasible_if" in bad.infeasible_reason
    assert max(s for s, _ in study.metrics(bad)["train/loss"]) < STEPS
    # the report shows the curves of the objective and of the training loss
    assert_curves_in_report(study, good, {"val/error": [10, 20, 30], "train/loss": list(range(1, STEPS + 1))})


class _Interrupt(L.Callback):
    """Ctrl-C after ``at`` steps of the first attempt (as the worker's SIGINT handler would raise it)."""

    def __init__(self, trial, at):
        self.trial, self.at = trial, at

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.trial.attempt == 1 and trainer.global_step == self.at:
            raise KeyboardInterrupt


def test_an_interrupted_lightning_trial_resumes_from_its_checkpoint(sqlite_url, tmp_path):
    study = study_of(sqlite_url, "lightning-resume", [3e-3])
    starts = []

    def train(trial):
        L.seed_everything(trial.seed, verbose=False)
        model = DigitsMLP(trial.params["learning_rate"], 16)
        callback = TunebookCallback(trial)
        trainer = L.Trainer(**trainer_kwargs(trial, callback, callbacks=[_Interrupt(trial, 25)], accelerator="cpu",
                                             devices=1, num_sanity_val_steps=0, val_check_interval=EVAL,
                                             check_val_every_n_epoch=None))
        starts.append(callback.resume_path())
        fit(trainer, model, *loaders(32, trial.seed))
        assert trainer.global_step == STEPS

    with pytest.raises(KeyboardInterrupt):  # saved, then raised: the script does not go on
        tb.run(study, train, workers=0, progress=False, checkpoint_dir=tmp_path)
    (t,) = study.trials()
    assert t.state == "pending"  # Lightning's sys.exit(1) came back as KeyboardInterrupt: the trial was re-queued
    tb.run(study, train, workers=0, progress=False, checkpoint_dir=tmp_path)
    (t,) = study.trials()
    assert t.state == "completed", t.error
    # attempt 2 resumes from the latest checkpoint of attempt 1 (step 20), handed to Lightning as a plain file
    assert starts[0] is None and torch.load(starts[1], weights_only=False)["global_step"] == 20
    curves = study.metrics(t)
    assert [s for s, _ in curves["train/loss"]] == list(range(1, STEPS + 1))  # each step once
    assert [s for s, _ in curves["val/error"]] == [10, 20, 30]


class ThreadSpy(torch.Tensor):
    """Like tests/_spy.py's SpyTensor, and records which thread made each call."""

    calls: list = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        cls.calls.append((getattr(func, "__name__", str(func)), threading.current_thread()))
        return super().__torch_function__(func, types, args, kwargs or {})


class SpyMLP(DigitsMLP):
    """Logs its loss as a tensor that records every torch function called on it, and by which thread."""

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y).as_subclass(ThreadSpy)
        self.log("train/loss", loss)
        return loss


def _main_thread_syncs(calls):
    return [c for c, thread in calls if thread is threading.main_thread() and c in SYNCING]


def test_the_callback_passes_tensors_and_adds_no_host_sync(sqlite_url, tmp_path):
    logged, during_fit = [], []

    def fit_once(trial=None):
        L.seed_everything(0, verbose=False)
        kwargs = dict(max_steps=STEPS, accelerator="cpu", devices=1, num_sanity_val_steps=0, val_check_interval=EVAL,
                      check_val_every_n_epoch=None, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                      enable_model_summary=False)
        if trial is not None:
            log = trial.log

            def recording_log(step, **metrics):
                logged.append((step, dict(metrics)))
                log(step, **metrics)

            trial.log = recording_log
            kwargs["callbacks"] = [TunebookCallback(trial, checkpoint=False)]
        trainer = L.Trainer(**kwargs)
        ThreadSpy.calls = []
        trainer.fit(SpyMLP(3e-3, 16), *loaders(32, 0))
        during_fit.append(_main_thread_syncs(ThreadSpy.calls))  # the trial's last flush, after fit, may convert

    fit_once()
    study = study_of(sqlite_url, "lightning-sync", [3e-3])
    tb.run(study, fit_once, workers=0, progress=False, checkpoint_dir=tmp_path)
    without, with_callback = during_fit
    assert with_callback == without  # the callback reads the device nowhere in the training thread
    train_logs = [(s, m["train/loss"]) for s, m in logged if "train/loss" in m]
    assert [s for s, _ in train_logs] == list(range(1, STEPS + 1))
    assert all(isinstance(v, torch.Tensor) for _, v in train_logs)  # tensors, converted later in the flush thread
    (t,) = study.trials()
    assert t.state == "completed" and len(study.metrics(t)["train/loss"]) == STEPS


def test_only_global_rank_zero_writes(sqlite_url, tmp_path, monkeypatch):
    """Rank 1 of a DDP trial (simulated: Trainer.global_rank = 1) runs the same trial and writes nothing."""
    seen = []

    def train(trial):
        seen.append((dict(trial.params), trial.seed))
        make_train()(trial)

    monkeypatch.setattr(L.Trainer, "global_rank", property(lambda self: 1))
    study = study_of(sqlite_url, "lightning-rank1", [3e-3], seed=11)
    tb.run(study, train, workers=0, progress=False, checkpoint_dir=tmp_path / "rank1")
    (t,) = study.trials()
    assert study.metrics(t) == {} and study.storage.get_checkpoints(t.id) == []
    assert t.state == "failed" and "never logged" in t.error  # nothing was written by this rank
    assert not any((tmp_path / "rank1").rglob("*.ckpt"))
    monkeypatch.undo()
    study0 = study_of(sqlite_url, "lightning-rank0", [3e-3], seed=11)  # the same design: the same trial
    tb.run(study0, train, workers=0, progress=False, checkpoint_dir=tmp_path / "rank0")
    (t0,) = study0.trials()
    assert t0.state == "completed" and len(study0.metrics(t0)["train/loss"]) == STEPS
    assert seen[0] == seen[1]  # the same params and seed on either rank


def test_trainer_kwargs_defaults_and_overrides(sqlite_url, tmp_path):
    study = study_of(sqlite_url, "lightning-kwargs", [3e-3])
    got = {}

    def train(trial):
        got.update(trainer_kwargs(trial, logger=True))
        with pytest.raises(tb.SpecError, match="TunebookCallback"):
            fit(L.Trainer(max_steps=1, logger=False, enable_progress_bar=False), DigitsMLP())
        trial.log(1, **{"val/error": 1.0})

    tb.run(study, train, workers=0, progress=False, checkpoint_dir=tmp_path)
    assert got["max_steps"] == STEPS and isinstance(got["callbacks"][0], TunebookCallback)
    assert got["logger"] is True and got["enable_checkpointing"] is False


def test_with_gradient_accumulation_each_optimizer_step_is_logged_once(sqlite_url, tmp_path):
    study = study_of(sqlite_url, "lightning-accumulate", [3e-3])
    tb.run(study, make_train(accumulate_grad_batches=2), workers=0, progress=False, checkpoint_dir=tmp_path)
    (t,) = study.trials()
    assert t.state == "completed", t.error
    assert [s for s, _ in study.metrics(t)["train/loss"]] == list(range(1, STEPS + 1))
