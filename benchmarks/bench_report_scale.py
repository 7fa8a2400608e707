"""The report at scale: ``tb.analyze`` + ``report.save`` for a large SQLite study, per phase, against its floor.

A synthetic study (``--trials`` x ``--evals`` evaluations x 2 metrics, the
curve function of bench_analysis.py) is written once into ``--cache`` (reused
by later runs with the same sizes). Then, in a fresh process each (so that
peak memory, ``ru_maxrss``, is measured alone):

- tunebook: ``tb.analyze(study)`` and ``report.save(path)``, timed per phase:
  load (the trials), checks (with the curves they read), figures, answer, HTML;
- the floor: a raw ``sqlite3`` read of the trials table into NumPy, and of the
  curve rows the report read (the same trials' metric rows) into NumPy.

Issue 17 item 5: 100,000 trials x 200 evaluations in at most 5 s and 500 MiB.

Run: python benchmarks/bench_report_scale.py --cache /tmp/tb-scale [--trials 10000] [--evals 200]
To time another checkout, put it first on PYTHONPATH (the child processes inherit it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_analysis import SPACE, curve  # noqa: E402  (the same synthetic study as bench_analysis.py)


def build(db: Path, trials: int, evals: int) -> None:
    """Write the study into ``db`` unless a complete one is there (a marker file says so)."""
    done = db.with_suffix(".done")
    if done.exists():
        return
    from tunebook.analysis.synthetic import write_study

    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    start = time.perf_counter()
    write_study(f"sqlite:///{db}", "bench", curve, space=SPACE, trials=trials, max_train_steps=evals * 10, evals=evals,
                chunk=2000)
    done.write_text(f"{time.perf_counter() - start:.1f}")
    print(f"built {trials} trials x {evals} evals x 2 metrics in {done.read_text()}s "
          f"({db.stat().st_size / 2**20:.0f} MiB)", flush=True)


def child_tunebook(db: Path, out: Path) -> dict:
    import tunebook as tb
    from tunebook.analysis import report as report_module

    phases: dict[str, float] = {}
    cpu_start = time.process_time()

    def timed(name: str, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - start
        return wrapper

    # the phases of analyze(), timed where analyze() looks them up
    for name, attr in (("load", "load"), ("checks", "run_checks"), ("figures", "compute_figures"), ("answer", "build_answer")):
        setattr(report_module, attr, timed(name, getattr(report_module, attr)))
    start = time.perf_counter()
    study = tb.load_study("bench", storage=f"sqlite:///{db}")
    phases["open"] = time.perf_counter() - start
    report = tb.analyze(study)
    start = time.perf_counter()
    path = report.save(out / "report.html")
    phases["html"] = time.perf_counter() - start
    total = sum(phases.values())
    # the curves the report read: [trial id, None] for every metric of a trial, [trial id, name] for one
    full = set(report.data._curves)
    loaded = sorted([i, None] for i in full) + sorted(
        [i, name] for i, name in getattr(report.data, "_partial", {}) if i not in full)
    (out / "curve_trials.json").write_text(json.dumps(loaded))
    return {"phases": phases, "seconds": total, "cpu_seconds": time.process_time() - cpu_start, "html_mib": path.stat().st_size / 2**20, "curves_read": len(loaded),
            "findings": len(report.findings), "figures": len(report.figures)}


def child_floor(db: Path, out: Path) -> dict:
    import sqlite3

    import numpy as np

    phases: dict[str, float] = {}
    start, cpu_start = time.perf_counter(), time.process_time()
    con = sqlite3.connect(str(db))
    rows = con.execute("SELECT id, number, state, value, best_step, params FROM tb_trials").fetchall()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    values = np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=float)
    params = [json.loads(r[5]) for r in rows]
    phases["trials"] = time.perf_counter() - start
    start = time.perf_counter()
    wanted = json.loads((out / "curve_trials.json").read_text()) if (out / "curve_trials.json").exists() else []
    points = 0
    by_name: dict[str | None, list[int]] = {}
    for trial_id, name in wanted:
        by_name.setdefault(name, []).append(trial_id)
    for name, ids in by_name.items():
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            if name is None:
                got = con.execute(f"SELECT trial_id, step, value FROM tb_metrics WHERE trial_id IN ({marks}) "
                                  "ORDER BY trial_id, name, step", chunk).fetchall()
            else:
                got = con.execute(f"SELECT trial_id, step, value FROM tb_metrics WHERE name = ? AND trial_id IN ({marks}) "
                                  "ORDER BY trial_id, step", [name, *chunk]).fetchall()
            points += len(np.array(got, dtype=float))
    phases["curves"] = time.perf_counter() - start
    del ids, values, params
    return {"phases": phases, "seconds": sum(phases.values()), "cpu_seconds": time.process_time() - cpu_start,
            "curve_points": points}


def run_child(part: str, db: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", part, "--db", str(db), "--out", str(out)],
                          capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode:
        sys.exit(f"{part} child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="/tmp/tb-scale", help="folder that keeps the synthetic stores between runs")
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--evals", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side, interleaved (the best is printed)")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--child", choices=("tunebook", "floor"))
    parser.add_argument("--db")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        result = {"tunebook": child_tunebook, "floor": child_floor}[args.child](Path(args.db), Path(args.out))
        result["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    db = cache / f"study-{args.trials}x{args.evals}.db"
    build(db, args.trials, args.evals)
    if args.build_only:
        return
    out = cache / f"out-{args.trials}x{args.evals}-{os.getpid()}"
    out.mkdir(exist_ok=True)
    import tunebook

    print(f"tunebook from {Path(tunebook.__file__).parent}; load average {os.getloadavg()[0]:.1f}", flush=True)
    ours, floor = [], []
    for _ in range(args.repeat):  # interleaved: a busy machine slows both sides alike
        ours.append(run_child("tunebook", db, out))
        floor.append(run_child("floor", db, out))
    t = min(ours, key=lambda r: r["seconds"])
    f = min(floor, key=lambda r: r["seconds"])
    phases = ", ".join(f"{k} {v:.2f}s" for k, v in t["phases"].items())
    print(f"tunebook report, {args.trials} trials x {args.evals} evals: {t['seconds']:.2f}s wall, "
          f"{t['cpu_seconds']:.2f}s CPU ({phases}); "
          f"peak RSS {t['max_rss_mib']:.0f} MiB; HTML {t['html_mib']:.1f} MiB; {t['curves_read']} curves read; "
          f"{t['findings']} findings, {t['figures']} figures")
    print(f"floor (raw sqlite3 into NumPy): {f['seconds']:.2f}s wall, {f['cpu_seconds']:.2f}s CPU (trials {f['phases']['trials']:.2f}s, "
          f"{f['curve_points']} curve points {f['phases']['curves']:.2f}s); peak RSS {f['max_rss_mib']:.0f} MiB")
    print(f"ratio to the floor: {t['seconds'] / f['seconds']:.1f}x time; target <= 5 s and <= 500 MiB at 100,000 trials; "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
