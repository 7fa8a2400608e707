"""The metric path of a trial: store, asynchronous and fan-out writers, the heartbeat, bad values, JAX."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import tunebook as tb
from tunebook.errors import ClaimLost, SpecError, TrialInfeasible
from tunebook.trial import Trial
from tunebook.writers import AsyncWriter, FanOutWriter, MetricWriter, StoreWriter, to_floats

SPACE = tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1.0, "log")})
ROOT = Path(__file__).resolve().parents[2]  # the repository


def make_study(url, trials=1, steps=20, **kw):
    return tb.create_study("w", space=kw.pop("space", SPACE), objective=("val/error", "min"), trials=trials,
                           max_train_steps=steps, storage=url, **kw)


def claimed(s, tmp_path, **kw) -> Trial:
    record = s.storage.claim_trial("w", s.id)
    return Trial(s, record, s.storage, "w", tmp_path / "ckpt", **{"flush_interval": 60.0, **kw})


def points(s, trial_id, name=None):
    return [(r.step, r.name, r.value) for r in s.storage.get_metrics(trial_id, None if name is None else [name])]


class Recorder(MetricWriter):
    """Remembers every call, its arguments and the thread it came from."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, object, int]] = []
        self.fail_on = fail_on

    def _record(self, method, *args):
        self.calls.append((method, args, threading.get_ident()))
        if method == self.fail_on:
            raise RuntimeError(f"{method} failed")

    def write_hparams(self, hparams):
        self._record("write_hparams", dict(hparams))

    def write_scalars(self, step, scalars):
        self._record("write_scalars", step, dict(scalars))

    def write_summary(self, summary):
        self._record("write_summary", dict(summary))

    def flush(self):
        self._record("flush")

    def close(self):
        self._record("close")

    def scalars(self):
        return [args for method, args, _ in self.calls if method == "write_scalars"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the asynchronous writer, driven by a fake clock -------------------------------------------------


def test_async_writer_flushes_on_its_clock_and_early_when_the_buffer_is_large():
    clock, inner = FakeClock(), Recorder()
    writer = AsyncWriter(inner, flush_interval=1.0, max_pending=4, clock=clock, start=False)
    writer.append(1, {"loss": torch.tensor(0.5)})
    writer.append(2, {"loss": np.float32(0.25)})
    assert not writer.maybe_flush() and inner.calls == []  # no time has passed: nothing is written
    clock.now += 1.0
    assert writer.maybe_flush()
    assert inner.scalars() == [(1, {"loss": 0.5}), (2, {"loss": 0.25})]
    assert [m for m, _, _ in inner.calls][-1] == "flush"  # one flush per batch
    assert not writer.maybe_flush()  # the clock has not moved since
    for step in range(3, 7):  # 4 pending calls: the buffer is large, flush without waiting
        writer.append(step, {"loss": float(step)})
    assert writer.maybe_flush()
    assert [s for s, _ in inner.scalars()] == [1, 2, 3, 4, 5, 6]
    assert all(type(v) is float for _, scalars in inner.scalars() for v in scalars.values())


def test_async_writer_period_leaves_room_for_the_write_so_points_are_durable_within_the_interval():
    clock = FakeClock()

    class SlowStore(Recorder):
        def flush(self):
            clock.now += 0.3  # the write takes 0.3 s

    writer = AsyncWriter(SlowStore(), flush_interval=1.0, clock=clock, start=False)
    writer.append(1, {"loss": 1.0})
    clock.now += 1.0
    assert writer.maybe_flush()
    assert writer.period == pytest.approx(0.6)  # 0.9 s less the 0.3 s write
    clock.now += 0.35  # 0.65 s after the last flush started
    writer.append(2, {"loss": 1.0})
    assert writer.maybe_flush()


def test_async_writer_checks_values_and_rules_in_its_thread():
    clock, inner = FakeClock(), Recorder()
    stops = []
    writer = AsyncWriter(inner, rules={"loss": {"above": 10}}, clock=clock, on_stop=stops.append, start=False)
    writer.append(1, {"loss": 1.0, "acc": "high", "norm": 2.0})
    writer.append(2, {"loss": 11.0})
    writer.append(3, {"loss": float("nan")})
    writer.flush()
    assert inner.scalars() == [(1, {"loss": 1.0, "norm": 2.0}), (2, {"loss": 11.0}), (3, {"loss": pytest.approx(math.nan, nan_ok=True)})]
    assert str(writer.failure) == "metric 'acc' at step 1: 'high' is not a number; log a Python or NumPy number, or a 0-d tensor/array"
    assert writer.infeasible == "loss = 11 above 10 (infeasible_if) at step 2"
    assert isinstance(stops[0], SpecError) and isinstance(stops[1], TrialInfeasible)


def test_to_floats_rejects_only_the_bad_values():
    out = to_floats([1, np.int64(2), torch.tensor(3.0), torch.ones(2), "x", None, np.array(4.5), True])
    assert out[:3] == [1.0, 2.0, 3.0] and out[6:] == [4.5, 1.0]
    assert [type(v).__name__ for v in out[3:6]] == ["BadValue"] * 3
    assert out[3].problem == "log a scalar, got a tensor of shape (2,)"


def test_the_real_writer_thread_writes_and_close_drains():
    inner = Recorder()
    writer = AsyncWriter(inner, flush_interval=3600.0)
    writer.append(1, {"loss": torch.tensor(2.0)})
    writer.flush()  # asks the writer thread and waits for it
    writer.append(2, {"loss": 3.0})
    writer.close()
    assert inner.scalars() == [(1, {"loss": 2.0}), (2, {"loss": 3.0})]
    assert {ident for _, _, ident in inner.calls} != {threading.get_ident()}


# --- fan-out ------------------------------------------------------------------------------------------


def test_fan_out_reaches_every_writer_even_when_one_fails():
    first, broken, last = Recorder(), Recorder(fail_on="write_scalars"), Recorder()
    fan = FanOutWriter([first, broken, last])
    fan.write_hparams({"lr": 0.1})
    with pytest.raises(RuntimeError, match="write_scalars failed"):
        fan.write_scalars(3, {"loss": 0.5})
    fan.close()
    for writer in (first, broken, last):
        assert [m for m, _, _ in writer.calls] == ["write_hparams", "write_scalars", "close"]
    assert last.scalars() == [(3, {"loss": 0.5})]


# --- the store writer on SQLite and PostgreSQL ---------------------------------------------------------


def test_store_writer_writes_a_batch_and_a_repeated_step_keeps_the_last_value_once(storage_url):
    s = make_study(storage_url)
    record = s.storage.claim_trial("w", s.id)
    writer = StoreWriter(s.storage, record.id, "w")
    writer.write_scalars(1, {"val/error": 0.5, "train/loss": 1.0})
    writer.write_scalars(2, {"val/error": 0.4})
    writer.write_scalars(2, {"val/error": 0.3})  # same step and name in one batch: the last wins
    assert points(s, record.id) == []  # nothing before the flush
    writer.flush()
    assert points(s, record.id, "val/error") == [(1, "val/error", 0.5), (2, "val/error", 0.3)]
    writer.write_scalars(2, {"val/error": 0.2})  # a step already stored: replaced, not stored twice
    writer.write_scalars(3, {"val/error": 0.1, "train/loss": 0.9})
    writer.flush()
    assert points(s, record.id) == [
        (1, "train/loss", 1.0), (3, "train/loss", 0.9), (1, "val/error", 0.5), (2, "val/error", 0.2), (3, "val/error", 0.1)
    ]


def test_store_writer_of_a_resumed_attempt_drops_the_points_it_logs_again(storage_url):
    s = make_study(storage_url)
    record = s.storage.claim_trial("w", s.id)
    s.storage.write_metrics(record.id, "w", [(step, "val/error", 1.0) for step in range(1, 6)])
    writer = StoreWriter(s.storage, record.id, "w", resume=True)
    writer.write_scalars(4, {"val/error": 0.5})
    writer.flush()
    assert [(step, v) for step, _, v in points(s, record.id)] == [(1, 1.0), (2, 1.0), (3, 1.0), (4, 0.5)]


def test_store_writer_of_a_lost_claim_raises_and_keeps_its_rows(sqlite_url):
    s = make_study(sqlite_url)
    record = s.storage.claim_trial("w", s.id)
    writer = StoreWriter(s.storage, record.id, "someone-else")
    writer.write_scalars(1, {"val/error": 0.5})
    with pytest.raises(ClaimLost):
        writer.flush()
    assert points(s, record.id) == []


# --- the trial's metric path ---------------------------------------------------------------------------


def test_a_non_numeric_value_rejects_only_itself_and_fails_the_trial_with_one_line(storage_url, tmp_path):
    s = make_study(storage_url)
    trial = claimed(s, tmp_path)
    trial.log(1, **{"val/error": 0.5, "acc": "n/a", "train/loss": torch.tensor(2.0)})
    trial.log(2, **{"val/error": 0.4})
    with pytest.raises(SpecError) as raised:
        trial.flush()
    assert str(raised.value) == "metric 'acc' at step 1: 'n/a' is not a number; log a Python or NumPy number, or a 0-d tensor/array"
    assert points(s, trial.id) == [(1, "train/loss", 2.0), (1, "val/error", 0.5), (2, "val/error", 0.4)]
    assert trial.should_stop and trial.infeasible_reason is None
    assert trial.failure_reason == str(raised.value)
    with pytest.raises(SpecError, match="metric 'acc'"):
        trial.log(3, **{"val/error": 0.3})  # the training stops at its next log
    with pytest.raises(SpecError, match="metric 'acc'"):
        trial.close()


def test_a_run_with_a_non_numeric_metric_fails_once_with_its_cause(sqlite_url, tmp_path):
    s = make_study(sqlite_url)

    def train(trial):
        for step in range(1, 200):
            trial.log(step, **{"val/error": 1.0 / step, "acc": None if step == 2 else 0.5})
            time.sleep(0.005)

    tb.run(s, train, workers=0, progress=False, flush_interval=0.05, checkpoint_dir=tmp_path)
    (t,) = s.trials()
    assert t.state == "failed" and t.attempts == 1 and t.lost_workers == 0
    assert t.error.strip().splitlines()[-1].endswith("metric 'acc' at step 2: None is not a number; "
                                                     "log a Python or NumPy number, or a 0-d tensor/array")
    assert (1, "acc", 0.5) in points(s, t.id) and (2, "val/error", 0.5) in points(s, t.id)


def test_a_nan_is_infeasible_and_the_rest_of_its_batch_is_written(sqlite_url, tmp_path):
    s = make_study(sqlite_url)
    trial = claimed(s, tmp_path)
    trial.log(1, **{"val/error": 0.5, "train/loss": math.nan})
    with pytest.raises(TrialInfeasible, match="train/loss was nan at step 1"):
        trial.flush()
    assert trial.infeasible_reason == "train/loss was nan at step 1" and trial.failure_reason is None
    assert points(s, trial.id, "val/error") == [(1, "val/error", 0.5)]
    trial.close()  # infeasible is data: close does not raise


def test_a_repeated_step_is_stored_once_with_the_last_value(storage_url, tmp_path):
    s = make_study(storage_url)
    trial = claimed(s, tmp_path)
    trial.log(5, **{"val/error": 0.5})
    trial.log(5, **{"val/error": 0.4})
    trial.flush()
    trial.log(5, **{"val/error": 0.3})
    trial.log(6, **{"val/error": 0.2})
    trial.close()
    assert points(s, trial.id) == [(5, "val/error", 0.3), (6, "val/error", 0.2)]


def test_steps_must_be_integers(sqlite_url, tmp_path):
    s = make_study(sqlite_url)
    trial = claimed(s, tmp_path)
    with pytest.raises(SpecError) as raised:
        trial.log(1.7, **{"val/error": 0.5})
    assert str(raised.value) == "step: must be an integer, got 1.7; log at the integer training step"
    for bad in (2.0, True, "3", torch.tensor(1.5)):
        with pytest.raises(SpecError, match="step: must be an integer"):
            trial.log(bad, **{"val/error": 0.5})
    trial.log(np.int64(3), **{"val/error": 0.3})
    trial.log(torch.tensor(4), **{"val/error": 0.25})
    trial.close()
    assert points(s, trial.id) == [(3, "val/error", 0.3), (4, "val/error", 0.25)]


class BrokenWrites:
    """A store whose metric writes fail (e.g. a full disk) while everything else works."""

    def __init__(self, storage) -> None:
        self._storage = storage
        self.heartbeats = 0

    def write_metrics(self, *args, **kwargs):
        raise OSError("database or disk is full")

    def heartbeat(self, trial_id, worker_id):
        self._storage.heartbeat(trial_id, worker_id)
        self.heartbeats += 1

    def __getattr__(self, name):
        return getattr(self._storage, name)


def test_the_heartbeat_goes_on_despite_a_flush_error_which_stops_the_trial(sqlite_url, tmp_path):
    s = make_study(sqlite_url)
    record = s.storage.claim_trial("w", s.id)
    storage = BrokenWrites(s.storage)
    trial = Trial(s, record, storage, "w", tmp_path / "ckpt", flush_interval=60.0, heartbeat_interval=0.01)
    trial.log(1, **{"val/error": 0.5})
    with pytest.raises(OSError, match="database or disk is full"):
        trial.flush()
    assert trial.should_stop and trial.failure_reason == "database or disk is full"
    seen = storage.heartbeats
    deadline = time.monotonic() + 60
    while storage.heartbeats < seen + 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert storage.heartbeats >= seen + 3, "the heartbeat stopped with the flush"
    before = s.storage.get_trial(record.id).heartbeat_at
    while s.storage.get_trial(record.id).heartbeat_at == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert s.storage.get_trial(record.id).heartbeat_at > before
    with pytest.raises(OSError, match="database or disk is full"):
        trial.log(2, **{"val/error": 0.4})
    with pytest.raises(OSError):
        trial.close()
    beats = storage.heartbeats
    time.sleep(0.05)
    assert storage.heartbeats == beats  # closed: the heartbeat stopped with the trial


def test_a_lost_claim_seen_by_the_heartbeat_stops_the_trial(sqlite_url, tmp_path):
    s = make_study(sqlite_url)
    record = s.storage.claim_trial("w", s.id)
    trial = Trial(s, record, s.storage, "not-the-owner", tmp_path / "ckpt", flush_interval=60.0, heartbeat_interval=0.01)
    deadline = time.monotonic() + 60
    while not trial.should_stop and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(ClaimLost):
        trial.log(1, **{"val/error": 0.5})
    with pytest.raises(ClaimLost):
        trial.close()


def test_extra_writers_get_host_floats_from_the_writer_thread(sqlite_url, tmp_path):
    s = make_study(sqlite_url)
    extra = Recorder()
    record = s.storage.claim_trial("w", s.id)
    with Trial(s, record, s.storage, "w", tmp_path / "ckpt", flush_interval=60.0, writers=[extra]) as trial:
        weight = torch.tensor(2.0, requires_grad=True)
        for step in range(1, 4):
            trial.log(step, **{"train/loss": weight * step, "val/error": np.float32(0.5), "count": step})
        trial.flush()
        trial.log(4, **{"val/error": 0.25})
    trial.close_writers({"state": "completed", "value": 0.25, "best_step": 4})
    assert [m for m, _, _ in extra.calls][0] == "write_hparams" and extra.calls[0][1] == ({"lr": trial.params["lr"]},)
    assert extra.scalars()[:3] == [(step, {"train/loss": 2.0 * step, "val/error": 0.5, "count": float(step)}) for step in (1, 2, 3)]
    assert extra.scalars()[3] == (4, {"val/error": 0.25})
    assert all(type(v) is float for _, scalars in extra.scalars() for v in scalars.values())
    main = threading.get_ident()
    assert all(ident != main for method, _, ident in extra.calls if method in ("write_hparams", "write_scalars", "flush"))
    assert [m for m, _, _ in extra.calls][-2:] == ["write_summary", "close"]
    assert points(s, trial.id, "val/error")[-1] == (4, "val/error", 0.25)  # the context manager closed the trial


def test_close_is_idempotent_and_the_context_manager_keeps_the_training_error(sqlite_url, tmp_path):
    s = make_study(sqlite_url)
    record = s.storage.claim_trial("w", s.id)
    with pytest.raises(KeyError, match="bug"):
        with Trial(s, record, s.storage, "w", tmp_path / "ckpt", flush_interval=60.0) as trial:
            trial.log(1, **{"val/error": "bad"})  # a failure the close will see...
            raise KeyError("bug")  # ...but the training's own error is the one raised
    trial.close()
    assert points(s, record.id) == []


def test_a_large_buffer_is_flushed_early(sqlite_url, tmp_path):
    s = make_study(sqlite_url)
    trial = claimed(s, tmp_path, flush_interval=3600.0, max_pending=100)
    for step in range(250):
        trial.log(step, **{"val/error": 1.0})
    deadline = time.monotonic() + 60
    while len(points(s, trial.id)) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(points(s, trial.id)) >= 200  # written long before the hour is up
    trial.close()
    assert len(points(s, trial.id)) == 250


def test_a_left_over_temporary_checkpoint_file_is_removed(sqlite_url, tmp_path):
    s = make_study(sqlite_url)
    trial = claimed(s, tmp_path)
    from tunebook.checkpoints import checkpoint_dir

    folder = checkpoint_dir(tmp_path / "ckpt", s.storage.store_id, s.name, trial.number)  # keyed by the store
    folder.mkdir(parents=True)
    (folder / ".step-000000003.ckpt.12345.tmp").write_bytes(b"")  # a writer killed mid-write
    trial.log(1, **{"val/error": 0.5})
    trial.checkpoint(1, {"x": 1})
    trial.checkpoint(2, {"x": lambda: None})  # cannot be pickled: its temporary file must go too
    with pytest.raises(Exception, match="pickle"):
        trial.restore()  # the background write's error
    trial.close()
    assert sorted(p.name for p in folder.iterdir()) == ["step-000000001.ckpt"]


# --- a real SIGKILL: at most one second of points lost ---------------------------------------------------

KILLED_WORKER = """
import sys, time
import tunebook as tb

def train(trial):
    with open(sys.argv[2], "a", buffering=1) as progress:
        for step in range(1, 10**9):
            trial.log(step, **{"val/error": 1.0 / step})
            progress.write(f"{step} {time.monotonic()}\\n")  # the training's own record of what it logged
            time.sleep(0.002)

study = tb.load_study("killed", storage=sys.argv[1])
tb.run(study, train, workers=0, progress=False, flush_interval=1.0, checkpoint_dir=sys.argv[3])
"""


@pytest.mark.slow
def test_a_sigkilled_worker_loses_at_most_one_second_of_points(sqlite_url, tmp_path):
    s = tb.create_study("killed", space=SPACE, objective=("val/error", "min"), trials=1,
                        max_train_steps=10**9, storage=sqlite_url)
    script, progress = tmp_path / "worker.py", tmp_path / "progress.txt"
    script.write_text(textwrap.dedent(KILLED_WORKER))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), sqlite_url, str(progress), str(tmp_path / "ckpt")], env=env)
    try:
        deadline = time.monotonic() + 120
        (t,) = s.trials()
        # The worst moment: once a few flushes have happened, just after one commits, wait until the
        # training has logged for 0.9 s more (by its own record), right before the next flush.
        seen, committed_at = 0, None
        while time.monotonic() < deadline and proc.poll() is None:
            stored = len(s.storage.get_metrics(t.id))
            if stored != seen:
                seen, committed_at = stored, time.monotonic()
            elif committed_at is not None and seen >= 200:
                lines = progress.read_text().splitlines()
                last = lines[-2].split() if len(lines) > 1 else None  # the last line may be half-written
                if last and float(last[1]) >= committed_at + 0.9:
                    break
            time.sleep(0.01)
        assert proc.poll() is None, "the worker ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    logged = {int(step): float(at) for step, at in (line.split() for line in progress.read_text().splitlines() if " " in line)}
    stored = [r.step for r in s.storage.get_metrics(t.id)]
    assert stored == list(range(1, len(stored) + 1))  # a prefix: nothing missing, nothing twice
    last_logged = max(logged)
    lost = [step for step in logged if step > stored[-1]]
    window = logged[last_logged] - logged[min(lost)] if lost else 0.0
    print(f"SIGKILL: {len(stored)} points stored, {len(lost)} lost, logged over {window:.3f} s")
    assert window <= 1.0, f"lost {len(lost)} points logged over {window:.2f} s"  # the flush bound


