"""The store is there or the run says so (issue 22, item 3): real processes, real SQLite files,
a real full disk (a small tmpfs, mounted only when root may, unmounted after).

An infrastructure fault is retried with backoff (``INFRA_RETRIES`` = 8 in a row), then the run
stops with one line and exit 3; it is never a lost worker, a failed trial or exit 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import tunebook as tb
from _procs import fill, small_disk, wait_for
from conftest import ROOT
from tunebook.checkpoints import fault_notes
from tunebook.execution.loop import INFRA_RETRIES, worker_id_for

FAULTY = ROOT / "tests" / "_faulty.py"

pytestmark = pytest.mark.slow


def spec(train: str, trials: int = 2, steps: int = 40) -> str:
    return (f"study: infra\ntrain: {FAULTY}:{train}\nobjective: {{metric: val/error, mode: min}}\ntrials: {trials}\n"
            f"max_train_steps: {steps}\nsearch_space:\n  nuisance: {{lr: {{min: 0.1, max: 0.2}}}}\n")


def start_run(folder: Path, url: str, workers: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tunebook", "run", "study.yaml", "--storage", url, "--workers", workers,
         "--checkpoint-dir", str(folder / "ckpt")],
        # waits of 0.5 s, then 1 s: the 8 retries take 7.5 s instead of 91.5 s (the default cap is 30 s)
        cwd=folder, env={**os.environ, "TUNEBOOK_MAX_BACKOFF": "1", **env}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("tunebook: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    return lines[0]


@pytest.mark.parametrize("workers", ["0", "1"])
def test_a_sqlite_file_deleted_mid_run_is_an_infrastructure_fault_and_exit_3(tmp_path, workers):
    """Before: the run went on writing into the deleted file and ended with exit 0, "stored in sqlite:///..."."""
    (tmp_path / "study.yaml").write_text(spec("slow_steps"))
    db = tmp_path / "del.db"
    url = f"sqlite:///{db}"
    proc = start_run(tmp_path, url, workers, TB_STEP_DELAY="0.1")

    def training() -> bool:
        try:
            study = tb.load_study("infra", storage=url)
            return any(study.storage.get_metrics(t.id) for t in study.trials(["running"]))
        except tb.TunebookError:
            return False

    wait_for(training)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 3, (out[-2000:], err[-3000:])
    line = one_error_line(err)
    assert f"the SQLite file {db} is gone" in line, line
    assert "stored in" not in out
    assert not db.exists()  # nothing recreated it behind the user's back


def test_a_full_disk_under_the_store_is_retried_then_exit_3_and_no_trial_is_blamed(tmp_path):
    """Before: `run --workers 0` exited 1 after 2 retries, left trials running, and a later worker failed them."""
    with small_disk(tmp_path / "small", "4m") as disk:
        (tmp_path / "study.yaml").write_text(spec("slow_steps", steps=400))
        url = f"sqlite:///{disk / 'tunebook.db'}"
        created = subprocess.run([sys.executable, "-m", "tunebook", "run", "study.yaml", "--storage", url, "--create-only"],
                                 cwd=tmp_path, capture_output=True, text=True)
        assert created.returncode == 0, created.stderr
        filler = fill(disk, 48 * 1024)  # 48 KiB left, for good
        proc = start_run(tmp_path, url, "0", TB_STEP_DELAY="0.01")
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 3, (out[-2000:], err[-3000:])
        line = one_error_line(err)
        assert "gave up after" in line and f"{INFRA_RETRIES} retries" in line, line
        assert (out + err).count("retrying in") >= INFRA_RETRIES, (out + err)[-3000:]
        filler.unlink()  # room again
        study = tb.load_study("infra", storage=url)
        trials = study.trials()
        assert all(t.state in ("pending", "running") for t in trials), trials  # none failed for the disk
        assert all(t.lost_workers == 0 for t in trials), trials
        left = [t for t in trials if t.state == "running"]  # the store never took the release
        marks = fault_notes.noted(tmp_path / "ckpt", study.storage.store_id)
        assert sorted(m["trial"] for _, m in marks) == sorted(t.id for t in left)


def test_a_trial_a_worker_could_not_put_back_is_put_back_by_the_next_worker_without_a_lost_worker(tmp_path):
    """What the next worker does with a trial noted by one that gave up (its PID is gone: without the note,
    the trial would count a lost worker)."""
    url = f"sqlite:///{tmp_path}/left.db"
    study = tb.create_study("left", space=tb.SearchSpace(nuisance={"lr": tb.Float(0.1, 0.2)}),
                            objective=("val/error", "min"), trials=1, max_train_steps=3, storage=url,
                            train=f"{FAULTY}:slow_steps")
    gone = worker_id_for(2**22 + 12345)  # no such process on this host
    record = study.storage.claim_trial(gone, study.id)
    (tmp_path / "ckpt").mkdir()
    note = fault_notes.reserve(tmp_path / "ckpt", study.storage.store_id, gone)
    assert note.write(record.id, "infrastructure fault, retried: database or disk is full")
    rerun = subprocess.run([sys.executable, "-m", "tunebook", "worker", "--storage", url, "--checkpoint-dir",
                            str(tmp_path / "ckpt")], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, "TB_STEP_DELAY": "0"}, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    (trial,) = study.trials()
    assert trial.state == "completed" and trial.lost_workers == 0 and trial.attempts == 2, trial
    assert not (tmp_path / "ckpt" / fault_notes.FOLDER).exists()


@pytest.mark.parametrize("workers", ["0", "1"])
def test_a_training_function_that_raises_eio_every_time_is_bounded_with_one_line(tmp_path, workers):
    """Before: workers were cycled for minutes, each printing multiprocessing's raw traceback."""
    (tmp_path / "study.yaml").write_text(spec("eio_every_time", trials=1, steps=5))
    url = f"sqlite:///{tmp_path}/eio.db"
    proc = start_run(tmp_path, url, workers)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 3, (out[-2000:], err[-3000:])
    line = one_error_line(err)
    assert "Input/output error" in line and "gave up after" in line, line
    assert "Process tunebook-worker" not in err  # no raw multiprocessing traceback
    (trial,) = tb.load_study("infra", storage=url).trials()
    assert trial.state == "pending" and trial.lost_workers == 0, trial
    assert trial.error.startswith("infrastructure fault, retried:"), trial.error


