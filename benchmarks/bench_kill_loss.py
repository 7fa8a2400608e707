"""Metric points lost per SIGKILL of a worker: what the training function logged against what was stored.

A real study, run by real ``tunebook worker`` processes (one trial each, ``--max-trials 1``). The training
function appends every point to a side file (its process id, step and wall time, written to the OS before
``trial.log`` is called, so the page cache keeps it past a SIGKILL), then logs it. ``--kills`` times: start a
worker, let its trial train for a random 1 to 3 seconds (a random phase of the flush cycle), SIGKILL the
process that runs the training function, then compare, for that trial, the points the side file holds with
the rows the store holds. No other worker runs meanwhile, so nothing re-queues the trial or drops its rows.

Per kill: points lost (logged but not stored) and seconds lost (from the last stored point's log time to
the last logged point). The bound is the writer's flush interval (1 s: a point is durable within 1 s of
``trial.log``). A point written to the side file whose ``trial.log`` the kill pre-empted counts as lost, so
the figures are an upper bound.

    python benchmarks/bench_kill_loss.py --kills 20 [--backends sqlite,postgresql] [--step-seconds 0.01]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TRAIN = '''\
import os, time

def train(trial):
    side = open(os.path.join(os.environ["TB_SIDE_DIR"], f"{trial.number}.{os.getpid()}"), "a", buffering=1)
    delay = float(os.environ["TB_STEP_SECONDS"])
    loss = 1.0
    for step in range(1, trial.max_train_steps + 1):
        loss *= 0.999
        side.write(f"{step} {time.time():.6f}\\n")  # line-buffered: in the OS before trial.log
        trial.log(step, loss=loss)
        time.sleep(delay)
'''


def tunebook_worker(url: str, folder: Path, step_seconds: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{ROOT}", "TB_SIDE_DIR": str(folder / "side"),
           "TB_STEP_SECONDS": str(step_seconds)}
    env.pop("TUNEBOOK_STORAGE", None)
    return subprocess.Popen([sys.executable, "-m", "tunebook", "worker", "--storage", url, "--study", "kills",
                             "--max-trials", "1", "--quiet", "--stale-after", "1000000"], cwd=folder, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def side_file(folder: Path, worker: subprocess.Popen, seen: set[Path], timeout: float = 300) -> Path:
    """The side file the worker's trial opens (a new one: each kill's trial is another pending trial; the
    killed ones stay running, never re-queued, as ``--stale-after`` is far away)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = set((folder / "side").iterdir()) - seen
        if found:
            return found.pop()
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited ({worker.returncode}) before training: {worker.stderr.read()[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError("no trial started")


def one_kill(url: str, folder: Path, step_seconds: float, rng: random.Random) -> tuple[int, int, float, bool]:
    """Start a worker, kill its training process mid-trial; (points logged, points stored, seconds lost,
    whether the training ran in the worker process itself)."""
    import tunebook as tb

    seen = set((folder / "side").iterdir())
    worker = tunebook_worker(url, folder, step_seconds)
    path = side_file(folder, worker, seen)
    time.sleep(rng.uniform(1.0, 3.0))
    number, pid = (int(part) for part in path.name.split("."))
    os.kill(pid, signal.SIGKILL)
    if pid != worker.pid:
        worker.kill()
    worker.wait(timeout=60)
    time.sleep(0.2)  # the side file's last line is in the page cache already; this is only for the reader
    logged = {int(s): float(t) for s, t in (line.split() for line in path.read_text().splitlines() if line.strip())}
    study = tb.load_study("kills", storage=url)
    trial = next(t for t in study.trials() if t.number == number)
    stored = {row.step for row in study.storage.get_metrics(trial.id, ["loss"])}
    assert stored <= set(logged), "stored a point the function never logged"
    last_logged = max(logged.values())
    last_stored = max((logged[s] for s in stored), default=min(logged.values()))
    return len(logged), len(stored & set(logged)), last_logged - last_stored, pid == worker.pid


def run_backend(url: str, kills: int, step_seconds: float, seed: int) -> list[tuple[int, int, float, bool]]:
    import tunebook as tb

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "side").mkdir()
        (folder / "killtrain.py").write_text(TRAIN)
        tb.create_study("kills", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-3, 1.0, "log")}),
                        objective=("loss", "min"), trials=kills, max_train_steps=10**6, storage=url,
                        train="killtrain:train", replicates=0)
        rng = random.Random(seed)
        return [one_kill(url, folder, step_seconds, rng) for _ in range(kills)]


def report(backend: str, results: list[tuple[int, int, float, bool]], step_seconds: float) -> None:
    lost = [r[0] - r[1] for r in results]
    seconds = [r[2] for r in results]
    in_worker = sum(r[3] for r in results)
    print(f"{backend}: {len(results)} SIGKILLs, {sum(r[0] for r in results)} points logged, "
          f"{sum(r[1] for r in results)} stored; points lost per kill: max {max(lost)}, mean {statistics.mean(lost):.1f}; "
          f"seconds lost per kill: max {max(seconds):.2f}, mean {statistics.mean(seconds):.2f} "
          f"(one point every {step_seconds * 1000:.0f} ms plus logging; flush interval 1 s); the killed process "
          f"was the `tunebook worker` itself {in_worker} times, a child running the trial {len(results) - in_worker}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--backends", default="sqlite", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--step-seconds", type=float, default=0.01, help="sleep between two logged points")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as store:
                results = run_backend(f"sqlite:///{store}/kills.db", args.kills, args.step_seconds, args.seed)
        else:
            from tunebook.testing import PostgresServer, pg_bindir

            bindir = pg_bindir()
            if bindir is None:
                print("postgresql: skipped (no initdb/pg_ctl)")
                continue
            server = PostgresServer(bindir)
            try:
                results = run_backend(server.new_database(), args.kills, args.step_seconds, args.seed)
            finally:
                server.stop()
        report(backend, results, args.step_seconds)


if __name__ == "__main__":
    main()
