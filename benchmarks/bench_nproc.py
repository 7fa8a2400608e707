"""What a multi-process trial costs: launching the ranks, and ``log`` on the ranks that do not write.

1. Wall time per trial of a trivial training function (a few ``log`` calls, no
   torch in it), one process a trial (``run_trial``) against N rank processes
   (``run_trial_ranks``: spawn, rendezvous store, reports), both in this process's
   worker loop (``workers=0``). The difference is the fixed cost a trial pays
   for running as N processes (mostly the interpreter start and imports of each rank).
2. ``trial.log`` per call on rank 0 (a real Trial: a buffer append) against a
   rank that does not write (:class:`ReplicaTrial`: a check of the stop flag).

Run: python benchmarks/bench_nproc.py [--trials 3] [--nproc 2] [--calls 200000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tunebook as tb  # noqa: E402
from tunebook.execution.multiproc import ReplicaTrial, StopFlag  # noqa: E402
from tunebook.trial import Trial  # noqa: E402


def trivial(trial) -> None:
    for step in range(1, 6):
        trial.log(step, **{"val/error": 1.0 / step})


def per_trial(folder: Path, name: str, trials: int, nproc: int) -> float:
    space = tb.SearchSpace(scientific={"x": tb.Choice(list(range(trials)))})
    study = tb.create_study(name, space=space, objective=("val/error", "min"), trials=trials, max_train_steps=5,
                            storage=f"sqlite:///{folder / 'tb.db'}")
    started = time.perf_counter()
    tb.run(study, trivial, workers=0, nproc_per_trial=nproc, progress=False, checkpoint_dir=folder / "ckpt")
    elapsed = time.perf_counter() - started
    assert all(t.state == "completed" for t in study.trials()), [t.error for t in study.trials()]
    return elapsed / trials


def log_cost(folder: Path, calls: int) -> tuple[float, float]:
    space = tb.SearchSpace(scientific={"x": tb.Choice([0])})
    study = tb.create_study("log-cost", space=space, objective=("val/error", "min"), trials=1, max_train_steps=calls,
                            storage=f"sqlite:///{folder / 'tb.db'}")
    record = study.storage.claim_trial("bench")
    out = []
    with Trial(study, record, study.storage, "bench", folder / "ckpt", flush_interval=1.0) as writing:
        started = time.perf_counter()
        for step in range(calls):
            writing.log(step, loss=0.5)
        out.append((time.perf_counter() - started) / calls)
    replica = ReplicaTrial(study, record, folder / "ckpt", [], StopFlag(folder / "stop"), rank=1, world_size=2)
    started = time.perf_counter()
    for step in range(calls):
        replica.log(step, loss=0.5)
    out.append((time.perf_counter() - started) / calls)
    replica.close()
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "one").mkdir()
        (root / "many").mkdir()
        (root / "log").mkdir()
        one = per_trial(root / "one", "one", args.trials, 1)
        many = per_trial(root / "many", "many", args.trials, args.nproc)
        print(f"seconds per trivial trial: 1 process {one:.3f}, {args.nproc} processes {many:.3f} "
              f"(ratio {many / one:.1f}x; launch cost {many - one:.2f} s a trial)")
        writing, replica = log_cost(root / "log", args.calls)
        print(f"trial.log per call: rank 0 {writing * 1e9:.0f} ns, other ranks {replica * 1e9:.0f} ns "
              f"(ratio {replica / writing:.2f}x)")


if __name__ == "__main__":
    main()
