"""Real studies with a known answer on the small workloads of tunebook.workloads (char_lm, tabular, signals,
regression, sorting).

The right answers come first, from seeded grid pilots (benchmarks/pilots/pilot_<workload>.py, several
seeds a point), stored in tests/assets/pilots/<workload>.json; the tests read their truths from there.
A :class:`Case` is one tunebook study, built as a user would (a spec dict, ``tb.create_study``, ``tb.run``);
its training length, evaluation period and infeasibility rule are the pilot's, so a trial's value is
what the pilot measured for its point.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tunebook as tb

PILOTS = Path(__file__).resolve().parents[1] / "assets" / "pilots"

#: workload name -> (training function, objective metric)
WORKLOADS = {
    "char_lm": ("tunebook.workloads.char_lm:train", "val/bpc"),
    "tabular": ("tunebook.workloads.tabular:train", "val/loss"),
    "signals": ("tunebook.workloads.signals:train", "val/loss"),
    "regression": ("tunebook.workloads.regression:train", "val/mse"),
    "sorting": ("tunebook.workloads.sorting:train", "val/loss"),
}


def pilot(workload: str) -> dict[str, Any]:
    return json.loads((PILOTS / f"{workload}.json").read_text())


class Truth:
    """One workload's pilot: the per-point mean and seed sd, and the judgments read from them."""

    def __init__(self, workload: str) -> None:
        self.data = pilot(workload)
        self.points = self.data["points"]

    def mean(self, key: str) -> float:
        return self.points[key]["mean"]

    def best(self, prefix: str) -> tuple[str, float]:
        """The best point among those whose key starts with ``prefix`` followed by ``lr=``: (key, mean)."""
        keys = [k for k, p in self.points.items()
                if k.startswith(prefix) and k[len(prefix):].lstrip().startswith("lr=") and p["mean"] is not None
                and "steps" not in p]  # a point trained longer than the pilot's steps is another question
        key = min(keys, key=self.mean)
        return key, self.mean(key)

    def seed_sd(self, *keys: str) -> float:
        """The pooled seed-to-seed sd of ``keys`` (each point's runs with different seeds)."""
        ss = df = 0.0
        for k in keys:
            vals = [v for v in self.points[k]["values"] if v is not None]
            m = sum(vals) / len(vals)
            ss += sum((v - m) ** 2 for v in vals)
            df += len(vals) - 1
        return math.sqrt(ss / df)

    def verdict(self, a: str, b: str) -> str:
        """The pilot's answer to "a or b, each at its best rate?": "winner" when their best means differ by more
        than 3 seed sds, "tie" when by less than two standard errors of a difference of means of n seeds each
        (2 sqrt(2/n) seed sds: the pilot cannot tell them apart), else "unclear"."""
        gap = abs(self.gap_in_sd(a, b))
        if gap > 3:
            return "winner"
        return "tie" if gap < 2 * math.sqrt(2 / len(self.data["seeds"])) else "unclear"

    def edge(self, prefix: str) -> dict[str, Any]:
        """The learning-rate sweep of ``prefix`` (points ``"<prefix> lr=..."``): the best rate whose seeds all
        trained (``best``), the rates above it with their mean and share of diverged seeds (``above``)."""
        sweep = sorted((p["params"]["learning_rate"], p) for k, p in self.points.items()
                       if k.startswith(prefix + " lr=") and "steps" not in p)
        n = len(self.data["seeds"])
        best_rate, best = min(((r, p) for r, p in sweep if p["infeasible"] == 0), key=lambda rp: rp[1]["mean"])
        return {"best_rate": best_rate, "best": best["mean"],
                "above": [(r, p["mean"], p["infeasible"] / n) for r, p in sweep if r > best_rate]}

    def gap_in_sd(self, a: str, b: str) -> float:
        """(mean of b's best - mean of a's best) in pooled seed sds of those two points (>0: a is better)."""
        ka, ma = self.best(a)
        kb, mb = self.best(b)
        return (mb - ma) / self.seed_sd(ka, kb)


