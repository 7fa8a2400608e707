"""Multi-process trials (--nproc-per-trial): real rank processes on gloo, a real DDP model on the digits data.

The training functions live in tests/_ddp.py (the rank processes import them);
each rank records what it saw under tmp_path.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tunebook as tb
from conftest import run_cli
from tunebook.checkpoints import atomic_save, checkpoint_dir
from tunebook.errors import ClaimLost, SpecError, TrialInfeasible
from tunebook.execution.multiproc import (
    RankEnd,
    RankStopped,
    ReplicaTrial,
    Rendezvous,
    StopFlag,
    check_nproc,
    decide,
    lost_process,
    rank_environment,
    read_end,
)
from tunebook.storage import open_storage
from tunebook.storage.base import CheckpointRecord

HERE = Path(__file__).resolve().parents[1]  # tests/, where the helpers live
STEPS = 20


def ranks_log(folder: Path) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for path in folder.glob("rank-*.jsonl"):
        out[int(path.stem.split("-")[1])] = [json.loads(line) for line in path.read_text().splitlines()]
    return out


def writers_of(folder: Path) -> set[str]:
    """The ranks that opened a file for writing under the checkpoint folder (tests/_ddp.py's audit hook)."""
    return {line.split()[0] for path in folder.glob("writes-*.txt") for line in path.read_text().splitlines()}


def one(records: list[dict], kind: str) -> dict:
    (hit,) = [r for r in records if r["kind"] == kind]
    return hit


def two_rank_trial(url: str, name: str, train, checkpoint_dir: Path):
    """One 5-step trial of ``train`` run on two ranks (``workers=0``); its stored record."""
    space = tb.SearchSpace(scientific={"lr": tb.Choice([0.1])})
    study = tb.create_study(name, space=space, objective=("val/error", "min"), trials=1, max_train_steps=5, storage=url)
    tb.run(study, train, workers=0, nproc_per_trial=2, progress=False, checkpoint_dir=checkpoint_dir)
    (trial,) = study.trials()
    return study, trial


def ddp_study(url: str, name: str, **kwargs):
    space = tb.SearchSpace(scientific={"learning_rate": tb.Choice([0.1])})
    return tb.create_study(name, space=space, objective=("val/error", "min"), trials=1, max_train_steps=STEPS,
                           storage=url, **kwargs)


@pytest.fixture
def ddp_env(tmp_path, monkeypatch):
    """Where the ranks record what they saw, and the checkpoint folder they are watched in."""
    log, ckpt = tmp_path / "ranks", tmp_path / "ckpt"
    log.mkdir()
    monkeypatch.setenv("TB_DDP_LOG", str(log))
    monkeypatch.setenv("TB_DDP_CKPT", str(ckpt))
    return log, ckpt


# --- real DDP runs ------------------------------------------------------------------------------


@pytest.mark.slow
def test_ddp_ranks_hold_the_same_trial_stay_identical_and_only_rank_zero_writes(sqlite_url, ddp_env, monkeypatch):
    import _ddp

    log, ckpt = ddp_env
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the worker's share: one thread per rank
    study = ddp_study(sqlite_url, "ddp")
    result = tb.run(study, _ddp.ddp_digits, workers=1, nproc_per_trial=2, progress=False, checkpoint_dir=ckpt)
    (trial,) = study.trials()
    assert result.finished and trial.state == "completed", trial.error
    ranks = ranks_log(log)
    assert sorted(ranks) == [0, 1]
    starts = {r: one(ranks[r], "start") for r in ranks}
    # the same trial on both ranks: number, params, seed, attempt, budget
    for key in ("number", "params", "seed", "attempt", "max_train_steps"):
        assert starts[0][key] == starts[1][key], key
    assert starts[0]["params"] == {"learning_rate": 0.1} and starts[0]["seed"] == trial.seed
    # torchrun's environment: ranks, world size, one rendezvous; CPU threads divided among the ranks
    for r, start in starts.items():
        env = start["env"]
        assert (env["RANK"], env["LOCAL_RANK"], env["WORLD_SIZE"], env["LOCAL_WORLD_SIZE"]) == (str(r), str(r), "2", "2")
        assert env["MASTER_ADDR"] == "127.0.0.1" and env["TORCHELASTIC_RUN_ID"]
        assert start["threads"] == 1 and env["OMP_NUM_THREADS"] == "1"
    assert starts[0]["env"]["MASTER_PORT"] == starts[1]["env"]["MASTER_PORT"]
    assert starts[0]["pid"] != starts[1]["pid"]
    # each rank trained on its own half of each batch, yet DDP's averaged gradients kept the replicas identical
    first = {r: one(ranks[r], "first")["loss"] for r in ranks}
    assert first[0] != first[1]
    ends = {r: one(ranks[r], "end")["checksum"] for r in ranks}
    assert ends[0] == ends[1] != one(ranks[0], "resume")["checksum"]
    # only rank 0 wrote: each metric point stored once, checkpoints written by one process
    curves = study.metrics(trial)
    assert [s for s, _ in curves["train/loss"]] == list(range(1, STEPS + 1))
    assert [s for s, _ in curves["val/error"]] == [10, 20]
    assert all(math.isfinite(v) for _, v in curves["train/loss"])
    assert writers_of(log) == {"0"}
    kept = study.storage.get_checkpoints(trial.id)
    assert [c.step for c in kept][-1] == STEPS and all(Path(c.path).exists() for c in kept)
    assert trial.value == min(v for _, v in curves["val/error"])


@pytest.mark.slow
def test_a_killed_rank_requeues_the_trial_and_a_second_worker_resumes_it_from_its_checkpoint(tmp_path, ddp_env):
    log, ckpt = ddp_env
    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    spec = tmp_path / "study.yaml"
    spec.write_text(
        "study: ddp-kill\n"
        f"train: {HERE / '_ddp.py'}:ddp_digits\n"
        "objective: {metric: val/error, mode: min}\n"
        f"trials: 1\nmax_train_steps: {STEPS}\n"
        "search_space:\n  scientific:\n    learning_rate: {choice: [0.1]}\n"
    )
    assert run_cli("run", str(spec), "--storage", url, "--create-only").returncode == 0
    worker = ("worker", "--storage", url, "--nproc-per-trial", "2", "--max-trials", "1", "--checkpoint-dir", str(ckpt))
    env = {"OMP_NUM_THREADS": "2", "TB_DDP_KILL_STEP": "15", "TB_DDP_KILL_RANK": "1"}
    first = run_cli(*worker, env=env)
    assert first.returncode == 0, first.stderr
    assert "rank 1 killed by SIGKILL" in first.stdout + first.stderr
    study = tb.load_study("ddp-kill", open_storage(url))
    (trial,) = study.trials()
    assert trial.state == "pending" and trial.attempts == 1
    assert study.storage.get_trial(trial.id).lost_workers == 1  # re-queued like a dead worker's
    assert max(c.step for c in study.storage.get_checkpoints(trial.id)) == 10

    second = run_cli(*worker, env=env)
    assert second.returncode == 0, second.stderr
    (trial,) = study.trials()
    assert trial.state == "completed" and trial.attempts == 2, trial.error
    ranks = ranks_log(log)
    assert [r["step"] for r in ranks[1] if r["kind"] == "killing"] == [15]
    resumes = {r: [x for x in ranks[r] if x["kind"] == "resume"] for r in ranks}
    for r in (0, 1):  # the second attempt started from the step-10 checkpoint on both ranks
        assert [x["step"] for x in resumes[r]] == [0, 10]
    assert resumes[0][1]["checksum"] == resumes[1][1]["checksum"]
    ends = {r: one(ranks[r], "end")["checksum"] for r in ranks}
    assert ends[0] == ends[1]
    curves = study.metrics(trial)
    assert [s for s, _ in curves["train/loss"]] == list(range(1, STEPS + 1))  # each step once, across attempts
    assert [s for s, _ in curves["val/error"]] == [10, 20]
    assert writers_of(log) == {"0"}


@pytest.mark.slow
def test_a_rank_raising_fails_the_trial_with_its_traceback_and_stops_the_others(sqlite_url, ddp_env, tmp_path):
    import _ddp

    log, ckpt = ddp_env
    study, trial = two_rank_trial(sqlite_url, "raises", _ddp.raises_on_rank_one, ckpt)
    assert trial.state == "failed"
    assert "rank 1 of 2 raised" in trial.error and "ValueError: a bug on rank 1" in trial.error
    assert "_ddp.py" in trial.error  # the rank's own traceback
    assert study.storage.get_trial(trial.id).lost_workers == 0
    # rank 0 would have logged for ~100 s: it was stopped, its points (up to then) written once each
    steps = [s for s, _ in study.metrics(trial)["val/error"]]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) < 9_999


