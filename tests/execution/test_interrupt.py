"""Real processes: Ctrl-C a `tunebook run`, run it again, and no trial runs twice.

The tests wait by polling the store (bounded by a generous deadline), never
for a fixed time; the interrupted run's steps are slow enough that a loaded
machine cannot finish the study before the interrupt lands.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import tunebook as tb
from conftest import ROOT

WORKLOADS = ROOT / "tests" / "_workloads.py"
STEPS = 30

SPEC = f"""\
study: resumable
train: {WORKLOADS}:resumable
objective: {{metric: val/error, mode: min}}
trials: 6
max_train_steps: {STEPS}
search_space:
  nuisance: {{lr: {{min: 0.1, max: 0.9}}}}
"""

pytestmark = pytest.mark.slow


def start_run(tmp_path: Path, *extra: str, delay: float = 0.05) -> subprocess.Popen:
    env = {**os.environ, "TB_TEST_LOG": str(tmp_path / "events.log"), "TB_TEST_DELAY": str(delay)}
    return subprocess.Popen(
        [sys.executable, "-m", "tunebook", "run", "study.yaml", "--quiet", *extra],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for(predicate, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


def events(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "events.log"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def assert_each_trial_ran_once(tmp_path: Path, study: tb.Study) -> None:
    ends = Counter(int(e[1]) for e in events(tmp_path) if e[0] == "end")
    assert ends == Counter(range(6)), ends  # every trial finished exactly once
    for t in study.trials():
        assert t.state == "completed"
        steps = [s for s, _ in study.metrics(t)["val/error"]]
        assert steps == list(range(1, STEPS + 1)), (t.number, steps)


def test_sigint_then_rerun_completes_without_running_a_trial_twice(tmp_path):
    (tmp_path / "study.yaml").write_text(SPEC)
    url = f"sqlite:///{tmp_path}/tunebook.db"
    proc = start_run(tmp_path, "--workers", "2", delay=0.5)  # 15 s a trial: still running when Ctrl-C lands

    def running_with_a_checkpoint() -> bool:
        if not (tmp_path / "tunebook.db").exists():
            return False
        try:
            study = tb.load_study("resumable", storage=url)
        except tb.SpecError:
            return False
        return any(study.storage.get_checkpoints(t.id) for t in study.trials(["running"]))

    # interrupt while a trial is under way and has checkpointed
    wait_for(running_with_a_checkpoint)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, (out, err)
    assert "run the same command again to resume" in out
    study = tb.load_study("resumable", storage=url)
    counts = study.counts()
    assert counts["running"] == 0, counts  # nothing left claimed by a dead worker
    assert counts["pending"] > 0, counts
    interrupted = [t for t in study.trials() if t.state == "pending" and t.attempts > 0]
    assert interrupted, "a trial was running when Ctrl-C came"
    # where each interrupted trial must resume: after its latest checkpoint (step 1 if it had none yet)
    expected_start = {t.number: max((c.step for c in study.storage.get_checkpoints(t.id)), default=0) + 1
                      for t in interrupted}
    assert max(expected_start.values()) > 1, "at least one interrupted trial had checkpointed"
    # (a trial interrupted before its training function logged its start has no start line yet)
    started_before = {t.number: [int(e[2]) for e in events(tmp_path) if e[0] == "start" and int(e[1]) == t.number]
                      for t in interrupted}

    again = start_run(tmp_path, "--workers", "2", delay=0.0)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, (out, err)
    study = tb.load_study("resumable", storage=url)
    assert_each_trial_ran_once(tmp_path, study)
    # the interrupted trials resumed from their checkpoints, not from step 1
    starts = [e for e in events(tmp_path) if e[0] == "start"]
    for t in interrupted:
        resumed = [int(e[2]) for e in starts if int(e[1]) == t.number]
        assert resumed == started_before[t.number] + [expected_start[t.number]], (t.number, resumed, expected_start)
        assert started_before[t.number] in ([], [1])


def test_two_runs_on_one_store_share_the_trials(tmp_path):
    (tmp_path / "study.yaml").write_text(SPEC)
    first = start_run(tmp_path, "--workers", "1")
    second = start_run(tmp_path, "--workers", "1")
    for proc in (first, second):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, (out, err)
    study = tb.load_study("resumable", storage=f"sqlite:///{tmp_path}/tunebook.db")
    assert_each_trial_ran_once(tmp_path, study)
    starts = Counter(int(e[1]) for e in events(tmp_path) if e[0] == "start")
    assert starts == Counter(range(6)), starts  # nobody started a trial the other had


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _running_worker_pid(url: str) -> int | None:
    try:
        study = tb.load_study("resumable", storage=url)
    except tb.SpecError:  # not created yet
        return None
    running = [t for t in study.trials() if t.state == "running" and t.worker_id]
    return int(running[0].worker_id.rsplit(":", 1)[1]) if running else None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_or_killed_run_leaves_no_worker_claiming_trials(tmp_path, sig):
    """Before: SIGTERM to `tunebook run` killed the parent alone; its worker went on training and claimed
    the next trial. Now SIGTERM stops the run as Ctrl-C does, and a worker whose parent died (SIGKILL)
    puts its trial back and exits."""
    (tmp_path / "study.yaml").write_text(SPEC)
    url = f"sqlite:///{tmp_path}/tunebook.db"
    run = start_run(tmp_path, "--workers", "1", delay=0.5)
    wait_for(lambda: (tmp_path / "tunebook.db").exists() and _running_worker_pid(url) is not None)
    worker = _running_worker_pid(url)
    run.send_signal(sig)
    out, err = run.communicate(timeout=300)
    if sig == signal.SIGTERM:
        assert run.returncode == 130, (out, err)
        assert "interrupted: running trials went back to pending" in out + err
    wait_for(lambda: not _alive(worker), timeout=120)  # the worker is gone too
    study = tb.load_study("resumable", storage=url)
    trials = study.trials()
    assert not [t for t in trials if t.state == "running"], trials  # put back, not left running
    assert all(t.lost_workers == 0 for t in trials), trials  # stopped, not lost
    assert study.counts()["completed"] == 0  # nobody went on claiming trials
