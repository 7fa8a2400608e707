"""Cost per call of `trial.log` (3 metrics) against Optuna's `trial.report`, both on SQLite.

tunebook: 100,000 calls of ``trial.log(step, a=..., b=..., c=...)`` with 0-d
PyTorch tensors (as a training loop logs them), then the final flush, so every
value is in the database when the clock stops. Writes happen in the
background every second (durable within 1 s).

Optuna: ``trial.report(value, step)`` on an ``RDBStorage`` over SQLite: one
value per call (a third of what tunebook stores per call) and one transaction
per call, so it is measured on fewer calls (--optuna-calls) and compared per call.

Hot path: CPU time of the training thread only (``time.thread_time``) per
``trial.log`` call with 3 floats and with 3 0-d tensors, against the floor of a
bare ``list.append`` of the same call (``def log(step, **m): buf.append((step, m))``).
Use enough calls (200,000) that the garbage collector's full collections, which
a large buffer of tracked objects (tensors) triggers, are amortized in the figure.
Two regimes: the writer thread flushing alongside (every second, or early when
the buffer is large: here it converts and writes all the time, as the loop logs
far faster than any training), and the writer idle (the call alone).

Run: python benchmarks/bench_logging.py [--calls 100000] [--optuna-calls 2000] [--hot-calls 200000]
"""

from __future__ import annotations

import argparse
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
    start = time.thread_time()
    for step in range(calls):
        v = values[step % 97]
        trial.log(step, **{"train/loss": v, "train/accuracy": v, "grad_norm": v})
    elapsed = time.thread_time() - start
    trial.close()
    return elapsed / calls


def bench_floor(calls: int) -> float:
    """CPU seconds per call of the cheapest possible log: a bare list append of the call's arguments."""
    buf: list = []

    def log(step: int, **metrics: float) -> None:
        buf.append((step, metrics))

    v = 1.0
    start = time.thread_time()
    for step in range(calls):
        log(step, **{"train/loss": v, "train/accuracy": v, "grad_norm": v})
        if len(buf) == 10_000:  # bounded, like a buffer that is flushed
            buf.clear()
    return (time.thread_time() - start) / calls


def bench_optuna(folder: Path, calls: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder}/optuna.db")
    study = optuna.create_study(storage=storage, study_name="bench")
    trial = study.ask()
    start = time.perf_counter()
    for step in range(calls):
        trial.report(float(step % 97), step)
    elapsed = time.perf_counter() - start
    return elapsed / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--optuna-calls", type=int, default=2_000)
    parser.add_argument("--hot-calls", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        floor = bench_floor(args.hot_calls)
        for idle in (False, True):
            for kind in ("floats", "tensors"):
                cpu = bench_hot_path(folder, args.hot_calls, kind, idle)
                regime = "writer idle" if idle else "writer flushing alongside"
                print(f"hot path trial.log, 3 {kind} ({args.hot_calls} calls, {regime}): {cpu * 1e6:.2f} us CPU/call "
                      f"(target <= 0.70), {cpu / floor:.1f}x the bare list.append floor ({floor * 1e6:.2f} us)")
        ours = bench_tunebook(folder, args.calls)
        theirs = bench_optuna(folder, args.optuna_calls)
    print(f"tunebook trial.log (3 metrics, {args.calls} calls, final flush included): {ours * 1e6:.2f} us/call")
    print(f"optuna trial.report (1 value, {args.optuna_calls} calls, SQLite RDBStorage): {theirs * 1e6:.2f} us/call")
    print(f"ratio optuna/tunebook per call: {theirs / ours:.0f}x (target >= 100x)")


if __name__ == "__main__":
    main()
