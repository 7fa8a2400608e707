"""Start-up time of the ``tunebook`` command and of ``import tunebook``.

Each command runs ``--repeat`` times in a fresh interpreter (as hyperfine
would); the script prints the best and the median wall time, and the floor:
the same interpreter running ``pass`` (``python -c pass``, site and the
virtualenv's path hooks included), measured interleaved with the others so the
machine's load hits all of them alike. ``over floor`` is the command's own cost.

Then ``python -X importtime`` of ``tunebook --help``: the slowest imports, and
whether numpy, SciPy, SQLAlchemy, Plotly or rich were imported at all.

Run: python benchmarks/bench_startup.py [--repeat 20] [--before PATH]
(``--before`` measures another checkout's ``tunebook`` too, interleaved with this
one's in the same rounds, and prints both: before and after in one run.)
Target: ``tunebook --help`` at most 60 ms; none of the heavy modules imported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("numpy", "scipy", "sqlalchemy", "plotly", "rich", "torch")

COMMANDS = {
    "python -c pass (floor)": ["-c", "pass"],
    "python -m tunebook --help": ["-m", "tunebook", "--help"],
    "python -m tunebook run --help": ["-m", "tunebook", "run", "--help"],
    "import tunebook": ["-c", "import tunebook"],
    "import tunebook; tb.SearchSpace": ["-c", "import tunebook as tb; tb.SearchSpace"],
    "import tunebook; tb.run": ["-c", "import tunebook as tb; tb.run"],
}


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def time_commands(python: str, roots: list[Path], repeat: int) -> dict[Path, dict[str, list[float]]]:
    """Wall seconds of each command for each checkout, ``repeat`` runs each, interleaved round by round.

    The child runs in the checkout (``python -m`` and ``-c`` put the working directory first on the path).
    """
    times: dict[Path, dict[str, list[float]]] = {root: {name: [] for name in COMMANDS} for root in roots}
    for root in roots:  # warm the page cache and the .pyc files
        for argv in COMMANDS.values():
            subprocess.run([python, *argv], env=_env(root), cwd=root, stdout=subprocess.DEVNULL, check=True)
    for _ in range(repeat):
        for root in roots:
            env = _env(root)
            for name, argv in COMMANDS.items():
                start = time.perf_counter()
                subprocess.run([python, *argv], env=env, cwd=root, stdout=subprocess.DEVNULL, check=True)
                times[root][name].append(time.perf_counter() - start)
    return times


def report(root: Path, times: dict[str, list[float]], python: str, top: int) -> None:
    floor_best = min(times["python -c pass (floor)"])
    floor_median = statistics.median(times["python -c pass (floor)"])
    print(f"\n== tunebook from {root}")
    print(f"{'command':36s} {'best ms':>8s} {'median ms':>10s} {'best over floor':>16s} {'median over floor':>18s}")
    for name, seconds in times.items():
        best, median = min(seconds), statistics.median(seconds)
        print(f"{name:36s} {best * 1e3:8.1f} {median * 1e3:10.1f} "
              f"{(best - floor_best) * 1e3:15.1f}  {(median - floor_median) * 1e3:17.1f}")
    help_best = min(times["python -m tunebook --help"])
    print(f"ratio tunebook --help / floor (best): {help_best / floor_best:.2f}x; "
          f"target 60 ms: {'met' if help_best <= 0.060 else 'not met'} ({help_best * 1e3:.1f} ms best)")
    rows, heavy = import_profile(python, root, top)
    print(f"tunebook --help imports heavy modules: {', '.join(heavy) if heavy else 'none'}")
    print("slowest imports of tunebook --help (cumulative, -X importtime, one run):")
    for micros, name in rows:
        print(f"  {micros / 1e3:7.1f} ms  {name.strip()}")


def import_profile(python: str, root: Path, top: int) -> tuple[list[tuple[int, str]], list[str]]:
    """The ``top`` slowest imports (cumulative microseconds) of ``tunebook --help`` and the heavy modules it loaded."""
    out = subprocess.run([python, "-X", "importtime", "-m", "tunebook", "--help"], env=_env(root), cwd=root,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True).stderr
    rows: list[tuple[int, str]] = []
    for line in out.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        rows.append((int(cumulative), name.rstrip()))
    loaded = {name.strip() for _, name in rows}
    heavy = [m for m in HEAVY if m in loaded]
    return sorted(rows, reverse=True)[:top], heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the checkout whose tunebook is measured (default: this one)")
    parser.add_argument("--before", type=Path, help="another checkout to measure in the same rounds (e.g. main)")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--top", type=int, default=12, help="how many of the slowest imports to list")
    args = parser.parse_args()
    roots = [args.before.resolve(), args.root.resolve()] if args.before else [args.root.resolve()]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.repeat} runs each; load average {load:.1f} on {os.cpu_count()} CPUs")
    times = time_commands(args.python, roots, args.repeat)
    for root in roots:
        report(root, times[root], args.python, args.top)


if __name__ == "__main__":
    main()
