"""The held-out evaluation (issue 21, "Done when"): tunebook's judgment on studies of a workload nothing was
tuned on (tunebook.workloads.signals, a 1-D CNN on generated waveforms), against truths its seeded grid pilot
established first (benchmarks/pilots/pilot_signals.py -> tests/assets/pilots/signals.json; run it before).

Runs each case's study into one SQLite store, analyzes it, and prints a table: case | truth (pilot) |
tunebook's answer | findings that fired | false alarms (and misses). Also writes the rows as JSON.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/pilots/heldout_signals.py [--store PATH] [--json OUT]

A re-run with the same store resumes (finished studies are not trained again); delete it to start over.

Held out no longer: after this evaluation found false alarms on it (issue 21), the checks were fixed on rules
stated without its numbers (the boundary against the measured trial sd, step noise on most curves, an edge
by its shape), and four of its cases became known-answer tests (tests/analysis/test_known_answers_signals.py).
A next held-out evaluation needs a workload none of that has seen.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "analysis"))
from _known_cases import (  # noqa: E402
    TIMING_CHECKS,
    Case,
    Truth,
    answer_kind,
    build,
    is_gradual_edge,
    lr,
)

import tunebook as tb  # noqa: E402

TRUTH = Truth("signals")
ADAM = {"optimizer": "adam"}


@dataclass
class HeldOut:
    case: Case
    truth: str  # what the pilot says, in words
    expect: str | None  # the answer's kind it must give: winner / tie / unclear / None (no comparison)
    winner: str | None = None  # the group that must be named when expect == "winner"
    planted: set[str] = field(default_factory=set)  # checks that must warn (any one of each alternative set)
    allowed: set[str] = field(default_factory=set)  # true findings that may warn as well


def comparison(a: str, b: str, group_a: str, group_b: str, truth: Truth = TRUTH) -> tuple[str, str | None, str | None]:
    """(truth in words, expected kind, expected winner) of comparing the pilot's points ``a`` and ``b``."""
    gap = truth.gap_in_sd(a, b)
    (ka, ma), (kb, mb) = truth.best(a), truth.best(b)
    sd = truth.seed_sd(ka, kb)
    words = f"{group_a} {ma:.4f} vs {group_b} {mb:.4f} (best rates), seed sd {sd:.4f}: {abs(gap):.1f} sd"
    ahead = group_a if gap > 0 else group_b
    kind = truth.verdict(a, b)
    if kind == "winner":
        return words + f" -> {ahead} better", "winner", ahead
    if kind == "tie":
        return words + " -> tie", "tie", None
    return words + f" -> unclear ({ahead} ahead)", "unclear", ahead


def still_falling(key: str, share: float = 0.2, truth: Truth = TRUTH) -> bool:
    """The pilot's truth about training length: the mean curve of ``key`` falls over the last ``share`` of the
    run by more than its seeds' sd (a study trained as long is still improving)."""
    curve = {int(s): v for s, v in truth.points[key]["curve"].items()}
    last = max(curve)
    start = min(s for s in curve if s >= (1 - share) * last)
    return curve[start] - curve[last] > truth.points[key]["sd"]


def cases() -> list[HeldOut]:
    wide = lr(1e-3, 0.1)  # holds each width's optimum (1e-2 for 16 and 24 channels, 0.1 for 4)
    # Above 1e-2 some seeds' validation loss blows up (pilot sd 0.1-0.4 at 0.03 and 0.1): instability there is true
    unstable = {"instability"}
    out = []
    truth, kind, winner = comparison("adam", "adam channels=4", "channels=16", "channels=4")
    out.append(HeldOut(Case("sig-channels", "signals", {"scientific": {"channels": {"choice": [4, 16]}},
                                                        "nuisance": wide, "fixed": ADAM}, trials=20,
                            options={"replicates": 2}, goal="Do 16 channels beat 4?"), truth + " [8/group]", kind, winner, allowed=unstable))
    truth, kind, winner = comparison("adam", "adam channels=24", "channels=16", "channels=24")
    out.append(HeldOut(Case("sig-width", "signals", {"scientific": {"channels": {"choice": [16, 24]}},
                                                     "nuisance": wide, "fixed": ADAM}, trials=20,
                            options={"replicates": 2}, goal="Do 24 channels beat 16?"), truth + " [8/group]", kind, winner, allowed=unstable))
    truth, kind, winner = comparison("adam", "adam epsilon=1e-6", "epsilon=1e-08", "epsilon=1e-06")
    out.append(HeldOut(Case("sig-epsilon", "signals", {"scientific": {"epsilon": {"choice": [1e-8, 1e-6]}},
                                                       "nuisance": wide, "fixed": ADAM}, trials=24,
                            goal="Does Adam's epsilon matter?"), truth, kind, winner, allowed=unstable))
    truth, kind, winner = comparison("adam", "sgd", "optimizer=adam", "optimizer=sgd")
    out.append(HeldOut(Case("sig-optimizers", "signals", {
        "scientific": {"optimizer": {"choice": ["adam", "sgd"]}},
        "conditional": {"optimizer=adam": wide, "optimizer=sgd": lr(0.03, 3.0)}}, trials=24,
        goal="Adam or SGD, each with its own learning-rate range?"), truth, kind, winner,
        allowed={"infeasible_share", "infeasible_region", "instability"}))
    edge = TRUTH.edge("sgd")
    gradual = is_gradual_edge(edge, TRUTH.seed_sd(TRUTH.best("sgd")[0]))
    out.append(HeldOut(Case("sig-sgd-edge", "signals", {"nuisance": lr(0.1, 32.0), "fixed": {"optimizer": "sgd"}},
                            trials=15, goal="Plain SGD's learning rate"),
                       f"SGD best at lr {edge['best_rate']:g} ({edge['best']:.4f}); above: "
                       + ", ".join(f"{r:g}: {'-' if m is None else f'{m:.3f}'} ({bad:.0%} diverged)"
                                   for r, m, bad in edge["above"]) + (" -> gradual edge" if gradual else " -> sharp edge"),
                       None, planted={"stability_edge"} if gradual else set(),
                       allowed={"infeasible_share", "infeasible_region", "instability", "stability_edge"}))
    best_key, best = TRUTH.best("adam")
    out.append(HeldOut(Case("sig-clean", "signals", {"nuisance": lr(2e-3, 3e-2), "fixed": ADAM}, trials=12,
                            goal="Adam, well posed"), f"optimum {best_key} ({best:.4f}) inside [2e-3, 3e-2]: clean", None))
    out.append(HeldOut(Case("sig-boundary", "signals", {"nuisance": lr(1e-4, 1e-3), "fixed": ADAM}, trials=12,
                            goal="Adam with a range below its optimum"),
                       f"optimum {best_key} above the range's upper bound 1e-3", None,
                       planted={"search_space_boundary"}, allowed={"still_improving", "max_train_steps"}))
    curve = TRUTH.points[best_key]["curve"]
    at40 = curve.get("40")
    out.append(HeldOut(Case("sig-too-short", "signals", {"nuisance": lr(2e-3, 3e-2), "fixed": ADAM}, trials=12,
                            options={"max_train_steps": 40}, goal="Adam trained far too briefly"),
                       f"{best_key}: {at40:.4f} at step 40, {best:.4f} best by step {TRUTH.data['steps']}", None,
                       planted={"still_improving|max_train_steps"}))
    # Trained 300 steps, the optimum's curve still falls at the end (pilot: adam lr=0.01, 0.822 at step 280,
    # 0.775 at 300): "train longer" is true of every 300-step case here
    if still_falling(TRUTH.best("adam")[0]):
        for item in out:
            if item.case.options.get("max_train_steps") is None:
                item.allowed |= {"still_improving", "max_train_steps"}
                item.truth += "; still improving at the last step"
    return out


