"""The Ray executor against real local Ray clusters."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import _workloads as w
import tunebook as tb
from conftest import ROOT, run_cli

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # one local Ray at a time

SPEC = f"""\
study: on-ray
train: {ROOT / 'tests' / '_workloads.py'}:quadratic
objective: {{metric: val/error, mode: min}}
trials: 6
max_train_steps: 20
search_space:
  nuisance: {{lr: {{min: 1.0e-4, max: 1.0, scale: log}}}}
"""


@pytest.fixture(scope="module")
def local_ray():
    # "local": a cluster of its own, never one that `ray start` or a Cluster left in /tmp/ray/ray_current_cluster
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="warning",
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT / "tests")}})
    yield
    ray.shutdown()


def test_one_ray_task_per_trial(local_ray, storage_url, tmp_path):
    study = tb.create_study("ray", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1.0, "log")}),
                            objective=("val/error", "min"), trials=6, max_train_steps=20, storage=storage_url)
    result = tb.run(study, w.quadratic, executor="ray", cpus_per_trial=1, progress=False, checkpoint_dir=tmp_path)
    assert result.finished and result.counts["completed"] == 6
    trials = study.trials()
    assert all(t.attempts == 1 and t.worker_id.startswith("ray:") for t in trials)
    assert len({t.worker_id for t in trials}) >= 1
    assert study.best_trial().value == min(t.value for t in trials)


def test_cli_ray_executor_with_a_file_training_function(tmp_path):
    (tmp_path / "study.yaml").write_text(SPEC)
    proc = run_cli("run", "study.yaml", "--executor", "ray", "--cpus-per-trial", "1", "--quiet", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on-ray: 6 completed" in proc.stdout
    study = tb.load_study("on-ray", storage=f"sqlite:///{tmp_path}/tunebook.db")
    assert all(t.worker_id.startswith("ray:") for t in study.trials())


def test_ray_options_without_the_ray_executor_are_refused(tmp_path):
    (tmp_path / "study.yaml").write_text(SPEC)
    proc = run_cli("run", "study.yaml", "--gpus-per-trial", "1", cwd=tmp_path)
    assert proc.returncode == 2 and "add --executor ray" in proc.stderr


def test_sqlite_is_refused_on_a_multi_node_cluster(tmp_path):
    (tmp_path / "study.yaml").write_text(SPEC)
    script = """
import subprocess, sys
from ray.cluster_utils import Cluster
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
proc = subprocess.run([sys.executable, "-m", "tunebook", "run", "study.yaml", "--executor", "ray",
                       "--address", cluster.address], capture_output=True, text=True)
cluster.shutdown()
print(proc.returncode)
print(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "")
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ})
    lines = proc.stdout.strip().splitlines()
    assert lines[-2] == "2", proc.stdout + proc.stderr[-3000:]
    assert lines[-1].startswith("tunebook: error: storage: a SQLite file cannot be shared by the 2 nodes")
    assert tb.load_study("on-ray", storage=f"sqlite:///{tmp_path}/tunebook.db").counts()["completed"] == 0


def test_storage_check_by_node_list():
    from tunebook.execution.ray_executor import check_storage_for_cluster
    from tunebook.storage import local_files

    sqlite = local_files("sqlite:////x.db")
    check_storage_for_cluster(sqlite, [{"Alive": True, "NodeManagerAddress": "127.0.0.1"}])
    check_storage_for_cluster((), [{"NodeManagerAddress": "10.0.0.1"}] * 3)  # a server keeps no local file
    with pytest.raises(tb.SpecError, match="storage: a SQLite file cannot be shared"):
        check_storage_for_cluster(sqlite, [{"Alive": True, "NodeManagerAddress": "203.0.113.7"}])


def test_ctrl_c_before_any_task_is_submitted_is_a_clean_interrupt(local_ray, sqlite_url, tmp_path):
    study = tb.create_study("early-stop", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1.0, "log")}),
                            objective=("val/error", "min"), trials=2, max_train_steps=5, storage=sqlite_url)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    study.storage.requeue_stale = interrupted  # Ctrl-C lands in the first round, before a task exists
    with pytest.raises(KeyboardInterrupt):
        tb.run(study, w.quadratic, executor="ray", progress=False, checkpoint_dir=tmp_path)
    assert study.counts()["pending"] == 2


def max_overlap(trials) -> int:
    """The most trials running at one moment, from the stored claim and finish times."""
    events = sorted([(t.started_at, 1) for t in trials] + [(t.finished_at, -1) for t in trials],
                    key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def test_workers_caps_the_concurrent_ray_tasks(local_ray, sqlite_url, tmp_path):
    # half a CPU a trial: Ray alone would run 4 at once on the fixture's 2 CPUs; workers=1 must serialize them
    study = tb.create_study("capped", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1.0, "log")}),
                            objective=("val/error", "min"), trials=5, max_train_steps=20, storage=sqlite_url)
    result = tb.run(study, w.diverges, executor="ray", workers=1, cpus_per_trial=0.5, progress=False,
                    checkpoint_dir=tmp_path)
    assert result.finished
    trials = study.trials()
    assert all(t.worker_id.startswith("ray:") and t.attempts == 1 for t in trials)
    assert max_overlap(trials) == 1


def test_workers_for_ray_must_be_a_positive_count(sqlite_url, tmp_path):
    study = tb.create_study("bad-workers", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1.0, "log")}),
                            objective=("val/error", "min"), trials=1, max_train_steps=5, storage=sqlite_url)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(tb.SpecError, match="^workers: the Ray executor takes a positive number"):
            tb.run(study, w.quadratic, executor="ray", workers=bad, progress=False, checkpoint_dir=tmp_path)
    with pytest.raises(tb.SpecError, match="^devices: the Ray executor places trials"):
        tb.run(study, w.quadratic, executor="ray", devices=["0"], progress=False, checkpoint_dir=tmp_path)
    assert study.counts()["pending"] == 1