@pytest.mark.slow
def test_infeasible_on_rank_zero_stops_every_rank(sqlite_url, ddp_env):
    import _ddp

    log, ckpt = ddp_env
    study, trial = two_rank_trial(sqlite_url, "nan", _ddp.nan_on_rank_zero, ckpt)
    assert trial.state == "infeasible" and "val/error" in trial.infeasible_reason, trial.error
    ranks = ranks_log(log)
    stopped = {r: one(ranks[r], "stopped") for r in ranks}
    assert stopped[1]["should_stop"] and stopped[1]["reason"] == trial.infeasible_reason  # rank 1 saw rank 0's flag
    # rank 0 logged its NaN at step 3; rank 1 may have started late on a busy machine (any step), but it stopped
    assert stopped[0]["step"] >= 3 and stopped[1]["step"] >= 1
    assert writers_of(log) == set()


# --- the parts, without processes --------------------------------------------------------------------


def end(rank: int, status: str, t: float = 0.0) -> RankEnd:
    return RankEnd(rank, status, reason=f"{status} on {rank}", time=t)


@pytest.mark.parametrize("ends, expected", [
    ({}, None),
    ({1: end(1, "ok")}, None),  # a replica that returned waits for rank 0
    ({1: end(1, "stopped")}, None),
    ({0: end(0, "ok")}, (0, "ok")),
    ({0: end(0, "infeasible"), 1: end(1, "error", 2.0)}, (1, "error")),  # a rank that raised wins
    ({0: end(0, "ok"), 1: end(1, "died")}, (0, "ok")),  # rank 0 finished: a replica dying later changes nothing
    ({1: end(1, "died")}, (1, "died")),
    ({0: end(0, "error", 5.0), 1: end(1, "died")}, (1, "died")),  # rank 0's error came from its peer's death
    ({0: end(0, "error", 5.0), 1: end(1, "error", 3.0)}, (1, "error")),  # the first that raised
    ({0: end(0, "interrupted"), 1: end(1, "error", 3.0)}, (0, "interrupted")),
    ({0: end(0, "lost"), 1: end(1, "died")}, (0, "lost")),
    ({1: end(1, "oom", 1.0)}, (1, "oom")),
    ({0: end(0, "error", 1.0), 1: end(1, "infeasible", 2.0)}, (0, "error")),
])
def test_which_rank_end_decides_the_trial(ends, expected):
    verdict = decide(ends)
    assert (None if verdict is None else (verdict.rank, verdict.status)) == expected


