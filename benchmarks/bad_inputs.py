"""Count the bad inputs of issue 22 that get one line and exit 2 with nothing stored (for the issue's note).

Every case of tests/cli/bad_inputs.py, plus three MLflow targets (a URI MLflow refuses, a server that never
answers, a refused port), runs through the real `tunebook` command in a fresh folder holding a store with one
study, with its address space limited to 1 GiB (a file read whole shows as a failure) and a 150 s limit (a
hang shows as a failure). A case holds when the command exits 2, prints one line `tunebook: error: ...`
containing the expected text, and leaves every SQLite file and the folder's file names as they were.

Run: python benchmarks/bad_inputs.py [--code PATH] [--safe-only]
  --code PATH   the checkout whose tunebook is run (default: this one), e.g. an export of an older commit
  --safe-only   skip the cases that would start work on code that does not refuse them (--workers 100000
                would start 100,000 processes; a dashboard would serve until killed)
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "cli")]

from bad_inputs import CASES, TRAIN, dump, write_files  # noqa: E402

UNSAFE = ("workers-", "dashboard", "token-file", "devices-")


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def attempt(code: Path, argv: list[str], files: dict, expected: str) -> tuple[bool, str, float]:
    with tempfile.TemporaryDirectory(prefix="tb-bad-") as tmp:
        folder = Path(tmp)
        (folder / "train.py").write_text(TRAIN)
        env = {**os.environ, "PYTHONPATH": str(code)}
        env.pop("TUNEBOOK_STORAGE", None)
        subprocess.run([sys.executable, "-c", "import tunebook as tb; tb.create_study('keep', space={'nuisance': "
                        "{'lr': {'min': 0.1, 'max': 1.0}}}, objective=('val/error', 'min'), trials=3, "
                        "max_train_steps=5, storage='sqlite:///store.db')"], cwd=folder, env=env, check=True)
        write_files(folder, files)
        argv = [a.replace("STORE", f"sqlite:///{folder / 'store.db'}") for a in argv]
        before = dump(folder)
        started = time.monotonic()
        try:
            result = subprocess.run([sys.executable, "-m", "tunebook", *argv], cwd=folder, env=env, capture_output=True,
                                    text=True, timeout=150, preexec_fn=_limit)
        except subprocess.TimeoutExpired:
            return False, "no answer within 150 s", time.monotonic() - started
        took = time.monotonic() - started
        lines = result.stderr.strip().splitlines()
        if result.returncode != 2:
            return False, f"exit {result.returncode}: {(lines or [''])[-1][:120]}", took
        if len(lines) != 1 or expected not in lines[0]:
            return False, f"{len(lines)} lines: {(lines or [''])[-1][:120]}", took
        if dump(folder) != before:
            return False, "the store or its folder changed", took
        return True, lines[0][:140], took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=ROOT)
    parser.add_argument("--safe-only", action="store_true")
    args = parser.parse_args()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused_port = closed.getsockname()[1]
    closed.close()
    export = ["export", "keep", "--to", "mlflow"]
    cases = list(CASES) + [
        ("mlflow-bogus-uri", {}, [*export, "bogus://x", "--storage", "STORE"], "bogus://x"),
        ("mlflow-silent-server", {}, [*export, f"http://127.0.0.1:{silent.getsockname()[1]}", "--storage", "STORE"],
         "did not answer"),
        ("mlflow-refused-port", {}, [*export, f"http://127.0.0.1:{refused_port}", "--storage", "STORE"], "cannot be reached"),
    ]
    held = tried = 0
    for name, files, argv, expected in cases:
        if args.safe_only and name.startswith(UNSAFE):
            print(f"skip  {name}")
            continue
        ok, said, took = attempt(args.code, argv, files, expected)
        tried += 1
        held += ok
        print(f"{'held' if ok else 'FAIL'}  {name:34s} {took:6.1f}s  {said}", flush=True)
    silent.close()
    print(f"\n{held} of {tried} bad inputs held (exit 2, one line, nothing stored) with the code at {args.code}")


if __name__ == "__main__":
    main()
