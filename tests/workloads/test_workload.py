"""The bundled digits workload and the demo, end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tunebook as tb
from _resume import assert_resumes_to_the_same_curve
from conftest import run_cli
from tunebook.workloads import digits


def test_digits_data_and_split_are_fixed():
    x, y = digits.load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert sorted(set(y.tolist())) == list(range(10))
    a = digits.split()
    b = digits.split()
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert len(a[0]) == 1438 and len(a[2]) == 359


def test_a_digits_trial_learns_and_checkpoints(sqlite_url, tmp_path):
    space = tb.SearchSpace(nuisance={"learning_rate": tb.Float(3e-3, 4e-3)}, fixed={"eval_every": 50})
    study = tb.create_study("digits", space=space, objective=("val/error", "min"), trials=1,
                            max_train_steps=300, storage=sqlite_url)
    tb.run(study, digits.train, workers=0, progress=False, checkpoint_dir=tmp_path)
    (t,) = study.trials()
    assert t.state == "completed" and t.value < 0.08
    curves = study.metrics(t)
    assert len(curves["train/loss"]) == 300
    assert [s for s, _ in curves["val/error"]] == list(range(50, 301, 50))
    assert curves["train/loss"][-1][1] < curves["train/loss"][0][1] / 5
    kept = study.storage.get_checkpoints(t.id)
    assert t.best_step in [c.step for c in kept] and max(c.step for c in kept) == 300
    # the toolkit's logs: gradient norms and the scheduled rate every step, balanced error, input timing
    assert len(curves["grad/norm"]) == 300 and len(curves["lr"]) == 300
    assert [s for s, _ in curves["val/balanced_error"]] == list(range(50, 301, 50))
    assert [s for s, _ in curves["input/wait_fraction"]] == [100, 200, 300]


def test_digits_schedule_clipping_and_ghost_batch_norm(sqlite_url, tmp_path):
    space = tb.SearchSpace(
        nuisance={"learning_rate": tb.Float(3e-3, 4e-3)},
        fixed={"schedule": "cosine", "warmup_steps": 20, "grad_clip": 0.5, "ghost_batch_size": 16, "batch_size": 64,
               "optimizer": "nadam", "eval_every": 50},
    )
    study = tb.create_study("digits-tools", space=space, objective=("val/error", "min"), trials=1,
                            max_train_steps=100, storage=sqlite_url)
    tb.run(study, digits.train, workers=0, progress=False, checkpoint_dir=tmp_path)
    (t,) = study.trials()
    assert t.state == "completed", t.error
    curves = study.metrics(t)
    lr = dict(curves["lr"])
    assert lr[1] == 0.0 and lr[21] == pytest.approx(t.params["learning_rate"]) and lr[100] < lr[21] / 100
    clipped = dict(curves["grad/clipped"])
    norms = dict(curves["grad/norm"])
    assert all(clipped[s] == float(norms[s] > 0.5) for s in clipped)
    model = digits.build_model({**study.space.fixed, **t.params})
    assert sum(type(m).__name__ == "GhostBatchNorm" for m in model.modules()) == 2


def test_an_interrupted_digits_trial_resumes_to_the_same_curve(sqlite_url, tmp_path):
    space = tb.SearchSpace(nuisance={"learning_rate": tb.Float(3e-3, 4e-3)},
                           fixed={"schedule": "cosine", "eval_every": 20, "optimizer": "adam"})

    def make(name):
        return tb.create_study(name, space=space, objective=("val/error", "min"), trials=1, max_train_steps=100,
                               storage=sqlite_url, seed=7)

    assert_resumes_to_the_same_curve(make, digits.train, stop_at=70, objective="val/error",
                                     metrics=("train/loss", "val/error", "val/loss", "grad/norm", "lr"),
                                     checkpoint_dir=tmp_path)


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    proc = run_cli("demo", "--quiet", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "digits-weight-decay: " in proc.stdout and "0 left of 21" in proc.stdout
    (row,) = json.loads(run_cli("ls", "--format", "json", cwd=tmp_path).stdout)
    assert row["study"] == "digits-weight-decay" and row["experiment"] == "digits-demo"
    assert row["completed"] + row["infeasible"] == 21 and row["completed"] >= 12
    assert row["best_value"] < 0.05
    assert row["reproduce"].startswith("tunebook demo")
    # the demo ends with the report: its path and the top findings
    report = tmp_path / "tunebook-report-digits-weight-decay.html"
    assert f"report: {report}" in proc.stdout and report.stat().st_size > 1_000_000
    assert "sampled_enough" in proc.stdout
    # ... opened by the answer to the demo's goal (does weight decay help?), before any finding
    answer = proc.stdout.index("Answer: ")
    assert "weight_decay=" in proc.stdout[answer:].splitlines()[0] and answer < proc.stdout.index("sampled_enough")


@pytest.mark.slow
def test_the_example_script_runs(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "train_digits.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = tb.load_study("digits-optimizers", storage=f"sqlite:///{tmp_path}/tunebook.db")
    assert study.is_finished() and study.best_trial().value < 0.1
    assert (tmp_path / "digits-optimizers.html").exists()
