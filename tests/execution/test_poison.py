"""Poison trials: a training function that kills its worker (``os._exit``, ``sys.exit``, a custom
``BaseException``) is a lost worker; after ``max_lost_workers`` the trial fails with the observed cause,
never stays running or pending forever, and ``tunebook run`` exits 1. Text with NUL is stored.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import tunebook as tb
from conftest import ROOT

TESTS = str(ROOT / "tests")
FAULTY = f"{ROOT / 'tests' / '_faulty.py'}"


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), TESTS, os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1"}


def tunebook(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunebook", *args], cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=300)


def spec_file(tmp_path, name: str, train: str, trials: int = 1):
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"study: {name}\ntrain: {FAULTY}:{train}\nobjective: {{metric: val/error, mode: min}}\ntrials: {trials}\n"
        "max_train_steps: 2\nsearch_space:\n  nuisance: {lr: {min: 0.1, max: 0.2}}\n"
    )
    return path


def poison_study(url: str, name: str, train: str) -> tb.Study:
    return tb.create_study(name, space=tb.SearchSpace(nuisance={"lr": tb.Float(0.1, 0.2)}),
                           objective=("val/error", "min"), trials=1, max_train_steps=2, storage=url,
                           train=f"{FAULTY}:{train}")


@pytest.mark.parametrize("workers", ["0", "1"])
def test_sys_exit_0_in_training_fails_the_trial_and_the_run_exits_1(sqlite_url, tmp_path, workers):
    proc = tunebook("run", str(spec_file(tmp_path, "exits", "exits_zero")), "--storage", sqlite_url,
                    "--workers", workers, "--quiet")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "lost their worker" in proc.stderr or "died" in proc.stderr
    (trial,) = tb.load_study("exits", storage=sqlite_url).trials()
    assert trial.state == "failed" and trial.lost_workers == 3
    assert "the training function called sys.exit(0)" in trial.error


def test_a_custom_base_exception_fails_the_trial_without_a_traceback(sqlite_url, tmp_path):
    study = poison_study(sqlite_url, "poison", "raises_poison")
    result = tb.run(study, workers=0, progress=False, checkpoint_dir=tmp_path)
    (trial,) = study.trials()
    assert trial.state == "failed" and trial.lost_workers == 3
    assert "raised Poison (a BaseException" in trial.error and "from the training function" in trial.error
    assert result.lost_workers == 3 and result.problem is not None


def test_os_exit_in_training_counts_lost_workers_until_failed(sqlite_url, tmp_path):
    study = poison_study(sqlite_url, "hard", "exits_hard")
    codes = []
    for _ in range(4):  # each worker dies with the trial; the next one sees its PID gone at once
        proc = tunebook("worker", "--storage", sqlite_url, "--checkpoint-dir", str(tmp_path / "ckpt"))
        codes.append(proc.returncode)
        if proc.returncode == 0:
            break
    assert codes == [3, 3, 3, 0]
    (trial,) = study.trials()
    assert trial.state == "failed" and trial.lost_workers == 3 and trial.attempts == 3
    assert "is gone (no such process on this host)" in trial.error
    status = tunebook("status", "hard", "--storage", sqlite_url)
    assert "failed #0" in status.stdout and "lost workers" in status.stdout


def test_status_shows_why_a_trial_went_back_to_pending(sqlite_url, tmp_path):
    study = poison_study(sqlite_url, "once", "exits_hard")
    assert tunebook("worker", "--storage", sqlite_url, "--max-trials", "1").returncode == 3
    (trial,) = study.trials()
    assert trial.state == "running"
    from tunebook.execution.loop import reclaim_dead_workers

    assert reclaim_dead_workers(study.storage, study) == 1
    status = tunebook("status", "once", "--storage", sqlite_url)
    assert "re-queued #0 (attempts 1, lost workers 1): its worker" in status.stdout, status.stdout


def test_nul_in_an_error_message_is_stored_on_postgresql(pg_server, tmp_path):
    url = pg_server.new_database()
    study = poison_study(url, "nul", "raises_with_nul")
    tb.run(study, workers=0, progress=False, checkpoint_dir=tmp_path)
    (trial,) = study.trials()
    assert trial.state == "failed" and "bad \\0 byte in the message" in trial.error
    other = poison_study(url, "nul-exit", "nul_in_sysexit")
    tb.run(other, workers=0, progress=False, checkpoint_dir=tmp_path)
    (trial,) = other.trials()
    assert trial.state == "failed" and "sys.exit(" in trial.error and "\x00" not in trial.error
    # a NUL typed into a spec is refused up front (one line), before the storage boundary would escape it
    with pytest.raises(tb.SpecError, match="goal: contains a NUL"):
        tb.create_study("nul-goal", space=tb.SearchSpace(nuisance={"lr": tb.Float(0.1, 0.2)}),
                        objective=("val/error", "min"), trials=1, max_train_steps=2, storage=url,
                        goal="a goal with \x00 in it")