def judge(item: HeldOut, study: tb.Study) -> dict[str, Any]:
    report = tb.analyze(study)
    answer = report.answer
    warned = sorted({f.check for f in report.warnings() if f.check not in TIMING_CHECKS})
    fired_ok = set()
    misses = []
    for alternatives in item.planted:
        names = set(alternatives.split("|"))
        if names & set(warned):
            fired_ok |= names & set(warned)
        else:
            misses.append(alternatives)
    false = [c for c in warned if c not in fired_ok and c not in item.allowed]
    kind = answer_kind(answer)
    if item.expect == "unclear":  # 1-3 seed sd apart: any answer but a winner other than the pilot's is right
        right = kind != "winner" or answer.best_group == item.winner
    elif item.expect == "tie":  # a measured tie, or "not separated" when the 95% interval holds 0 but is wider than
        right = kind in ("tie", "not separated")  # one trial sd (3 replicates a group: it always is); not contradicted
    else:
        right = item.expect is None or (kind == item.expect and (item.winner is None or answer.best_group == item.winner))
    return {"case": item.case.name, "truth": item.truth, "expect": item.expect, "winner": item.winner,
            "answer_kind": kind, "best_group": answer.best_group, "trial_sd": answer.trial_sd,
            "trial_sd_source": answer.trial_sd_source, "verdict": answer.verdict, "answer_right": right,
            "warnings": warned, "misses": misses, "false_alarms": false,
            "messages": {f.check: f.message for f in report.warnings()},
            "evidence": {f.check: {k: v for k, v in f.evidence.items() if isinstance(v, (int, float, str))}
                         for f in report.warnings() if f.check in false}}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| case | truth (pilot) | tunebook's answer | findings that fired | false alarms / misses |",
             "|---|---|---|---|---|"]
    for r in rows:
        sd = f"; sd {r['trial_sd']:.4f} from {r['trial_sd_source']}" if r["trial_sd"] else ""
        answer = f"{r['answer_kind']}" + (f" ({r['best_group']})" if r["best_group"] else "") + sd
        answer += " - right" if r["answer_right"] else " - WRONG"
        bad = ", ".join(r["false_alarms"]) or "none"
        if r["misses"]:
            bad += "; missed: " + ", ".join(r["misses"])
        lines.append(f"| {r['case']} | {r['truth']} | {answer} | {', '.join(r['warnings']) or 'none'} | {bad} |")
    return "\n".join(lines)


def evaluate(items: list[HeldOut], default_store: str, description: str) -> None:
    """Build, judge and tabulate ``items`` in their order (the command line: --store, --json, --only)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--store", default=default_store)
    parser.add_argument("--json", default=None, help="write the rows here")
    parser.add_argument("--only", nargs="*", help="case names")
    args = parser.parse_args()
    rows = []
    for item in items:
        if args.only and item.case.name not in args.only:
            continue
        study = build(f"sqlite:///{args.store}", item.case, Path(args.store).with_suffix(".ckpt"))
        rows.append(judge(item, study))
        print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1, default=str) + "\n")
    print(table(rows))


def main() -> None:
    order = ["sig-too-short", "sig-epsilon", "sig-sgd-edge", "sig-clean", "sig-boundary", "sig-channels",
             "sig-optimizers", "sig-width"]
    evaluate(sorted(cases(), key=lambda i: order.index(i.case.name)), "/tmp/tunebook-heldout-signals.db",
             __doc__.splitlines()[0])

if __name__ == "__main__":
    main()
