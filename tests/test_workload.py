"""The bundled digits workload and the demo, end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tunebook as tb
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