@dataclass
class Case:
    name: str
    workload: str
    space: dict[str, Any]
    trials: int
    goal: str = ""
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # more create_study options

    def spec(self) -> dict[str, Any]:
        data = pilot(self.workload)
        train, metric = WORKLOADS[self.workload]
        space = {k: dict(v) for k, v in self.space.items()}
        varied = {name for role in ("scientific", "nuisance") for name in space.get(role, {})}
        varied |= {name for sub in space.get("conditional", {}).values() for name in sub}
        pilot_fixed = {k: v for k, v in data["fixed"].items() if k not in varied}
        space["fixed"] = {**pilot_fixed, **space.get("fixed", {})}  # the pilot's fixed settings
        return {"study": self.name, "goal": self.goal, "train": train, "objective": {"metric": metric, "mode": "min"},
                "trials": self.trials, "max_train_steps": data["steps"], "seed": self.seed, "search_space": space,
                "infeasible_if": {"train/loss": {"above": data["infeasible_above"]}}, **self.options}


def lr(lo: float, hi: float) -> dict[str, Any]:
    return {"learning_rate": {"min": lo, "max": hi, "scale": "log"}}


def build(url: str, case: Case, checkpoint_dir: Path) -> tb.Study:
    """Create and run one case's study in the store at ``url`` (as ``tunebook run`` would from the spec)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    spec = case.spec()
    study = tb.create_study(spec.pop("study"), space=spec.pop("search_space"), storage=url,
                            objective=(spec["objective"]["metric"], spec["objective"]["mode"]),
                            **{k: v for k, v in spec.items() if k != "objective"})
    tb.run(study, workers=0, progress=False, checkpoint_dir=checkpoint_dir / case.name)
    return study


class Studies:
    """The cases of one test file, each built on first use into one store (``studies["key"]``)."""

    def __init__(self, url: str, cases: dict[str, Case], checkpoint_dir: Path) -> None:
        self.url, self.cases, self.checkpoint_dir = url, cases, checkpoint_dir
        self.built: dict[str, tb.Study] = {}

    def __getitem__(self, key: str) -> tb.Study:
        if key not in self.built:
            self.built[key] = build(self.url, self.cases[key], self.checkpoint_dir)
        return self.built[key]


#: Findings about the machine's timing, not the study (judged by their own tests on set curves).
TIMING_CHECKS = {"input_bound"}
#: The check that names an edge of stability (a best rate next to worse rates and then divergence).
STABILITY_CHECKS = {"stability_edge"}


def judged(report: Any) -> list:
    """The warnings about the study itself (see TIMING_CHECKS)."""
    return [f for f in report.warnings() if f.check not in TIMING_CHECKS]


def answer_kind(answer: Any) -> str:
    """What the answer concludes: "winner" (one group is better), "tie" (a measured tie: the 95% interval holds 0
    and is at most one trial sd), "not separated" (the interval holds 0 but is wider),
    "unsure" (somewhat larger than the trial variance), "unfair" (do not conclude yet), "unknown"."""
    verdict = answer.verdict
    if not answer.fair:
        return "unfair"
    if getattr(answer, "interval", None) is not None and answer.difference is not None:  # means with a 95% interval
        # a tie only when the interval is at most one pooled trial sd wide; wider and holding 0: "not separated"
        return {"separated": "winner"}.get(answer.separation, answer.separation)
    if "is better" in verdict:
        return "winner"
    if "does not separate" in verdict or " tie " in verdict:
        return "tie"
    if "somewhat larger" in verdict:
        return "unsure"
    return "unknown"


def is_gradual_edge(edge: dict[str, Any], sd: float) -> bool:
    """The pilot's truth of a gradual edge of stability: above the best rate, no rate is better (beyond
    ``sd``), some rate whose seeds all trained is worse by more than ``sd``, and the largest rate diverges
    with every seed."""
    above = edge["above"]
    trained = [m for _, m, bad in above if m is not None]
    return (bool(above) and all(m > edge["best"] - sd for m in trained)
            and any(m > edge["best"] + sd for _, m, bad in above if bad == 0) and above[-1][2] == 1.0)


def diverges_next_to_best(edge: dict[str, Any]) -> bool:
    """The pilot's truth of an edge of stability right above the best rate: some seeds diverge at a rate
    within 2x the best one, and the largest rate diverges with every seed."""
    return (any(bad > 0 for r, _, bad in edge["above"] if r <= 2 * edge["best_rate"])
            and edge["above"][-1][2] == 1.0)


def stability_findings(report: Any) -> list:
    return [f for f in report.warnings() if f.check in STABILITY_CHECKS]


def tie_or_not_separated(answer: Any) -> str:
    """What an honest answer on a true tie (the pilot's) says: "tie" when its 95% interval is at most one pooled
    trial sd, else "not separated" (too few re-runs to rule out a difference larger than the noise)."""
    return "tie" if answer.interval is not None and answer.interval <= answer.trial_sd else "not separated"
