"""Fault tolerance with real processes: killed workers, many concurrent workers on one store.

No test sleeps for a fixed time or depends on how fast the machine is: each
waits by polling the store for the state it needs (bounded by a generous
deadline), and the workers' own polling finds stale trials.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

import _workloads as w
import tunebook as tb
from conftest import ROOT

pytestmark = pytest.mark.slow
TESTS = str(ROOT / "tests")


def worker(storage: str, *args: str, cwd=None, env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": TESTS + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1",
           **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "tunebook", "worker", "--storage", storage, *args],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def digits_study(url: str, name: str) -> tb.Study:
    space = tb.SearchSpace(nuisance={"learning_rate": tb.Float(2e-3, 5e-3, "log")},
                           fixed={"schedule": "cosine", "eval_every": 20, "hidden_units": 64})
    return tb.create_study(name, space=space, objective=("val/error", "min"), trials=2, max_train_steps=400,
                           storage=url, seed=3, train="tunebook.workloads.digits:train")


def wait_for(predicate, timeout=600.0):
    """Poll the store until ``predicate`` holds (the deadline only guards against a hang)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_sigkill_a_worker_mid_trial_and_the_resumed_trial_matches_an_uninterrupted_run(storage_url, tmp_path):
    study = digits_study(storage_url, "killed")
    first = study.trials()[0]
    victim = worker(storage_url, "--study", "killed", "--max-trials", "1", "--stale-after", "3",
                    "--checkpoint-dir", str(tmp_path / "ckpt"))

    def checkpointed_past_100():
        kept = study.storage.get_checkpoints(first.id)
        return bool(kept) and max(c.step for c in kept) >= 100

    wait_for(checkpointed_past_100)
    victim.send_signal(signal.SIGKILL)  # no chance to clean up
    victim.communicate(timeout=30)
    assert study.storage.get_trial(first.id).state == "running"  # stuck, as after a machine failure

    rescuer = worker(storage_url, "--study", "killed", "--stale-after", "3", "--checkpoint-dir", str(tmp_path / "ckpt"))
    out, err = rescuer.communicate(timeout=300)
    assert rescuer.returncode == 0, err
    assert "locked" not in err
    trials = study.trials()
    assert [t.state for t in trials] == ["completed", "completed"]
    resumed = trials[0]
    assert resumed.attempts == 2 and resumed.lost_workers == 1
    # the resumed trial continued from its checkpoint: one point per step, none twice
    steps = [s for s, _ in study.metrics(resumed)["train/loss"]]
    assert steps == list(range(1, 401))

    reference = digits_study(storage_url, "uninterrupted")
    tb.run(reference, workers=0, progress=False, checkpoint_dir=tmp_path / "ref")
    expected = reference.trials()[0]
    assert (resumed.value, resumed.best_step) == (expected.value, expected.best_step)
    assert study.metrics(resumed)["val/error"] == reference.metrics(expected)["val/error"]


def test_create_only_then_workers_run_the_study(tmp_path):
    (tmp_path / "study.yaml").write_text(
        f"study: shared\ntrain: {ROOT / 'tests' / '_workloads.py'}:quadratic\nobjective: {{metric: val/error, mode: min}}\n"
        "trials: 6\nmax_train_steps: 10\nsearch_space:\n  nuisance: {lr: {min: 1.0e-4, max: 1.0, scale: log}}\n"
    )
    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    proc = subprocess.run([sys.executable, "-m", "tunebook", "run", "study.yaml", "--storage", url, "--create-only"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0 and "6 trials stored" in proc.stdout
    assert tb.load_study("shared", storage=url).counts()["pending"] == 6
    workers = [worker(url, cwd=tmp_path) for _ in range(2)]  # no --study: any study in the store
    for p in workers:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert tb.load_study("shared", storage=url).counts()["completed"] == 6


def test_a_trial_that_kills_its_workers_is_failed_after_three(sqlite_url, tmp_path):
    space = tb.SearchSpace(nuisance={"lr": tb.Float(0.1, 0.2)})
    study = tb.create_study("deadly", space=space, objective=("val/error", "min"), trials=1, max_train_steps=10,
                            storage=sqlite_url, train=f"{ROOT / 'tests' / '_workloads.py'}:resumable")
    (trial,) = study.trials()
    # Each step sleeps far longer than the test needs to see the trial running: on a loaded machine the
    # trial can never finish before its worker is killed. The next worker sees the killed PID gone at once.
    slow = {"TB_TEST_DELAY": "600"}
    for attempt in range(1, 4):
        # --stale-after far beyond the test: the loss is counted because the PID is gone, never by staleness
        victim = worker(sqlite_url, "--stale-after", "600", "--poll-interval", "0.2", env=slow)

        def running(attempt=attempt):
            t = study.storage.get_trial(trial.id)
            return t.state == "running" and t.attempts == attempt

        wait_for(running)
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=120)
    final = worker(sqlite_url, "--stale-after", "600", "--poll-interval", "0.2", env=slow)
    out, err = final.communicate(timeout=600)
    assert final.returncode == 0, err
    t = study.storage.get_trial(trial.id)
    # the killed workers ran on this host: each next worker saw the PID gone and counted the loss at once
    assert t.state == "failed" and t.lost_workers == 3 and "failed after 3 lost workers" in t.error
    assert "is gone (no such process on this host)" in t.error
    status = subprocess.run([sys.executable, "-m", "tunebook", "status", "deadly", "--storage", sqlite_url],
                            capture_output=True, text=True)
    assert "failed after 3 lost workers" in status.stdout


def concurrent_run(url: str, workers: int, trials: int) -> None:
    study = tb.create_study(f"many-{workers}", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")}),
                           objective=("val/error", "min"), trials=trials, max_train_steps=w.TINY_STEPS, storage=url,
                           train="_workloads:tiny")
    procs = [worker(url, "--study", study.name, "--checkpoint-dir", "/tmp/unused") for _ in range(workers)]
    outputs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-2000:]
        assert "locked" not in err.lower() and "Traceback" not in err
    trials_done = study.trials()
    assert [t.number for t in trials_done] == list(range(trials))
    assert all(t.state == "completed" and t.attempts == 1 for t in trials_done)  # every trial exactly once
    ran = sum(int(line.rsplit(" ", 1)[0].split("worker done: ")[1].split()[0]) for out, _ in outputs
              for line in out.splitlines() if line.startswith("worker done: ") and "completed" in line)
    assert ran == trials  # the workers' own counts add up: nobody ran a trial twice
    engine = sa.create_engine(study.storage.url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*) FROM tb_metrics m JOIN tb_trials t ON m.trial_id = t.id "
                                    "WHERE t.study_id = :s"), {"s": study.id}).scalar()
    engine.dispose()
    assert rows == trials * w.TINY_STEPS * 2  # no metric row lost, none duplicated


def test_16_workers_on_sqlite_run_2000_trials_exactly_once(tmp_path):
    concurrent_run(f"sqlite:///{tmp_path / 'tunebook.db'}", workers=16, trials=2000)


def test_32_workers_on_postgresql_run_2000_trials_exactly_once(pg_server):
    concurrent_run(pg_server.new_database(), workers=32, trials=2000)
