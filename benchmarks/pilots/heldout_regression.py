"""The second held-out evaluation (issue 21, "Done when"): tunebook's judgment on studies of a workload nothing
was tuned on (tunebook.workloads.regression, an MLP fitting a seeded synthetic function, objective val/mse),
against truths its seeded grid pilot established first (benchmarks/pilots/pilot_regression.py ->
tests/assets/pilots/regression.json; run it before). Every case uses the default replicates (3 per group).

Runs each case's study into one SQLite store, analyzes it, and prints a table: case | truth (pilot) |
tunebook's answer | findings that fired | false alarms (and misses). Also writes the rows as JSON.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/pilots/heldout_regression.py [--store PATH] [--json OUT]

A re-run with the same store resumes (finished studies are not trained again); delete it to start over.
The judging and the table are heldout_signals.py's (same rules: a planted finding must warn, any other
warning that is not a true finding of the case is a false alarm).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "analysis"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _known_cases import Case, Truth, build, lr  # noqa: E402
from heldout_signals import HeldOut, comparison, judge, still_falling, table  # noqa: E402

TRUTH = Truth("regression")
ADAM = {"optimizer": "adam"}
WIDE = (1e-2, 0.2)  # holds every group's optimum (pilot: flat from 3e-2 to 0.1, 0.2 clearly worse)


def cases() -> list[HeldOut]:
    wide = lr(*WIDE)
    out = []
    truth, kind, winner = comparison("adam", "adam dropout=0.3", "dropout=0.0", "dropout=0.3", TRUTH)
    out.append(HeldOut(Case("reg-dropout", "regression", {"scientific": {"dropout": {"choice": [0.0, 0.3]}},
                                                          "nuisance": wide, "fixed": ADAM}, trials=26,
                            goal="Does dropout 0.3 hurt?"), truth + " [10/group + 3 replicates]", kind, winner))
    truth, kind, winner = comparison("adam", "adam hidden=8", "hidden_units=32", "hidden_units=8", TRUTH)
    out.append(HeldOut(Case("reg-width", "regression", {"scientific": {"hidden_units": {"choice": [8, 32]}},
                                                        "nuisance": wide, "fixed": ADAM}, trials=26,
                            goal="Do 32 hidden units beat 8?"), truth + " [10/group + 3 replicates]", kind, winner))
    truth, kind, winner = comparison("adam", "adam wd=1e-4", "weight_decay=0.0", "weight_decay=0.0001", TRUTH)
    out.append(HeldOut(Case("reg-weight-decay", "regression",
                            {"scientific": {"weight_decay": {"choice": [0.0, 1e-4]}}, "nuisance": wide,
                             "fixed": ADAM}, trials=26, goal="Does a weight decay of 1e-4 matter?"),
                       truth + " [10/group + 3 replicates]", kind, winner))
    best_key, best = TRUTH.best("adam")
    out.append(HeldOut(Case("reg-clean", "regression", {"nuisance": wide, "fixed": ADAM}, trials=15,
                            goal="Adam, well posed"),
                       f"optimum {best_key} ({best:.4f}) inside [{WIDE[0]:g}, {WIDE[1]:g}]: clean", None))
    out.append(HeldOut(Case("reg-boundary", "regression", {"nuisance": lr(1e-4, 1e-3), "fixed": ADAM}, trials=15,
                            goal="Adam with a range below its optimum"),
                       f"optimum {best_key} above the range's upper bound 1e-3 "
                       f"(lr=0.001: {TRUTH.mean('adam lr=0.001'):.4f})", None,
                       planted={"search_space_boundary"}, allowed={"still_improving", "max_train_steps"}))
    short = {k: p for k, p in TRUTH.points.items() if k.startswith("short ")}
    short_key = min(short, key=lambda k: short[k]["mean"])
    out.append(HeldOut(Case("reg-too-short", "regression", {"nuisance": wide, "fixed": {**ADAM, "eval_every": 5}},
                            trials=15, options={"max_train_steps": short[short_key]["steps"]},
                            goal="Adam trained far too briefly"),
                       f"best of {short[short_key]['steps']} steps {short[short_key]['mean']:.4f} ({short_key}) vs "
                       f"{best:.4f} in {TRUTH.data['steps']} steps", None,
                       planted={"still_improving|max_train_steps"}))
    if still_falling(best_key, truth=TRUTH):  # then "train longer" is true of every case
        for item in out:
            item.allowed |= {"still_improving", "max_train_steps"}
            item.truth += "; still improving at the last step"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="/tmp/tunebook-heldout-regression.db")
    parser.add_argument("--json", default=None, help="write the rows here")
    parser.add_argument("--only", nargs="*", help="case names")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for item in cases():
        if args.only and item.case.name not in args.only:
            continue
        study = build(f"sqlite:///{args.store}", item.case, Path(args.store).with_suffix(".ckpt"))
        rows.append(judge(item, study))
        print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1, default=str) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