def test_read_end_names_a_signal_or_a_silent_exit(tmp_path):
    assert read_end(tmp_path, 1, -9).reason == "rank 1 killed by SIGKILL"
    assert read_end(tmp_path, 2, 3).status == "died" and "code 3" in read_end(tmp_path, 2, 3).reason
    (tmp_path / "result-0.json").write_text(json.dumps({"status": "error", "reason": "x", "traceback": "tb", "time": 1}))
    assert read_end(tmp_path, 0, 0) == RankEnd(0, "error", "x", "tb", 1)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_nproc_per_trial_must_be_a_positive_integer(bad):
    with pytest.raises(SpecError, match="nproc_per_trial"):
        check_nproc(bad)


def test_bad_nproc_and_devices_are_refused_before_anything_runs(sqlite_url, tmp_path):
    study = ddp_study(sqlite_url, "refused")
    with pytest.raises(SpecError, match="nproc_per_trial"):
        tb.run(study, lambda t: None, nproc_per_trial=0, progress=False)
    with pytest.raises(SpecError, match="Ray executor runs one process per trial"):
        tb.run(study, lambda t: None, executor="ray", nproc_per_trial=2, progress=False)
    with pytest.raises(SpecError, match="2 device"):
        tb.run(study, lambda t: None, workers=2, devices=[0, 1], nproc_per_trial=2, progress=False)
    assert [t.state for t in study.trials()] == ["pending"]
    bad = run_cli("worker", "--storage", sqlite_url, "--nproc-per-trial", "0")
    assert bad.returncode == 2 and "--nproc-per-trial" in bad.stderr
    spec = tmp_path / "study.yaml"
    spec.write_text("study: cli-refused\ntrain: x.py:train\nobjective: {metric: val/error, mode: min}\ntrials: 1\n"
                    "max_train_steps: 5\nsearch_space:\n  scientific:\n    lr: {choice: [0.1]}\n")
    for args, field in ((("--executor", "ray"), "--nproc-per-trial"), (("--devices", "0,1,2"), "--devices")):
        bad = run_cli("run", str(spec), "--storage", sqlite_url, "--nproc-per-trial", "2", *args)
        assert bad.returncode == 2 and field in bad.stderr, bad.stderr
    assert [s.name for s in open_storage(sqlite_url).list_studies()] == ["refused"]  # nothing stored