# --- JAX (on its CPU backend) ----------------------------------------------------------------------------


@pytest.fixture
def jax():
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    return pytest.importorskip("jax", reason="JAX is not installed (pip install 'tunebook[jax]')")


def test_jax_arrays_are_logged_without_touching_them_and_fetched_once_per_flush(jax, sqlite_url, tmp_path, monkeypatch):
    import jax.numpy as jnp

    s = make_study(sqlite_url)
    trial = claimed(s, tmp_path)
    array_type = type(jnp.zeros(()))
    reads: list[tuple[str, int]] = []
    for name in ("__float__", "item", "block_until_ready", "__array__", "tolist"):
        original = getattr(array_type, name)

        def spy(self, *args, _name=name, _original=original, **kwargs):
            reads.append((_name, threading.get_ident()))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(array_type, name, spy)
    device_gets: list[int] = []
    real_device_get = jax.device_get

    def counting_device_get(tree):
        device_gets.append(threading.get_ident())
        return real_device_get(tree)

    monkeypatch.setattr(jax, "device_get", counting_device_get)
    w = jnp.float32(2.0)
    for step in range(1, 51):
        loss = w * step
        trial.log(step, **{"train/loss": loss, "val/error": loss / 4, "lr": 0.1})
    main = threading.get_ident()
    assert [r for r in reads if r[1] == main] == [] and device_gets == []  # log touched no array
    trial.flush()
    assert len(device_gets) == 1 and device_gets[0] != main  # one transfer per flush, in the writer thread
    assert [r for r in reads if r[1] == main] == []
    trial.log(51, **{"val/error": jnp.ones((2,))})  # not a scalar: refused with its name, in the writer thread
    with pytest.raises(SpecError, match=r"metric 'val/error' at step 51: log a scalar, got a tensor of shape \(2,\)"):
        trial.flush()
    assert [(step, v) for step, _, v in points(s, trial.id, "train/loss")][:3] == [(1, 2.0), (2, 4.0), (3, 6.0)]
    assert len(points(s, trial.id, "val/error")) == 50
    with pytest.raises(SpecError):
        trial.close()


