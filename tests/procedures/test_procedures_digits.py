"""Issue 11 on the digits workload: studies made in Python, every procedure through the real CLI, no --train."""

from __future__ import annotations

import json

import pytest

import tunebook as tb
from conftest import run_cli
from tunebook.workloads.digits import train


def _digits_study(url, name, hidden):
    space = tb.SearchSpace(nuisance={"learning_rate": tb.Float(1e-3, 3e-2, "log")},
                           fixed={"optimizer": "adam", "schedule": "cosine", "batch_size": 32, "hidden_units": hidden,
                                  "eval_every": 10})
    study = tb.create_study(name, space=space, objective=("val/error", "min"), trials=3, max_train_steps=40,
                            storage=url, experiment="width")
    tb.run(study, train, workers=0, progress=False)
    return study


@pytest.mark.slow
def test_python_study_through_every_procedure_verb(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    url = f"sqlite:///{tmp_path / 'tb.db'}"
    narrow, wide = _digits_study(url, "narrow", 16), _digits_study(url, "wide", 64)
    assert narrow.train_ref == "tunebook.workloads.digits:train"

    def cli(*args, code=0):
        proc = run_cli(*args, "--storage", url, cwd=tmp_path, timeout=600)
        assert proc.returncode == code, (args, proc.stdout[-2000:], proc.stderr[-2000:])
        return proc.stdout

    best_narrow, best_wide = narrow.best_trial().number, wide.best_trial().number
    other = next(t.number for t in narrow.trials(["completed"]) if t.number != best_narrow)
    # retrain the best trial, then another one (the most recent retrain is not the best trial's)
    cli("retrain", "narrow", "--n", "3", "--workers", "0", "--quiet")
    out = cli("retrain", "narrow", "--trial", str(other), "--n", "2", "--workers", "0", "--quiet")
    assert f"tunebook run narrow-retrain-{other} --storage" in out
    cli("retrain", "wide", "--n", "3", "--workers", "0", "--quiet")
    # the early-instability check, made after the retrains: never used as one; it states a verdict
    out = cli("stability", "wide", "--run", "--steps", "30", "--workers", "0", "--quiet")
    assert any(v in out for v in ("Stable at 2 x lr*", "Unstable early, then recovers", "Diverges at 2 x lr*")), out
    assert tb.open_storage(url).get_notes(study="wide", kind="early-instability")
    out = cli("compare", "narrow", "wide")
    assert f"baseline narrow-retrain-{best_narrow}: n=3" in out and f"candidate wide-retrain-{best_wide}: n=3" in out
    decision = tb.open_storage(url).get_notes(kind="compare")[-1]["evidence"]
    if decision["recommendation"] == "adopt":
        assert "Adopted wide as the baseline of width" in cli("adopt", "wide")
    else:
        proc = run_cli("adopt", "wide", "--storage", url)
        assert proc.returncode == 2 and ".;" not in proc.stderr and "--force" in proc.stderr
        assert "Adopted wide" in cli("adopt", "wide", "--force")
    # the next round: a few long runs of the best configuration, run by name with workers and the thread cap
    out = cli("next-round", "wide", "--steps", "80")
    assert "Created wide-r2 (round 2): 3 long runs of 80 steps" in out and "base learning rate kept (learning_rate=" in out
    assert "schedule 'cosine' extended" in out and "Run it: tunebook run wide-r2 --storage" in out
    out = cli("run", "wide-r2", "--workers", "2", "--quiet")
    assert "wide-r2: 3 completed, 0 infeasible, 0 failed, 0 left of 3" in out
    rows = {r["study"]: r for r in json.loads(cli("ls", "--format", "json"))}
    assert rows["wide-r2"]["reproduce"].startswith("tunebook run wide-r2 --storage")
    assert rows["wide-r2"]["round"] == 2 and rows["wide-r2"]["parent"] == "wide"
    # study variance: the same study with another design seed, set against the trial variance
    out = cli("study-variance", "narrow", "--seeds", "1", "--run", "--workers", "0", "--quiet")
    assert "twice the trial std" in out and "narrow-seed1" in out
    note = tb.open_storage(url).get_notes(study="narrow", kind="study-variance")[-1]
    assert note["evidence"]["retrains"] == f"narrow-retrain-{best_narrow}" and "stable" in note["evidence"]
