"""Concurrent processes on one store: atomic Bayesian proposals and concurrent extends (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import tunebook as tb
from conftest import ROOT

pytestmark = pytest.mark.slow
TESTS = str(ROOT / "tests")
ENV = {**os.environ, "PYTHONPATH": TESTS + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}


def tunebook(*args: str, cwd=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tunebook", *args], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(procs: list[subprocess.Popen]) -> list[tuple[str, str]]:
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
        for word in ("Traceback", "IntegrityError", "UniqueViolation", "locked"):
            assert word not in err, err[-3000:]
    return outputs


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_concurrent_workers_never_propose_the_same_point_or_seed(storage_url, tmp_path, sampler):
    space = tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1.0, "log")})
    trials = 12
    study = tb.create_study(f"bo-{sampler}", space=space, objective=("val/error", "min"), trials=trials,
                            max_train_steps=5, storage=storage_url, design="bayesian", sampler=sampler,
                            train="_workloads:quadratic")
    workers = [tunebook("worker", "--storage", storage_url, "--study", study.name,
                        "--checkpoint-dir", str(tmp_path / "ckpt")) for _ in range(4)]
    finish(workers)
    done = study.trials()
    assert [t.number for t in done] == list(range(trials))  # no gap, never past the budget
    assert all(t.state == "completed" and t.attempts == 1 for t in done)
    assert len({t.seed for t in done}) == trials, [t.seed for t in done]
    # 9 proposals, then the replicate phase: the best of them 3 times, added once by one of the 4 workers
    proposed, replicas = done[:9], done[9:]
    assert study.replicate_numbers() == {9, 10, 11}
    assert len({t.params["lr"] for t in proposed}) == 9, [t.params["lr"] for t in proposed]
    assert [t.params for t in replicas] == [min(proposed, key=lambda t: t.value).params] * 3


SPEC = """\
study: grow
train: {train}
objective: {{metric: val/error, mode: min}}
trials: {trials}
max_train_steps: 5
search_space:
  scientific: {{wd: {{choice: [0.0, 0.1]}}}}
  nuisance: {{lr: {{min: 1.0e-4, max: 1.0, scale: log}}}}
"""


def test_concurrent_create_only_runs_extend_one_study_once(storage_url, tmp_path):
    train = f"{ROOT / 'tests' / '_workloads.py'}:quadratic"
    (tmp_path / "small.yaml").write_text(SPEC.format(train=train, trials=6))
    (tmp_path / "large.yaml").write_text(SPEC.format(train=train, trials=20))
    finish([tunebook("run", "small.yaml", "--storage", storage_url, "--create-only", cwd=tmp_path)])
    # six processes extend the same stored study at once: one adds the trials, the others find them there
    procs = [tunebook("run", "large.yaml", "--storage", storage_url, "--create-only", cwd=tmp_path)
             for _ in range(6)]
    outputs = finish(procs)
    assert all("20 trials stored" in out for out, _ in outputs)
    study = tb.load_study("grow", storage=storage_url)
    trials = study.trials()
    assert study.trials_budget == 20
    search = study.replicate_plan.search  # 2 groups of 10: 7 search trials and 3 replicates (added as it runs) each
    assert search == 14 and [t.number for t in trials] == list(range(search))
    # exactly the design's points, as if the study had been created with 20 trials at once
    reference = tb.get_design("quasi_random").materialize(study.space, 20, study.seed)[:search]
    assert [(t.params, t.seed) for t in trials] == [(p.params, p.seed) for p in reference]