def test_a_jax_tracer_is_refused_with_one_line(jax, sqlite_url, tmp_path):
    s = make_study(sqlite_url)
    trial = claimed(s, tmp_path)

    @jax.jit
    def step(x):
        trial.log(1, **{"train/loss": x})  # logging inside jit: the value is a tracer
        return x * 2

    step(jax.numpy.float32(1.0))
    with pytest.raises(SpecError, match=r"metric 'train/loss' at step 1: a JAX tracer \(logged inside jax.jit\)"):
        trial.flush()
    with pytest.raises(SpecError):
        trial.close()


def test_the_flax_optax_example_runs_a_study(jax, sqlite_url, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_jax", ROOT / "examples" / "train_jax.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    s = tb.create_study("jax", space=example.space, objective=("val/error", "min"), trials=2, max_train_steps=30,
                        storage=sqlite_url)
    result = tb.run(s, example.train, workers=0, progress=False, checkpoint_dir=tmp_path)
    assert result.counts["completed"] == 2
    for t in s.trials():
        curves = s.metrics(t)
        assert [step for step, _ in curves["val/error"]] == [10, 20, 30]
        assert len(curves["train/loss"]) == 30 and all(math.isfinite(v) for _, v in curves["train/loss"])
        assert t.value == min(v for _, v in curves["val/error"])


def test_a_training_thread_far_ahead_of_the_writer_asks_for_a_flush_once():
    """While the buffer stays large, each log call would ask again: only the first sets the event
    (Event.set takes a lock; the hot path must not pay it at every call)."""
    from tunebook.writers import WriterThread

    thread = WriterThread("t", idle=3600.0)
    sets: list[int] = []
    real_set = thread._wake.set
    try:
        thread._wake.set = lambda: (sets.append(1), real_set())  # type: ignore[method-assign]
        thread._wake.clear()
        for _ in range(1000):  # the writer is busy elsewhere: nobody clears the event
            thread.wake()
        assert len(sets) == 1 and thread._wake.is_set()
    finally:
        thread._wake.set = real_set  # type: ignore[method-assign]
        thread.close()
