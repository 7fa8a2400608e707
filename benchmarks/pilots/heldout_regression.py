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

import math
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "analysis"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _known_cases import Case, Truth, lr  # noqa: E402
from heldout_signals import HeldOut, comparison, evaluate, still_falling  # noqa: E402

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
    short = {k: p for k, p in TRUTH.points.items() if k.startswith("short adam ")}
    short_key = min(short, key=lambda k: short[k]["mean"])
    out.append(HeldOut(Case("reg-too-short", "regression", {"nuisance": wide, "fixed": {**ADAM, "eval_every": 5}},
                            trials=15, options={"max_train_steps": short[short_key]["steps"]},
                            goal="Adam trained far too briefly"),
                       f"best of {short[short_key]['steps']} steps {short[short_key]['mean']:.4f} ({short_key}) vs "
                       f"{best:.4f} in {TRUTH.data['steps']} steps", None,
                       planted={"still_improving|max_train_steps"}))
    constant = {k: p for k, p in TRUTH.points.items() if k.startswith("short constant ")}
    constant_key = min(constant, key=lambda k: constant[k]["mean"])
    out.append(HeldOut(Case("reg-too-short-constant", "regression",
                            {"nuisance": wide, "fixed": {**ADAM, "eval_every": 5, "schedule": "constant"}},
                            trials=15, options={"max_train_steps": constant[constant_key]["steps"]},
                            goal="Adam at a constant rate trained far too briefly"),
                       f"best of {constant[constant_key]['steps']} constant-rate steps "
                       f"{constant[constant_key]['mean']:.4f} ({constant_key}) vs {best:.4f} in "
                       f"{TRUTH.data['steps']} cosine steps", None, planted={"still_improving|max_train_steps"}))
    longer_helps(out)
    if still_falling(best_key, truth=TRUTH):  # then "train longer" is true of every case
        for item in out:
            item.allowed |= {"still_improving", "max_train_steps"}
            item.truth += "; still improving at the last step"
    return out


def longer_gain(key: str) -> tuple[float, float, int]:
    """Training longer, measured: (mean of ``key`` - mean of ``"long " + key``, the standard error of that
    difference over the pilot's seeds, the longer run's steps). The 600-step points were added to the pilot
    after this script's first run (see pilot_regression.py)."""
    short, long = TRUTH.points[key], TRUTH.points["long " + key]
    return (short["mean"] - long["mean"], math.sqrt((short["sd"] ** 2 + long["sd"] ** 2) / len(TRUTH.data["seeds"])),
            long["steps"])


def longer_helps(out: list[HeldOut]) -> None:
    """A group whose best rate gains more than two standard errors from training longer makes "train longer"
    (still_improving, max_train_steps) true of the 300-step cases that search it."""
    # The optimum's flat bottom (lr 0.03-0.1 within one seed sd) was first read at its best point only (lr=0.1:
    # 0.8 SE). After the length probes' first held-out run measured 600 steps better at the studies' best rates
    # (0.06-0.08), the pilot's 600-step points at 0.03 and 0.05 were added (3.6 and 3.8 SE): every point of the
    # bottom with a 600-step twin is read (a change after that run, stated in the note with both tables).
    best_key, best = TRUTH.best("adam")
    bottom = [k for k, p in TRUTH.points.items() if k.startswith("adam lr=") and "long " + k in TRUTH.points
              and p["mean"] - best < TRUTH.points[best_key]["sd"]]
    for label, key, cases in (("hidden_units=8", "adam hidden=8 lr=0.03", {"reg-width"}),
                              *((f"the optimum's {k}", k, None) for k in sorted(bottom))):
        gain, se, steps = longer_gain(key)
        for item in out:
            if gain > 2 * se and (cases is None or item.case.name in cases) \
                    and "max_train_steps" not in item.case.options:
                item.allowed |= {"still_improving", "max_train_steps"}
                item.truth += f"; {label} gains {gain:.4f} ({gain / se:.1f} SE) from {steps} steps"


def main() -> None:
    evaluate(cases(), "/tmp/tunebook-heldout-regression.db", __doc__.splitlines()[0])

if __name__ == "__main__":
    main()
