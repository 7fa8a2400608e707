"""Overhead of a live TensorBoard writer on the logging hot path (`trial.log`, 3 metrics per call, SQLite).

Three measurements, each ``--calls`` calls of ``trial.log(step, a=..., b=..., c=...)``
with 0-d PyTorch tensors, then the final flush (as bench_logging.py):

1. **bare**: no extra writer (the floor).
2. **attached**: ``Trial(..., writers=[TensorBoardWriter])``; where Trial feeds
   its extra writers (the ``writers`` work), this is the real overhead. The
   script counts what reached the writer and says whether it was fed.
3. **null** and **concurrent**: the hot loop while a background thread converts the same
   values and feeds them to a writer that drops them (null) or to a
   TensorBoardWriter (concurrent), as the asynchronous writer wrapper does:
   the slowdown of the training thread from sharing the interpreter with the
   writer thread, and TensorBoard's share of it.
4. **writer alone**: ``write_scalars`` of 3 values per step, then close (the
   event file is on disk): the writer's own cost per scalar, without contention.

Each is the best of ``--repeats`` runs (a busy machine only ever adds time).

``--step-us`` adds a GIL-free wait per step, standing for the device's share
of a real training step; 0 (default) logs as fast as Python can, the worst
case for a writer thread that competes for the interpreter.

Run: python benchmarks/bench_live_writers.py [--calls 20000] [--repeats 3] [--step-us 0]
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Mapping


def _study(folder: Path, name: str, calls: int) -> Any:
    import tunebook as tb

    return tb.create_study(name, space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")}),
                           objective=("val/error", "min"), trials=1, max_train_steps=calls,
                           storage=f"sqlite:///{folder}/{name}.db")


class _Counting:
    """Wraps a writer: counts the scalars it receives and the time spent writing them."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.scalars, self.seconds = inner, 0, 0.0

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        self.inner.write_hparams(hparams)

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        start = time.perf_counter()
        self.inner.write_scalars(step, scalars)
        self.seconds += time.perf_counter() - start
        self.scalars += len(scalars)

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        self.inner.write_summary(summary)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


class _Null:
    """A writer that drops everything: the cost of the background thread and the conversion alone."""

    def write_hparams(self, hparams: Mapping[str, Any]) -> None: ...

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None: ...

    def write_summary(self, summary: Mapping[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def _writer(folder: Path, name: str) -> _Counting:
    from tunebook.integrations.tensorboard import TensorBoardWriter
    from tunebook.writers import TrialInfo

    if name == "null":
        return _Counting(_Null())
    info = TrialInfo(study=name, number=0, seed=0, params={"lr": 0.1}, roles={"lr": "nuisance"},
                     objective=("val/error", "min"))
    return _Counting(TensorBoardWriter(folder / "tb", info))


STEP_SECONDS = 0.0  # --step-us: device time per training step, simulated by a wait that releases the GIL


def _loop(trial: Any, calls: int, on_step: Any = None) -> float:
    import torch

    values = [torch.tensor(float(i % 97)) for i in range(97)]
    start = time.perf_counter()
    for step in range(calls):
        if STEP_SECONDS:
            time.sleep(STEP_SECONDS)
        v = values[step % 97]
        trial.log(step, **{"train/loss": v, "train/accuracy": v, "grad_norm": v})
        if on_step is not None:
            on_step(step, v)
    trial.close()
    return (time.perf_counter() - start) / calls


def bench(folder: Path, calls: int, mode: str) -> tuple[float, _Counting | None]:
    from tunebook.trial import Trial

    study = _study(folder, mode, calls)
    record = study.storage.claim_trial("bench", study.id)
    writer = _writer(folder, mode) if mode != "bare" else None
    writers = [writer] if mode == "attached" else []
    trial = Trial(study, record, study.storage, "bench", folder / "ckpt", flush_interval=1.0, writers=writers)
    if mode not in ("concurrent", "null"):
        per_call = _loop(trial, calls)
        if writer is not None:
            writer.close()
        return per_call, writer
    # What the asynchronous wrapper does: the hot loop appends, a thread converts to floats and writes.
    assert writer is not None
    queue: collections.deque = collections.deque()
    done = threading.Event()

    def drain() -> None:
        while not (done.is_set() and not queue):
            batch = []
            while queue:
                batch.append(queue.popleft())
            for step, v in batch:
                value = float(v)
                writer.write_scalars(step, {"train/loss": value, "train/accuracy": value, "grad_norm": value})
            if not batch:
                time.sleep(0.05)
        writer.close()

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    per_call = _loop(trial, calls, on_step=lambda step, v: queue.append((step, v)))
    done.set()
    thread.join()
    return per_call, writer


def writer_alone(folder: Path, calls: int) -> float:
    """Seconds per scalar of TensorBoardWriter.write_scalars (3 per step) until its file is closed."""
    writer = _writer(folder, "alone").inner
    start = time.perf_counter()
    for step in range(calls):
        value = float(step % 97)
        writer.write_scalars(step, {"train/loss": value, "train/accuracy": value, "grad_norm": value})
    writer.close()
    return (time.perf_counter() - start) / (3 * calls)


def best_of(repeats: int, folder: Path, calls: int, mode: str) -> tuple[float, _Counting | None]:
    results = []
    for i in range(repeats):
        run_folder = folder / f"{mode}-{i}"
        run_folder.mkdir()
        results.append(bench(run_folder, calls, mode))
    return min(results, key=lambda r: r[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--step-us", type=float, default=0.0,
                        help="simulated device time per step (a GIL-free wait); 0: log as fast as possible (worst case)")
    args = parser.parse_args()
    global STEP_SECONDS
    STEP_SECONDS = args.step_us / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        best_of(1, folder / "warmup", 500, "bare") if (folder / "warmup").mkdir() is None else None
        bare, _ = best_of(args.repeats, folder, args.calls, "bare")
        attached, fed = best_of(args.repeats, folder, args.calls, "attached")
        null, _ = best_of(args.repeats, folder, args.calls, "null")
        concurrent, writer = best_of(args.repeats, folder, args.calls, "concurrent")
        alone = min(writer_alone(folder / f"alone-{i}", args.calls) for i in range(args.repeats))
    assert writer is not None and fed is not None
    print(f"trial.log, 3 metrics, {args.calls} calls (SQLite, flush every 1 s), {args.step_us:g} us of simulated "
          f"device time per step (included in every line)")
    print(f"  bare (floor)                 {bare * 1e6:8.2f} us/call")
    note = "fed" if fed.scalars else "NOT fed: this Trial does not feed extra writers yet, so this is hparams only"
    print(f"  TensorBoard writer attached  {attached * 1e6:8.2f} us/call  ratio {attached / bare:5.2f}x  ({note}; "
          f"{fed.scalars} scalars)")
    print(f"  null writer thread running   {null * 1e6:8.2f} us/call  ratio {null / bare:5.2f}x  "
          f"(the same background thread converting to floats, writing nowhere)")
    print(f"  writer thread running        {concurrent * 1e6:8.2f} us/call  ratio {concurrent / bare:5.2f}x  "
          f"(training thread, while a background thread writes every value to TensorBoard)")
    print(f"  TensorBoard write_scalars    {alone * 1e6:8.2f} us/scalar alone, until the event file is closed "
          f"({writer.seconds / max(writer.scalars, 1) * 1e6:.2f} us/scalar wall in the background thread, GIL waits included)")


if __name__ == "__main__":
    main()