def test_the_rank_environment_is_torchruns(monkeypatch):
    rendezvous = Rendezvous(2)
    try:
        env = rank_environment(1, 2, rendezvous, "run-1", 3)
        assert env["RANK"] == env["LOCAL_RANK"] == env["ROLE_RANK"] == "1"
        assert env["WORLD_SIZE"] == env["LOCAL_WORLD_SIZE"] == "2" and env["GROUP_RANK"] == "0"
        assert env["MASTER_ADDR"] == "127.0.0.1" and int(env["MASTER_PORT"]) == rendezvous.port > 0
        assert env["OMP_NUM_THREADS"] == "3" and env["TORCHELASTIC_RUN_ID"] == "run-1"
        # the store is hosted here (torchrun's agent store): a rank connects to it as a client
        from datetime import timedelta

        from torch.distributed import TCPStore

        assert env["TORCHELASTIC_USE_AGENT_STORE"] == "True"
        client = TCPStore("127.0.0.1", rendezvous.port, 2, False, timedelta(seconds=10))
        client.set("k", "v")
        assert rendezvous.store.get("k") == b"v"
    finally:
        rendezvous.close()


def test_a_replica_trial_reads_rank_zeros_checkpoint_and_writes_nothing(sqlite_url, tmp_path):
    study = ddp_study(sqlite_url, "replica")
    record = study.storage.claim_trial("w")
    folder = checkpoint_dir(tmp_path / "ckpt", study.storage.store_id, "replica", 0)  # where rank 0 writes
    folder.mkdir(parents=True)
    path = folder / "step-000000010.ckpt"
    atomic_save({"w": 3}, path)
    kept = [CheckpointRecord(record.id, 10, str(path), 0.5)]
    flag = StopFlag(tmp_path / "stop", poll=0.0)  # look at every call (by default: every 50 ms)
    trial = ReplicaTrial(study, record, tmp_path / "ckpt", kept, flag, rank=1, world_size=2)
    assert (trial.params, trial.seed, trial.number, trial.rank) == (record.params, record.seed, record.number, 1)
    path.unlink()  # rank 0 wrote a newer checkpoint and dropped this one: the replica still resumes from it
    restored = trial.restore()
    assert (restored.step, restored.state) == (10, {"w": 3})
    trial.log(11, loss=1.0)
    assert trial.checkpoint(20, {"w": 4}) == str(folder / "step-000000020.ckpt")
    assert not any(folder.iterdir()) and not trial.should_stop
    assert study.storage.get_metrics(record.id) == []
    flag.set("infeasible", "train/loss was nan at step 12")
    assert trial.should_stop and trial.infeasible_reason == "train/loss was nan at step 12"
    with pytest.raises(TrialInfeasible, match="nan at step 12"):
        trial.log(13, loss=1.0)
    other = ReplicaTrial(study, record, tmp_path / "ckpt", [], StopFlag(tmp_path / "stop2", poll=0.0), rank=1, world_size=2)
    assert other.restore() is None
    other._flag.set("stop", "the claim was lost")
    with pytest.raises(RankStopped, match="claim was lost"):
        other.flush()
    trial.close()
    other.close()
    # rank 0's own Trial writes the very file the replica named
    writer = tb.Trial(study, record, study.storage, "w", tmp_path / "ckpt")
    assert writer.checkpoint(20, {"w": 4}) == str(folder / "step-000000020.ckpt")
    writer.close()
    assert (folder / "step-000000020.ckpt").exists()


def test_a_lost_rank_requeues_then_fails_after_max_lost_workers(storage_url):
    study = ddp_study(storage_url, "lost")
    store = study.storage
    record = store.claim_trial("w")
    assert store.lose_trial(record.id, "w", lost_process("rank 1 killed by SIGKILL"), max_lost_workers=2) == "pending"
    again = store.claim_trial("w2")
    assert again.id == record.id and store.get_trial(record.id).lost_workers == 1
    with pytest.raises(ClaimLost):
        store.lose_trial(record.id, "w", lost_process("late"), max_lost_workers=2)  # not w's any more
    assert store.lose_trial(record.id, "w2", lost_process("rank 0 killed by SIGSEGV"), max_lost_workers=2) == "failed"
    failed = store.get_trial(record.id)
    assert failed.state == "failed" and failed.lost_workers == 2
    assert "rank 0 killed by SIGSEGV" in failed.error and "max_lost_workers=2" in failed.error


