"""`tunebook worker --workers N`: N worker processes on one machine, sharing the CPU threads."""

from __future__ import annotations

import os
import subprocess
import sys

import tunebook as tb
from conftest import ROOT


def test_worker_workers_2_runs_trials_in_two_processes_at_once(tmp_path):
    meet = tmp_path / "meet"
    meet.mkdir()
    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    study = tb.create_study("pool", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")}),
                            objective=("val/error", "min"), trials=2, max_train_steps=1, storage=url,
                            train=f"{ROOT / 'tests' / '_workloads.py'}:rendezvous")
    env = {**os.environ, "TB_TEST_RENDEZVOUS": str(meet), "PYTHONPATH": str(ROOT / "tests") + os.pathsep
           + os.environ.get("PYTHONPATH", "")}
    env.pop("OMP_NUM_THREADS", None)
    proc = subprocess.run([sys.executable, "-m", "tunebook", "worker", "--storage", url, "--workers", "2"],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    # each trial waited for the other: they only complete if two worker processes ran them at the same time
    assert study.counts()["completed"] == 2 and len(os.listdir(meet)) == 2
    threads = {study.metrics(t, ["threads"])["threads"][0][1] for t in study.trials()}
    assert threads == {float(max(1, (os.cpu_count() or 1) // 2))}  # a fair share of the CPU threads each


def test_worker_pool_passes_on_a_bad_argument_as_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    proc = subprocess.run([sys.executable, "-m", "tunebook", "worker", "--storage", url, "--workers", "0"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "--workers" in proc.stderr


def test_a_quiet_worker_prints_only_its_summary(tmp_path):
    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    tb.create_study("quiet", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")}),
                    objective=("val/error", "min"), trials=2, max_train_steps=3, storage=url,
                    train=f"{ROOT / 'tests' / '_workloads.py'}:quadratic")
    for quiet, lines in ((True, 0), (False, 4)):  # a line when each trial starts and ends
        proc = subprocess.run([sys.executable, "-m", "tunebook", "worker", "--storage", url, "--study", "quiet",
                               *(["--quiet"] if quiet else [])], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert sum("trial #" in line for line in proc.stdout.splitlines()) == lines, proc.stdout
        assert "worker done" in proc.stdout
        if quiet:  # the trials ran; make them pending again for the loud run
            import sqlalchemy as sa

            engine = sa.create_engine(url)
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE tb_trials SET state = 'pending', worker_id = NULL"))
            engine.dispose()
