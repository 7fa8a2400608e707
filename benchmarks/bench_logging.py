"""Cost of `trial.log` (3 metrics) per call and per value against Optuna's `trial.report` and a bare list append.

tunebook: 100,000 calls of ``trial.log(step, a=..., b=..., c=...)`` with 0-d
PyTorch tensors (as a training loop logs them), then the final flush, so every
value is in the database when the clock stops. Writes happen in the
background every second (durable within 1 s).

Optuna: ``trial.report(value, step)`` stores one value per call, so one
tunebook call (3 values) is compared with 3 Optuna calls (3 values, at 3
successive steps: Optuna keeps one intermediate value per step). Compared per
value and per tunebook call, on three storages: an ``RDBStorage`` over SQLite
with tunebook's journal settings (WAL, ``synchronous=NORMAL``: the fair one),
the same with SQLite's defaults (rollback journal, an fsync per commit: what a
user gets by default), and ``InMemoryStorage`` (no database at all). Optuna
commits one transaction per call, so it runs fewer calls (--optuna-calls).
The floor: a bare ``list.append`` of the call (below), per call and per value.

Hot path: CPU time of the training thread only (``time.thread_time``) per
``trial.log`` call with 3 floats and with 3 0-d tensors, against the floor of a
bare ``list.append`` of the same call (``buf.append(step); buf.append(m)``), with the same
values held as long (tensors held in any Python buffer are traversed by the garbage collector: the
floor pays that too), and against the float floor.
Use enough calls (200,000) that the garbage collector's full collections, which
a large buffer of tracked objects (tensors) triggers, are amortized in the figure.
Two regimes: the writer thread flushing alongside (every second, or early when
the buffer is large: here it converts and writes all the time, as the loop logs
far faster than any training), and the writer idle (the call alone).

Run: python benchmarks/bench_logging.py [--calls 100000] [--optuna-calls 3000] [--hot-calls 200000]
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import tempfile
import time
from pathlib import Path


def bench_tunebook(folder: Path, calls: int) -> float:
    import torch

    import tunebook as tb
    from tunebook.trial import Trial

    study = tb.create_study(
        "bench", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")}),
        objective=("val/error", "min"), trials=1, max_train_steps=calls, storage=f"sqlite:///{folder}/tb.db",
    )
    record = study.storage.claim_trial("bench", study.id)
    trial = Trial(study, record, study.storage, "bench", folder / "ckpt", flush_interval=1.0)
    values = [torch.tensor(float(i % 97)) for i in range(97)]
    start = time.perf_counter()
    for step in range(calls):
        v = values[step % 97]
        trial.log(step, **{"train/loss": v, "train/accuracy": v, "grad_norm": v})
    trial._close()  # final flush: everything is stored when the clock stops
    elapsed = time.perf_counter() - start
    stored = len(study.storage.get_metrics(record.id))
    assert stored == 3 * calls, f"expected {3 * calls} rows, found {stored}"
    return elapsed / calls


def bench_hot_path(folder: Path, calls: int, kind: str, idle: bool = False) -> float:
    """CPU seconds of the training thread per ``trial.log`` call (3 floats or 3 0-d tensors).

    ``idle``: no flush during the timed loop (the writer thread sleeps), i.e. the call alone."""
    import torch

    import tunebook as tb
    from tunebook.trial import Trial

    study = tb.create_study(
        f"hot-{kind}-{idle}", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")}),
        objective=("val/error", "min"), trials=1, max_train_steps=calls, storage=f"sqlite:///{folder}/hot.db",
    )
    record = study.storage.claim_trial("bench", study.id)
    if idle:
        try:
            trial = Trial(study, record, study.storage, "bench", folder / "ckpt", flush_interval=3600.0,
                          max_pending=calls + 1)
        except TypeError:  # a version without early flushing
            trial = Trial(study, record, study.storage, "bench", folder / "ckpt", flush_interval=3600.0)
    else:
        trial = Trial(study, record, study.storage, "bench", folder / "ckpt", flush_interval=1.0)
    values = [float(i % 97) if kind == "floats" else torch.tensor(float(i % 97)) for i in range(97)]
    gc.collect()  # every figure starts from a collected heap
    start = time.thread_time()
    for step in range(calls):
        v = values[step % 97]
        trial.log(step, **{"train/loss": v, "train/accuracy": v, "grad_norm": v})
    elapsed = time.thread_time() - start
    trial.close()
    return elapsed / calls


def bench_floor(calls: int, kind: str = "floats", bounded: bool = True) -> float:
    """CPU seconds per call of the cheapest possible log: a bare list append of the call's arguments.

    ``kind``: the same values as the tunebook run it is compared with (3 floats, or 3 0-d tensors: a
    buffer holding tensors is tracked by the garbage collector, whoever holds it). ``bounded``: the
    buffer is emptied every 10,000 calls, as tunebook's early flush does; else it holds every call,
    as tunebook's buffer does with the writer idle."""
    import torch

    buf: list = []

    def log(step: int, **metrics: float) -> None:  # no tuple per call: a dict of floats is not GC-tracked
        buf.append(step)
        buf.append(metrics)

    values = [float(i % 97) if kind == "floats" else torch.tensor(float(i % 97)) for i in range(97)]
    gc.collect()  # every figure starts from a collected heap
    start = time.thread_time()
    for step in range(calls):
        v = values[step % 97]
        log(step, **{"train/loss": v, "train/accuracy": v, "grad_norm": v})
        if bounded and len(buf) == 20_000:  # bounded (10,000 calls), like a buffer that is flushed
            buf.clear()
    return (time.thread_time() - start) / calls


