"""Does Bayesian optimization beat quasi-random search of the same budget on a real problem?

The problem: the digits MLP (tunebook's bundled workload), Adam with the
learning rate (1e-4..3, log) and beta1 (0.5..0.99) as nuisance hyperparameters,
``--steps`` training steps per trial; large rates diverge (``train/loss`` above
5 is infeasible). For each seed:

- quasi-random: ``--budget`` trials of scrambled Halton;
- GP and TPE: the first half of that same quasi-random study as exploration
  (the parent), then the other half proposed by Optuna's GPSampler / TPESampler
  in ask/tell mode, warm-started, infeasible trials as constraints.

Printed: the best validation error at the full budget (mean and spread over
seeds, and how often each method beats quasi-random), and how often each
method's second-half trials landed in a region already known to be infeasible
(its three nearest evaluated trials, weighted by closeness, mostly infeasible)
or diverged.

Run: python benchmarks/bench_bayesian.py [--seeds 5] [--budget 20] [--steps 150]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import tunebook as tb
from tunebook.designs.bayesian import infeasible_neighbourhood
from tunebook.workloads.digits import train

SPACE = tb.SearchSpace(
    nuisance={"learning_rate": tb.Float(1e-4, 3.0, "log"), "beta1": tb.Float(0.5, 0.99)},
    fixed={"optimizer": "adam", "hidden_units": 64, "eval_every": 50, "batch_size": 64},
)
RULES = {"train/loss": {"above": 5.0}}


def make(name, url, trials, steps, seed, **kw):
    return tb.create_study(name, space=SPACE, objective=("val/error", "min"), trials=trials, max_train_steps=steps,
                           storage=url, seed=seed, infeasible_if=RULES, **kw)


def second_half_stats(study, prior) -> tuple[int, int, int]:
    """(trials, in known-infeasible region when proposed, infeasible) over ``study``'s own new trials."""
    known = [({**t.params}, t.state == "infeasible") for t in prior]
    in_bad = bad = 0
    trials = study.trials()
    for t in trials:
        params = {k: t.params[k] for k in SPACE.params}
        if infeasible_neighbourhood(SPACE, params, known):
            in_bad += 1
        bad += t.state == "infeasible"
        known.append((params, t.state == "infeasible"))
    return len(trials), in_bad, bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    half = args.budget // 2
    best: dict[str, list[float]] = {"quasi_random": [], "gp": [], "tpe": []}
    proposals: dict[str, list[tuple[int, int, int]]] = {"quasi_random": [], "gp": [], "tpe": []}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bo.db'}"
        for seed in range(args.seeds):
            qr = make(f"qr-{seed}", url, args.budget, args.steps, seed)
            tb.run(qr, train, workers=0, progress=False, checkpoint_dir=Path(tmp) / "ckpt")
            trials = qr.trials()
            best["quasi_random"].append(min(t.value for t in trials if t.state == "completed"))
            first = [t for t in trials if t.number < half]
            later = [t for t in trials if t.number >= half]
            known = [(t.params, t.state == "infeasible") for t in first]
            in_bad = sum(infeasible_neighbourhood(SPACE, t.params, known[: half + i]) for i, t in enumerate(later))
            proposals["quasi_random"].append((len(later), in_bad, sum(t.state == "infeasible" for t in later)))
            parent = make(f"explore-{seed}", url, half, args.steps, seed)  # the same first half (same seed and name-free design)
            tb.run(parent, train, workers=0, progress=False, checkpoint_dir=Path(tmp) / "ckpt")
            for sampler in ("gp", "tpe"):
                bo = make(f"{sampler}-{seed}", url, args.budget - half, args.steps, seed, design="bayesian",
                          parent=parent.name, sampler=sampler)
                tb.run(bo, train, workers=0, progress=False, checkpoint_dir=Path(tmp) / "ckpt")
                values = [t.value for t in parent.trials() + bo.trials() if t.state == "completed"]
                best[sampler].append(min(values))
                proposals[sampler].append(second_half_stats(bo, parent.trials()))
            print(f"seed {seed}: best val/error  quasi-random {best['quasi_random'][-1]:.4f}  "
                  f"gp {best['gp'][-1]:.4f}  tpe {best['tpe'][-1]:.4f}", flush=True)
    print(f"\n{args.seeds} seeds, budget {args.budget} trials ({half} quasi-random exploration + {args.budget - half} proposed "
          f"for GP/TPE), {args.steps} steps per trial on digits")
    for name, values in best.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        wins = "" if name == "quasi_random" else (
            f"; better than quasi-random in {sum(v < q for v, q in zip(values, best['quasi_random']))}/{len(values)} seeds, "
            f"ties {sum(v == q for v, q in zip(values, best['quasi_random']))}")
        n, in_bad, bad = (sum(x[i] for x in proposals[name]) for i in range(3))
        print(f"{name:>12}: best val/error mean {statistics.mean(values):.4f} (sd {spread:.4f}){wins}; "
              f"second-half trials in a known-infeasible region {in_bad}/{n}, diverged {bad}/{n}")
    ratio = statistics.mean(best["quasi_random"]) / statistics.mean(best["gp"])
    print(f"ratio quasi-random / GP mean best val/error: {ratio:.3f} (> 1: GP better)")


if __name__ == "__main__":
    main()