def test_a_sigint_while_backing_off_still_stops_at_once(tmp_path):
    (tmp_path / "study.yaml").write_text(spec("eio_every_time", trials=1, steps=5))
    url = f"sqlite:///{tmp_path}/eio.db"
    proc = start_run(tmp_path, url, "0")
    def retried() -> bool:
        try:
            return tb.load_study("infra", storage=url).trials()[0].error is not None
        except tb.TunebookError:
            return False

    wait_for(retried)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, (out[-2000:], err[-3000:])


@pytest.mark.parametrize("value", ["soon", "0", "nan", "-5"])
def test_a_bad_max_backoff_is_one_line_and_exit_2_before_any_trial_runs(tmp_path, value):
    (tmp_path / "study.yaml").write_text(spec("slow_steps", steps=3))
    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    proc = start_run(tmp_path, url, "1", TUNEBOOK_MAX_BACKOFF=value)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, (out, err)
    line = one_error_line(err)
    assert "TUNEBOOK_MAX_BACKOFF" in line and "0.5 or more" in line, line
    assert tb.load_study("infra", storage=url).counts()["completed"] == 0


def test_the_backoff_doubles_from_half_a_second_up_to_its_cap(monkeypatch):
    from tunebook.execution import loop

    assert [loop.backoff(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    monkeypatch.setenv("TUNEBOOK_MAX_BACKOFF", "120")
    assert [loop.backoff(n, loop.max_backoff()) for n in range(6, 10)] == [16, 32, 64, 120]
    monkeypatch.delenv("TUNEBOOK_MAX_BACKOFF")
    assert loop.max_backoff() == loop.MAX_BACKOFF == 30