class _WalConnection(sqlite3.Connection):
    """An sqlite3 connection with tunebook's journal settings (WAL, synchronous=NORMAL)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA journal_mode=WAL")
        self.execute("PRAGMA synchronous=NORMAL")


def bench_optuna(folder: Path, reports: int, storage_kind: str) -> float:
    """Wall seconds per ``trial.report`` (one value) on ``storage_kind``: "wal", "default" or "memory"."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if storage_kind == "memory":
        storage = optuna.storages.InMemoryStorage()
    else:
        url = f"sqlite:///{folder}/optuna-{storage_kind}.db"
        kwargs = {"engine_kwargs": {"connect_args": {"factory": _WalConnection}}} if storage_kind == "wal" else {}
        storage = optuna.storages.RDBStorage(url, **kwargs)
    study = optuna.create_study(storage=storage, study_name="bench")
    trial = study.ask()
    values = [float(i % 97) for i in range(97)]
    start = time.perf_counter()
    for step in range(reports):
        trial.report(values[step % 97], step)
    elapsed = time.perf_counter() - start
    assert len(study.trials[0].intermediate_values) == reports
    return elapsed / reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--optuna-calls", type=int, default=3_000,
                        help="Optuna trial.report calls on each storage (one value each)")
    parser.add_argument("--hot-calls", type=int, default=200_000)
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        import torch  # noqa: F401  # every figure with the same heap (torch's objects make full collections dearer)

        floor = bench_floor(args.hot_calls)
        for idle in (False, True):
            for kind in ("floats", "tensors"):
                cpu = bench_hot_path(folder, args.hot_calls, kind, idle)
                same = bench_floor(args.hot_calls, kind, bounded=not idle)  # the same values, held as long
                regime = "writer idle" if idle else "writer flushing alongside"
                print(f"hot path trial.log, 3 {kind} ({args.hot_calls} calls, {regime}): {cpu * 1e6:.2f} us CPU/call "
                      f"(target <= 0.70); {cpu / same:.2f}x the bare list.append floor of the same values "
                      f"({same * 1e6:.2f} us), {cpu / floor:.1f}x the float floor ({floor * 1e6:.2f} us)")
        ours = bench_tunebook(folder, args.calls)
        # SQLite's default journal fsyncs every commit (milliseconds a call): a fifth of the calls is enough
        counts = {"wal": args.optuna_calls, "default": max(100, args.optuna_calls // 5), "memory": args.optuna_calls}
        optuna = {kind: bench_optuna(folder, counts[kind], kind) for kind in counts}
    per_value = ours / 3
    print(f"floor: bare list.append of the call: {floor * 1e6:.2f} us CPU/call, {floor / 3 * 1e6:.3f} us/value")
    print(f"tunebook trial.log (3 values/call, {args.calls} calls, final flush included): {ours * 1e6:.2f} us/call, "
          f"{per_value * 1e6:.3f} us/value, {ours / floor:.1f}x the floor")
    labels = {"wal": "SQLite, WAL + synchronous=NORMAL (fair)", "default": "SQLite, Optuna's defaults",
              "memory": "InMemoryStorage"}
    for kind, seconds in optuna.items():
        print(f"optuna trial.report (1 value/call, {counts[kind]} calls, {labels[kind]}): "
              f"{seconds * 1e6:.2f} us/value, {3 * seconds * 1e6:.2f} us per 3 values (= one tunebook call); "
              f"ratio optuna/tunebook per value: {seconds / per_value:.1f}x, per tunebook call (3 optuna calls): "
              f"{3 * seconds / ours:.1f}x")
    print(f"fair ratio (SQLite, same journal settings, per value): {optuna['wal'] / per_value:.1f}x; "
          f"in memory: {optuna['memory'] / per_value:.1f}x")

if __name__ == "__main__":
    main()