def test_no_worker_side_import_of_torch_until_a_multi_process_trial_runs():
    import subprocess
    import sys

    code = ("import sys, tunebook.execution.loop, tunebook.execution.local, tunebook.execution.worker; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    assert out.stdout.strip() == "False", out.stderr


# --- stopping: Ctrl-C, a worker that dies ----------------------------------------------------------


def _spec(tmp_path: Path, name: str, steps: int) -> Path:
    spec = tmp_path / "study.yaml"
    spec.write_text(
        f"study: {name}\ntrain: {HERE / '_ddp.py'}:slow_steps\n"
        "objective: {metric: val/error, mode: min}\n"
        f"trials: 1\nmax_train_steps: {steps}\n"
        "search_space:\n  scientific:\n    lr: {choice: [0.1]}\n"
    )
    return spec


def _wait_for(condition, what: str, timeout: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _latest_step(url: str, name: str) -> int:
    study = tb.load_study(name, open_storage(url))
    (trial,) = study.trials()
    points = study.metrics(trial).get("val/error", [])
    return max((s for s, _ in points), default=0)


@pytest.mark.slow
def test_ctrl_c_stops_the_ranks_and_the_trial_resumes_from_its_checkpoint(tmp_path, ddp_env):
    import signal
    import subprocess

    from conftest import TUNEBOOK

    log, ckpt = ddp_env
    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    command = [*TUNEBOOK, "run", str(_spec(tmp_path, "ctrl-c", 200)), "--storage", url, "--nproc-per-trial", "2",
               "--checkpoint-dir", str(ckpt), "--quiet"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: (log / "rank-1.jsonl").exists() and (log / "rank-0.jsonl").exists(), "the ranks")
        _wait_for(lambda: _latest_step(url, "ctrl-c") >= 12, "ten steps")
        proc.send_signal(signal.SIGINT)  # the run's process alone: it stops its worker, which stops the ranks
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-2000:]
    study = tb.load_study("ctrl-c", open_storage(url))
    (trial,) = study.trials()
    assert trial.state == "pending" and study.storage.get_trial(trial.id).lost_workers == 0
    pids = [one(ranks_log(log)[r], "start")["pid"] for r in (0, 1)]
    assert not any(_alive(pid) for pid in pids)
    saved = max(c.step for c in study.storage.get_checkpoints(trial.id))
    assert saved >= 10

    again = run_cli("run", str(_spec(tmp_path, "ctrl-c", 200)), "--storage", url, "--nproc-per-trial", "2",
                    "--checkpoint-dir", str(ckpt), "--quiet")
    assert again.returncode == 0, again.stderr[-2000:]
    (trial,) = study.trials()
    assert trial.state == "completed" and trial.attempts == 2
    for r in (0, 1):
        starts = [x["step"] for x in ranks_log(log)[r] if x["kind"] == "start"]
        assert starts[0] == 0 and starts[1] >= saved  # both ranks resumed from the same checkpoint
    assert [s for s, _ in study.metrics(trial)["val/error"]] == list(range(1, 201))


@pytest.mark.slow
def test_the_ranks_die_with_their_worker(tmp_path, ddp_env):
    import signal
    import subprocess

    from conftest import TUNEBOOK

    log, ckpt = ddp_env
    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    assert run_cli("run", str(_spec(tmp_path, "orphans", 2000)), "--storage", url, "--create-only").returncode == 0
    worker = subprocess.Popen([*TUNEBOOK, "worker", "--storage", url, "--nproc-per-trial", "2", "--checkpoint-dir",
                               str(ckpt)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: (log / "rank-1.jsonl").exists() and (log / "rank-0.jsonl").exists(), "the ranks")
        _wait_for(lambda: _latest_step(url, "orphans") >= 2, "two steps")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=60)
        pids = [one(ranks_log(log)[r], "start")["pid"] for r in (0, 1)]
        _wait_for(lambda: not any(_alive(pid) for pid in pids), "the ranks to die with their worker", timeout=60)
    finally:
        worker.kill()
        for path in log.glob("rank-*.jsonl"):  # never leave an orphan behind, even when the test fails
            for pid in {json.loads(x)["pid"] for x in path.read_text().splitlines()}:
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
    study = tb.load_study("orphans", open_storage(url))
    (trial,) = study.trials()
    assert trial.state == "running"  # stale from now on: another worker re-queues it (lost_workers + 1)
    assert _latest_step(url, "orphans") < 2000


@pytest.mark.slow
def test_exporters_are_fed_by_rank_zero_alone(sqlite_url, ddp_env):
    import _ddp

    log, ckpt = ddp_env
    study = tb.create_study("exported", space=tb.SearchSpace(scientific={"lr": tb.Choice([0.1])}),
                            objective=("val/error", "min"), trials=1, max_train_steps=10, storage=sqlite_url)
    tb.run(study, _ddp.slow_steps, workers=0, nproc_per_trial=2, progress=False, checkpoint_dir=ckpt,
           writers=[_ddp.file_writer])
    (trial,) = study.trials()
    assert trial.state == "completed", trial.error
    (exported,) = list(log.glob("exporter-*.jsonl"))  # one process made and fed an exporter
    assert exported.stem == f"exporter-{one(ranks_log(log)[0], 'start')['pid']}"  # rank 0
    calls = [json.loads(x) for x in exported.read_text().splitlines()]
    assert [c["kind"] for c in calls if c["kind"] != "scalars"] == ["hparams", "summary", "close"]
    assert [c["step"] for c in calls if c["kind"] == "scalars"] == list(range(1, 11))
    summary = next(c["summary"] for c in calls if c["kind"] == "summary")
    assert (summary["state"], summary["value"], summary["best_step"]) == ("completed", trial.value, trial.best_step)


@pytest.mark.slow
def test_devices_are_grouped_per_worker_and_every_rank_of_a_trial_sees_its_group(sqlite_url, ddp_env, monkeypatch):
    import _ddp

    log, ckpt = ddp_env
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    study = tb.create_study("devices", space=tb.SearchSpace(scientific={"lr": tb.Choice([0.1, 0.2])}),
                            objective=("val/error", "min"), trials=2, max_train_steps=1, storage=sqlite_url)
    tb.run(study, _ddp.records_devices, workers=2, devices=["a", "b", "c", "d"], nproc_per_trial=2, progress=False,
           checkpoint_dir=ckpt)
    assert [t.state for t in study.trials()] == ["completed", "completed"]
    seen = [x for r in (0, 1) for x in ranks_log(log)[r] if x["kind"] == "devices"]
    by_trial: dict[int, set] = {}
    for x in seen:
        by_trial.setdefault(x["number"], set()).add(x["visible"])
        assert x["threads"] == str(max(1, (os.cpu_count() or 1) // 2 // 2))  # the worker's share, halved
    assert all(len(v) == 1 for v in by_trial.values())  # the ranks of a trial see the same devices
    assert set().union(*by_trial.values()) <= {"a,b", "c,d"}  # a group of two per worker, by LOCAL_RANK
    assert sorted(x["local_rank"] for x in seen) == [0, 0, 1, 1]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_process_ends_with_its_parent_by_the_signal_it_asked_for(tmp_path, signum):
    """end_with_parent: a rank (SIGKILL) or a local worker (SIGTERM, its handler puts the trial back) never
    outlives the process that started it, even when that one is SIGKILLed."""
    mark = tmp_path / "stopped"
    child = (f"import os, signal, sys, time\n"
             f"from tunebook.execution.loop import end_with_parent\n"
             f"signal.signal(signal.SIGTERM, lambda *a: (open({str(mark)!r}, 'w').close(), sys.exit(143)))\n"
             f"end_with_parent(os.getppid(), {int(signum)})\n"
             f"print(os.getpid(), flush=True)\n"
             f"time.sleep(600)\n")
    parent = (f"import subprocess, sys, time\n"
              f"subprocess.Popen([sys.executable, '-c', {child!r}])\n"
              f"time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    pid = int(proc.stdout.readline())
    proc.kill()
    proc.wait(timeout=60)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:  # gone, or a zombie nobody reaps yet (in a container PID 1 may not)
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the child outlived its parent")
    assert mark.exists() == (signum == signal.SIGTERM)  # SIGTERM ran the child's handler; SIGKILL cannot
