"""Reliability with real processes and real stores: checkpoints that belong to their store, faults of
the infrastructure retried (never failing a trial), configuration errors before any claim, crashed
runs reclaimed at once.

No test sleeps as an assertion: each polls the store (or a process) with a generous deadline.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tunebook as tb
from _procs import fill, small_disk
from conftest import ROOT
from tunebook.checkpoints import CheckpointManager, CheckpointMismatch, read

TESTS = str(ROOT / "tests")
FAULTY = f"{ROOT / 'tests' / '_faulty.py'}"


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), TESTS, os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1", **extra}


def tunebook(*args: str, cwd=None, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunebook", *args], cwd=cwd, env=env(**extra),
                          capture_output=True, text=True, timeout=timeout)


def start(*args: str, cwd=None, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tunebook", *args], cwd=cwd, env=env(**extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def tagged_study(url: str, tag: float, name: str = "same", trials: int = 1, steps: int = 4) -> tb.Study:
    space = tb.SearchSpace(nuisance={"lr": tb.Float(0.1, 0.2)}, fixed={"tag": tag})
    return tb.create_study(name, space=space, objective=("val/error", "min"), trials=trials, max_train_steps=steps,
                           storage=url, seed=1, train=f"{FAULTY}:tagged")


def best_state(study: tb.Study, trial) -> dict:
    records = study.storage.get_checkpoints(trial.id)
    manager = CheckpointManager(Path(records[0].path).parent, records=records, owner=trial.id,
                                store_id=study.storage.store_id)
    return manager.best().state


# 1. checkpoints belong to their store ------------------------------------------------------------


def test_two_sqlite_stores_in_one_folder_never_share_checkpoints(tmp_path):
    a = tagged_study(f"sqlite:///{tmp_path / 'a.db'}", 1.0)
    b = tagged_study(f"sqlite:///{tmp_path / 'b.db'}", 2.0)
    assert a.storage.store_id and b.storage.store_id and a.storage.store_id != b.storage.store_id
    for study in (a, b):  # same folder, same study name, same trial numbers
        tb.run(study, workers=0, progress=False)
    (ta,), (tb_,) = a.trials(), b.trials()
    assert ta.state == tb_.state == "completed"
    assert best_state(a, ta)["tag"] == 1.0 and best_state(b, tb_)["tag"] == 2.0
    path_a = a.storage.get_checkpoints(ta.id)[0].path
    assert f"/tunebook_checkpoints/{a.storage.store_id}/same/trial-00000/" in path_a
    envelope = read(path_a)
    assert envelope["store_id"] == a.storage.store_id and envelope["trial_id"] == ta.id


def test_two_postgresql_databases_with_one_checkpoint_dir_never_share_checkpoints(pg_server, tmp_path):
    shared = tmp_path / "ckpt"
    a = tagged_study(pg_server.new_database(), 1.0)
    b = tagged_study(pg_server.new_database(), 2.0)
    for study in (a, b):
        proc = tunebook("worker", "--storage", study.storage.url.replace("+psycopg", ""), "--checkpoint-dir",
                        str(shared))
        assert proc.returncode == 0, proc.stderr
    (ta,), (tb_,) = a.trials(), b.trials()
    assert best_state(a, ta)["tag"] == 1.0 and best_state(b, tb_)["tag"] == 2.0
    assert {p.name for p in shared.iterdir()} == {a.storage.store_id, b.storage.store_id}


def test_another_stores_checkpoint_file_is_refused_with_one_line(tmp_path):
    a = tagged_study(f"sqlite:///{tmp_path / 'a.db'}", 1.0)
    b = tagged_study(f"sqlite:///{tmp_path / 'b.db'}", 2.0)
    for study in (a, b):
        tb.run(study, workers=0, progress=False)
    (ta,), (tb_,) = a.trials(), b.trials()
    mine = a.storage.get_checkpoints(ta.id)
    theirs = b.storage.get_checkpoints(tb_.id)
    shutil.copy(theirs[-1].path, mine[-1].path)  # store B's weights where store A expects its own
    manager = CheckpointManager(Path(mine[0].path).parent, records=mine, owner=ta.id, store_id=a.storage.store_id)
    with pytest.raises(CheckpointMismatch) as info:
        manager.latest()
    assert "\n" not in str(info.value) and b.storage.store_id in str(info.value)


def test_an_old_store_gets_its_id_on_the_first_write_open(tmp_path):
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}"
    study = tagged_study(url, 1.0)
    first = study.storage.store_id
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # as a store from before store ids
        conn.exec_driver_sql("DROP TABLE tb_meta")
    engine.dispose()
    from tunebook.storage.sql import SQLStorage

    again = SQLStorage(study.storage.url)
    assert again.store_id and again.store_id != first
    assert SQLStorage(study.storage.url).store_id == again.store_id  # made once, then kept


# 2. infrastructure faults, corrupt checkpoints, configuration errors ------------------------------


def test_a_truncated_latest_checkpoint_falls_back_to_the_previous_intact_one(sqlite_url, tmp_path):
    study = tagged_study(sqlite_url, 1.0, steps=6)
    ckpt = tmp_path / "ckpt"
    crash = tunebook("worker", "--storage", sqlite_url, "--checkpoint-dir", str(ckpt), TB_EXIT_AT="4")
    assert crash.returncode == 3  # os._exit(3) after the checkpoint at step 4
    (trial,) = study.trials()
    kept = study.storage.get_checkpoints(trial.id)
    latest = max(kept, key=lambda c: c.step)
    assert latest.step == 4
    with open(latest.path, "r+b") as f:  # a torn write: the file ends half-way
        f.truncate(os.path.getsize(latest.path) // 2)
    resume = tunebook("worker", "--storage", sqlite_url, "--checkpoint-dir", str(ckpt))
    assert resume.returncode == 0, resume.stderr
    (trial,) = study.trials()
    assert trial.state == "completed" and trial.lost_workers == 1  # reclaimed at once: its PID is gone
    restored = {name: points for name, points in study.metrics(trial).items() if name.startswith("restored")}
    previous = max(c.step for c in kept if c.step < 4)
    assert restored["restored_from"] == [(previous + 1, float(previous))]


def test_a_checkpoint_folder_that_is_a_file_is_refused_before_any_claim(sqlite_url, tmp_path):
    study = tagged_study(sqlite_url, 1.0)
    not_a_folder = tmp_path / "ckpt"
    not_a_folder.write_text("")
    proc = tunebook("worker", "--storage", sqlite_url, "--checkpoint-dir", str(not_a_folder))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "checkpoint_dir" in proc.stderr and "is a file" in proc.stderr
    (trial,) = study.trials()
    assert trial.state == "pending" and trial.attempts == 0  # nothing was claimed


def test_a_worker_that_cannot_import_train_claims_nothing(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "mytrain.py").write_text((ROOT / "tests" / "_faulty.py").read_text())
    (project / "study.yaml").write_text(
        "study: relative\ntrain: mytrain.py:tagged\nobjective: {metric: val/error, mode: min}\ntrials: 2\n"
        "max_train_steps: 3\nsearch_space:\n  nuisance: {lr: {min: 0.1, max: 0.2}}\n  fixed: {tag: 1.0}\n"
    )
    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    created = tunebook("run", "study.yaml", "--storage", url, "--create-only", cwd=project)  # a relative config path
    assert created.returncode == 0, created.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The stored config path is absolute: a worker started in another folder finds the training file.
    ok = tunebook("worker", "--storage", url, "--max-trials", "1", cwd=elsewhere)
    assert ok.returncode == 0, ok.stderr
    (project / "mytrain.py").rename(project / "moved.py")
    broken = tunebook("worker", "--storage", url, cwd=elsewhere)
    assert broken.returncode == 2 and len(broken.stderr.strip().splitlines()) == 1, broken.stderr
    assert "train" in broken.stderr and "mytrain.py" in broken.stderr
    states = [(t.state, t.attempts) for t in tb.load_study("relative", storage=url).trials()]
    assert states == [("completed", 1), ("pending", 0)]  # the second trial was never claimed


def test_disk_full_while_checkpointing_is_retried_never_failed(tmp_path):
    with small_disk(tmp_path / "small", "1m") as disk:
        url = f"sqlite:///{tmp_path / 'tunebook.db'}"
        study = tb.create_study("full", space=tb.SearchSpace(nuisance={"lr": tb.Float(0.1, 0.2)}),
                                objective=("val/error", "min"), trials=2, max_train_steps=6, storage=url,
                                train=f"{FAULTY}:fills_the_disk")
        proc = start("worker", "--storage", url, "--checkpoint-dir", str(disk), TB_BLOB="400000")

        def retried():
            return any(t.state == "pending" and t.error and "infrastructure fault" in t.error for t in study.trials())

        wait_for(retried)
        status = tunebook("status", "full", "--storage", url)
        assert "infrastructure fault" in status.stdout and "No space left on device" in status.stdout
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        assert "retrying in" in out
        assert all(t.state == "pending" for t in study.trials())  # never failed for the disk
        assert all(t.lost_workers == 0 for t in study.trials())
        # room again (a bigger checkpoint folder): the same trials complete
        done = tunebook("worker", "--storage", url, "--checkpoint-dir", str(tmp_path / "big"), TB_BLOB="400000")
        assert done.returncode == 0, done.stderr
        assert [t.state for t in study.trials()] == ["completed", "completed"]


@pytest.mark.slow
@pytest.mark.parametrize("down_for", [0.0, 3.0], ids=["pg_ctl-restart", "down-3s"])
def test_a_postgresql_restart_during_a_run_fails_no_trial(pg_server, tmp_path, down_for):
    url = pg_server.new_database()
    study = tb.create_study("restart", space=tb.SearchSpace(nuisance={"lr": tb.Float(0.1, 0.2)}),
                            objective=("val/error", "min"), trials=3, max_train_steps=40, storage=url,
                            train=f"{FAULTY}:slow_steps")
    proc = start("worker", "--storage", url, "--checkpoint-dir", str(tmp_path / "ckpt"), TB_STEP_DELAY="0.1")

    def training():
        return any(t.state == "running" and study.storage.get_metrics(t.id) for t in study.trials())

    wait_for(training)
    pg_server.restart(down_for)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    trials = study.trials()
    assert [t.state for t in trials] == ["completed"] * 3
    assert all(t.lost_workers == 0 for t in trials)
    steps = [s for s, _ in study.metrics(trials[0])["val/error"]]
    assert steps == list(range(1, 41))  # one point per step, none lost, none twice
    print(f"faults retried: {out.count('retrying in')}; attempts: {[t.attempts for t in trials]}")


# 4. a crashed run is reclaimed at once; the exit code tells ----------------------------------------


def test_run_after_a_crash_reclaims_the_crashed_trials_at_once(sqlite_url, tmp_path):
    spec = tmp_path / "study.yaml"
    spec.write_text(
        f"study: crashy\ntrain: {FAULTY}:tagged\nobjective: {{metric: val/error, mode: min}}\ntrials: 2\n"
        "max_train_steps: 5\nsearch_space:\n  nuisance: {lr: {min: 0.1, max: 0.2}}\n  fixed: {tag: 1.0}\n"
    )
    created = tunebook("run", str(spec), "--storage", sqlite_url, "--create-only")
    assert created.returncode == 0, created.stderr
    victim = start("worker", "--storage", sqlite_url, "--max-trials", "1", TB_EXIT_AT="3")
    victim.communicate(timeout=300)
    assert victim.returncode == 3
    study = tb.load_study("crashy", storage=sqlite_url)
    assert [t.state for t in study.trials()] == ["running", "pending"]  # the crash left it running
    rerun = tunebook("run", str(spec), "--storage", sqlite_url, "--quiet")  # stale_after is 60 s: not waited for
    assert rerun.returncode == 0, rerun.stderr
    trials = study.trials()
    assert [t.state for t in trials] == ["completed", "completed"]
    assert trials[0].lost_workers == 1 and trials[0].attempts == 2


@pytest.mark.parametrize("code", [3, 75])
def test_run_exits_non_zero_when_a_worker_dies(sqlite_url, tmp_path, code):
    """A training function that exits its worker with the very codes workers use to report (3: gave up on
    the store; 75: caught an exit) is still a lost worker: the parent believes a code only with its report."""
    spec = tmp_path / "study.yaml"
    spec.write_text(
        f"study: dies\ntrain: {FAULTY}:{'exits_hard' if code == 3 else 'exits_75'}\nobjective: {{metric: val/error, mode: min}}\ntrials: 1\n"
        "max_train_steps: 2\nsearch_space:\n  nuisance: {lr: {min: 0.1, max: 0.2}}\n"
    )
    proc = tunebook("run", str(spec), "--storage", sqlite_url, "--quiet")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "worker(s) died" in proc.stderr or "lost their worker" in proc.stderr
    (trial,) = tb.load_study("dies", storage=sqlite_url).trials()
    assert trial.state == "failed" and trial.lost_workers == 3
    assert f"worker exited with code {code} during the trial" in trial.error


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one local Ray at a time (tests/execution/test_ray.py)
def test_a_sigkilled_ray_worker_does_not_leave_its_trial_running(sqlite_url, tmp_path):
    pytest.importorskip("ray")
    spec = tmp_path / "study.yaml"
    spec.write_text(
        f"study: rayk\ntrain: {FAULTY}:ray_victim\nobjective: {{metric: val/error, mode: min}}\ntrials: 1\n"
        "max_train_steps: 3\nsearch_space:\n  nuisance: {lr: {min: 0.1, max: 0.2}}\n"
    )
    pid_file = tmp_path / "pid"
    run = start("run", str(spec), "--storage", sqlite_url, "--executor", "ray", "--workers", "1", "--quiet",
                TB_PID_FILE=str(pid_file), RAY_DEDUP_LOGS="0")
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=600)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    out, err = run.communicate(timeout=600)
    assert run.returncode == 0, (out + err)[-3000:]
    (trial,) = tb.load_study("rayk", storage=sqlite_url).trials()
    assert trial.state == "completed" and trial.lost_workers == 1 and trial.attempts == 2


def test_a_full_disk_under_a_sqlite_store_is_retried_and_the_run_survives(tmp_path):
    import threading

    with small_disk(tmp_path / "small", "4m") as disk:
        url = f"sqlite:///{disk / 'tunebook.db'}"
        study = tb.create_study("sqlfull", space=tb.SearchSpace(nuisance={"lr": tb.Float(0.1, 0.2)}),
                                objective=("val/error", "min"), trials=2, max_train_steps=30, storage=url,
                                train=f"{FAULTY}:slow_steps")
        filler = fill(disk, 48 * 1024)  # 48 KiB left
        proc = start("worker", "--storage", url, "--checkpoint-dir", str(tmp_path / "ckpt"), TB_STEP_DELAY="0.05")
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        wait_for(lambda: any("infrastructure fault" in line for line in lines))
        filler.unlink()  # room again: the worker's next retry goes through
        proc.wait(timeout=600)
        reader.join(timeout=60)
        err = proc.stderr.read()
        assert proc.returncode == 0, err[-3000:]
        trials = study.trials()
        assert [t.state for t in trials] == ["completed", "completed"]  # none failed for the full disk
        assert all(t.lost_workers == 0 for t in trials)
        print(f"faults retried: {sum('retrying in' in line for line in lines)}; attempts: {[t.attempts for t in trials]}")


def test_an_unreachable_store_is_one_line_and_exit_2(tmp_path):
    from tunebook.testing import free_port

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"  # nothing listens there
    proc = tunebook("worker", "--storage", url)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "storage" in proc.stderr
