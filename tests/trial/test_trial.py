"""The Trial handle: buffered logging without device syncs, infeasibility, failures, checkpoints."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import _workloads as w
from _spy import SYNCING, SpyTensor
import tunebook as tb
from tunebook.trial import Trial

NUISANCE = tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1.0, "log")})


def study(url, trials=4, steps=20, **kw):
    return tb.create_study("t", space=kw.pop("space", NUISANCE), objective=("val/error", "min"), trials=trials,
                           max_train_steps=steps, storage=url, **kw)


def claimed_trial(s, tmp_path, flush_interval=60.0) -> Trial:
    record = s.storage.claim_trial("w", s.id)
    return Trial(s, record, s.storage, "w", tmp_path / "ckpt", flush_interval=flush_interval)


def test_completed_trials_take_the_best_value_and_its_step(storage_url, tmp_path):
    s = study(storage_url, steps=23)
    result = tb.run(s, w.quadratic, workers=0, progress=False, checkpoint_dir=tmp_path)
    assert result.finished and result.counts["completed"] == 4
    for t in s.trials():
        floor = (math.log10(t.params["lr"]) + 2) ** 2
        assert t.best_step == 23  # val/error falls: the best is the last evaluation here
        assert t.value == pytest.approx(floor + 2 / 23)
        curves = s.metrics(t)
        assert [step for step, _ in curves["val/error"]] == [5, 10, 15, 20, 23]
        assert len(curves["train/loss"]) == 23
    best = s.best_trial()
    assert best.value == min(t.value for t in s.trials())


def test_numpy_scalars_are_stored_as_numbers(sqlite_url, tmp_path):
    s = study(sqlite_url, trials=1, steps=4)
    tb.run(s, w.numpy_metrics, workers=0, progress=False, checkpoint_dir=tmp_path)
    curves = s.metrics(s.trials()[0])
    assert curves["count"] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
    assert curves["val/error"][1] == (2, pytest.approx(0.5))


def test_log_never_syncs_and_the_flush_converts_in_one_batch(sqlite_url, tmp_path):
    s = study(sqlite_url, trials=1)
    trial = claimed_trial(s, tmp_path)
    weight = torch.tensor(2.0, requires_grad=True)
    SpyTensor.calls = []
    for step in range(1, 101):
        loss = (weight * step).as_subclass(SpyTensor)
        trial.log(step, **{"train/loss": loss, "val/error": loss / 4})
    assert not SYNCING & set(SpyTensor.calls), SpyTensor.calls
    assert s.storage.get_metrics(trial.id) == []  # buffered: nothing written yet
    trial.flush()
    rows = s.storage.get_metrics(trial.id, ["train/loss"])
    assert [(r.step, r.value) for r in rows][:3] == [(1, 2.0), (2, 4.0), (3, 6.0)]
    assert len(rows) == 100
    assert not any(r.value != r.value for r in rows)
    trial._close()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on a GPU machine)")
def test_cuda_logging_never_syncs_in_the_training_thread(sqlite_url, tmp_path):
    s = study(sqlite_url, trials=1)
    trial = claimed_trial(s, tmp_path)
    weight = torch.tensor(2.0, device="cuda", requires_grad=True)
    torch.cuda.set_sync_debug_mode("error")  # any synchronizing call raises
    try:
        for step in range(1, 201):
            loss = weight * step
            trial.log(step, **{"train/loss": loss, "val/error": loss / 4})
    finally:
        torch.cuda.set_sync_debug_mode("default")
    trial.flush()  # one stacked transfer per device and dtype
    rows = s.storage.get_metrics(trial.id, ["train/loss"])
    assert [(r.step, r.value) for r in rows][:2] == [(1, 2.0), (2, 4.0)] and len(rows) == 200
    trial._close()


def test_logging_is_durable_within_the_flush_interval(sqlite_url, tmp_path):
    s = study(sqlite_url, trials=1)
    trial = claimed_trial(s, tmp_path, flush_interval=0.2)
    trial.log(1, **{"val/error": torch.tensor(0.25)})
    deadline = time.monotonic() + 5
    while not s.storage.get_metrics(trial.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(r.step, r.value) for r in s.storage.get_metrics(trial.id)] == [(1, 0.25)]
    trial._close()


def test_a_vector_metric_is_refused_with_the_metric_name(sqlite_url, tmp_path):
    # Checked in the writer thread (log itself does no per-value work): the next flush/log/close says so.
    s = study(sqlite_url, trials=1)
    trial = claimed_trial(s, tmp_path)
    trial.log(1, **{"train/loss": torch.ones(3), "val/error": torch.tensor(0.5)})
    with pytest.raises(ValueError, match=r"metric 'train/loss' at step 1: log a scalar, got a tensor of shape \(3,\)"):
        trial.flush()
    assert [(r.name, r.value) for r in s.storage.get_metrics(trial.id)] == [("val/error", 0.5)]  # only the bad value is rejected
    with pytest.raises(ValueError, match="metric 'train/loss'"):
        trial.close()


def test_nan_stops_the_trial_as_infeasible(storage_url, tmp_path):
    space = tb.SearchSpace(nuisance={"lr": tb.Float(0.2, 1.0)})
    s = study(storage_url, trials=1, steps=1000, space=space)
    tb.run(s, w.diverges, workers=0, progress=False, flush_interval=0.1, checkpoint_dir=tmp_path)
    (t,) = s.trials()
    assert t.state == "infeasible"
    assert t.infeasible_reason == "train/loss was nan at step 3"
    steps = [r.step for r in s.storage.get_metrics(t.id, ["train/loss"])]
    assert max(steps) < 500, "training should stop soon after the NaN, not run to the end"


def test_user_rule_marks_infeasible(sqlite_url, tmp_path):
    s = study(sqlite_url, trials=1, steps=5, infeasible_if={"train/loss": {"above": 120}})
    tb.run(s, w.large_loss, workers=0, progress=False, checkpoint_dir=tmp_path)
    (t,) = s.trials()
    assert t.state == "infeasible"
    assert t.infeasible_reason == "train/loss = 150 above 120 (infeasible_if) at step 3"


def test_out_of_memory_is_infeasible(sqlite_url, tmp_path):
    s = study(sqlite_url, trials=1)
    tb.run(s, w.out_of_memory, workers=0, progress=False, checkpoint_dir=tmp_path)
    (t,) = s.trials()
    assert t.state == "infeasible" and t.infeasible_reason.startswith("out of memory")


def test_a_bug_in_user_code_fails_with_the_traceback(sqlite_url, tmp_path):
    s = study(sqlite_url, trials=2)
    result = tb.run(s, w.user_bug, workers=0, progress=False, checkpoint_dir=tmp_path)
    assert result.counts["failed"] == 2
    t = s.trials()[0]
    assert "Traceback" in t.error and "ValueError: a bug in user code" in t.error
    assert "_workloads.py" in t.error


def test_objective_never_logged_is_a_failure_that_says_so(sqlite_url, tmp_path):
    s = study(sqlite_url, trials=1)
    tb.run(s, w.never_logs_objective, workers=0, progress=False, checkpoint_dir=tmp_path)
    (t,) = s.trials()
    assert t.state == "failed" and "objective 'val/error' was never logged (logged: train/loss)" in t.error


def test_a_misspelt_objective_names_the_logged_metric_it_probably_meant(sqlite_url, tmp_path):
    s = tb.create_study("typo", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")}),
                        objective=("val/err", "min"), trials=1, max_train_steps=3, storage=sqlite_url)
    tb.run(s, w.quadratic, workers=0, progress=False, checkpoint_dir=tmp_path)
    (t,) = s.trials()
    assert t.state == "failed" and "did the spec mean objective.metric: val/error?" in t.error


def test_checkpoints_keep_the_n_best_plus_the_latest(sqlite_url, tmp_path):
    s = study(sqlite_url, trials=1, keep_checkpoints=2)
    trial = claimed_trial(s, tmp_path)
    values = [5.0, 3.0, 4.0, 1.0, 2.0, 6.0]
    for step, value in enumerate(values, start=1):
        trial.log(step, **{"val/error": value})
        trial.checkpoint(step, {"step": step, "weights": np.full(3, value)})
    latest = trial.restore()  # waits for the background write
    assert latest.step == 6 and latest.state["step"] == 6
    kept = s.storage.get_checkpoints(trial.id)
    assert [c.step for c in kept] == [4, 5, 6]  # best two (1.0, 2.0) and the latest
    folder = Path(kept[0].path).parent
    assert sorted(p.name for p in folder.iterdir()) == [Path(c.path).name for c in kept]
    best = trial.best_checkpoint()
    assert best.step == 4 and best.value == 1.0 and best.state["weights"].tolist() == [1.0] * 3
    trial._close()


def test_checkpoint_state_is_copied_before_training_changes_it(sqlite_url, tmp_path):
    trial = claimed_trial(study(sqlite_url, trials=1), tmp_path)
    weights = torch.zeros(1000)
    trial.log(1, **{"val/error": 0.5})
    trial.checkpoint(1, {"w": weights})
    weights += 1.0  # the next training step, while the file may still be being written
    assert torch.equal(trial.restore().state["w"], torch.zeros(1000))
    trial._close()


def test_torch_state_round_trips_through_a_checkpoint(sqlite_url, tmp_path):
    s = study(sqlite_url, trials=1)
    trial = claimed_trial(s, tmp_path)
    model = torch.nn.Linear(3, 2)
    trial.log(1, **{"val/error": 0.5})
    trial.checkpoint(1, {"model": model.state_dict()})
    restored = trial.restore()
    assert torch.equal(restored.state["model"]["weight"], model.weight.detach())
    trial._close()


def test_an_interrupted_trial_resumes_from_its_checkpoint_without_duplicate_points(sqlite_url, tmp_path):
    space = tb.SearchSpace(nuisance={"lr": tb.Float(0.1, 0.5)})
    s = study(sqlite_url, trials=1, steps=30, space=space)

    def interrupted_once(trial):
        if trial.attempt == 1:
            original = trial.log

            def log(step, **metrics):
                original(step, **metrics)
                if step == 12:
                    raise KeyboardInterrupt

            trial.log = log  # type: ignore[method-assign]
        w.resumable(trial)

    with pytest.raises(KeyboardInterrupt):
        tb.run(s, interrupted_once, workers=0, progress=False, checkpoint_dir=tmp_path)
    assert s.trials()[0].state == "pending"
    second = tb.run(s, interrupted_once, workers=0, progress=False, checkpoint_dir=tmp_path)
    assert second.finished
    (t,) = s.trials()
    curve = s.metrics(t)["val/error"]
    assert [step for step, _ in curve] == list(range(1, 31))  # no step twice, none missing

    reference = study(sqlite_url.replace("tunebook.db", "ref.db"), trials=1, steps=30, space=space)
    tb.run(reference, w.resumable, workers=0, progress=False, checkpoint_dir=tmp_path / "ref")
    (r,) = reference.trials()
    assert reference.metrics(r)["val/error"] == curve
    assert (t.value, t.best_step) == (r.value, r.best_step)
