"""The playbook's procedures: `batch-size`, `lr-sweep`, `stability`, `warmup`, `retrain`, `compare`, `adopt`, `next-round`.

Each handler reads its arguments, calls :mod:`tunebook.procedures`, and prints
the conclusion; the statistics and decisions live in the library.
"""

from __future__ import annotations

import argparse
from typing import Any

from tunebook.cli._base import command, positive, positive_float, print_conclusion, print_outcome, printable, running_options, trial_ref
from tunebook.errors import SpecError


def _fixed_pairs(pairs: list[str] | None) -> dict[str, Any]:
    import yaml

    fixed: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SpecError("--fixed", f"expected name=value, got {pair!r}", "e.g. --fixed batch_size=64")
        key, value = pair.split("=", 1)
        try:
            fixed[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise SpecError("--fixed", f"{value!r} is not a value", "e.g. --fixed batch_size=64 or --fixed optimizer=adam") from None
    return fixed


# batch-size ------------------------------------------------------------------
def _batch_size_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("step", help="module:function taking a batch size and returning a zero-argument training step")
    p.add_argument("--min", type=int, default=8)
    p.add_argument("--max", type=int, default=4096)
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--steps", type=positive, default=20, help="timed steps per window (best of 3 windows)")
    p.add_argument("--max-train-steps", type=positive, help="show the resource view: time per step x steps")
    p.add_argument("--experiment", default="batch-size", help="notebook experiment for the conclusion")


@command("batch-size", "measure throughput over powers of two and recommend a batch size",
         "tunebook batch-size tunebook.workloads.digits:make_step --max 2048", arguments=_batch_size_arguments)
def cmd_batch_size(args: argparse.Namespace) -> int:
    from tunebook.procedures import batch_size as bs
    from tunebook.storage import open_storage
    from tunebook.study import resolve_train

    make_step = resolve_train(args.step)
    if args.min < 1 or args.max < args.min:
        raise SpecError("--min", f"need 1 <= --min <= --max, got {args.min} and {args.max}", "e.g. --min 8 --max 4096")
    storage = open_storage(args.storage)  # a bad store is a clear error before the measurements
    measurements = bs.measure(make_step, bs.powers_of_two(args.min, args.max), warmup=args.warmup, steps=args.steps)
    result = bs.decide(measurements, args.max_train_steps)
    for row in result.evidence["measurements"]:
        ratio = row["throughput_ratio_vs_half"]
        extra = f"  time x steps {row['training_time_seconds']:.1f}s" if "training_time_seconds" in row else ""
        print(f"batch {row['batch_size']:>6}: {row['seconds_per_step'] * 1e3:8.2f} ms/step  {row['examples_per_second']:10.0f} examples/s"
              + (f"  x{ratio:.2f} vs half" if ratio else "") + extra)
    if result.evidence["out_of_memory_at"]:
        print(f"batch {result.evidence['out_of_memory_at']:>6}: out of memory")
    return print_conclusion(bs.record_in(storage, result, step=args.step, experiment=args.experiment))


# lr-sweep --------------------------------------------------------------------
def _lr_sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", required=True, help="module:function")
    p.add_argument("--name", default="lr-sweep")
    p.add_argument("--low", type=positive_float, default=1e-4)
    p.add_argument("--high", type=positive_float, default=1.0)
    p.add_argument("--points", type=positive, default=7)
    p.add_argument("--steps", type=positive, default=1000)
    p.add_argument("--metric", default="train/error", help="the training metric that shows 'perfect' performance")
    p.add_argument("--threshold", type=float, default=0.0)
    p.add_argument("--fixed", action="append", help="name=value held constant (repeatable)")
    running_options(p)


@command("lr-sweep", "pick an initial max_train_steps with a constant learning-rate sweep",
         "tunebook lr-sweep --train tunebook.workloads.digits:train --metric train/error --threshold 0 --steps 1000",
         arguments=_lr_sweep_arguments)
def cmd_lr_sweep(args: argparse.Namespace) -> int:
    from tunebook.procedures.lr_sweep import run_sweep
    from tunebook.study import resolve_train

    resolve_train(args.train)  # a bad module is a clear error before anything is stored
    if not 0 < args.low < args.high:
        raise SpecError("--low", f"need 0 < --low < --high, got {args.low} and {args.high}", "e.g. --low 1e-4 --high 1")
    result = run_sweep(args.name, train=args.train, storage=args.storage, low=args.low, high=args.high, points=args.points,
                       steps=args.steps, metric=args.metric, threshold=args.threshold, fixed=_fixed_pairs(args.fixed),
                       workers=args.workers, progress=not args.quiet)
    print_conclusion(result)
    return 0 if result.concluded else 1


# stability -------------------------------------------------------------------
def _stability_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study")
    p.add_argument("--param", default="learning_rate")
    p.add_argument("--steps", type=positive, default=500, help="early-instability check length")
    p.add_argument("--run", action="store_true", help="run the early-instability check now")
    running_options(p)


@command("stability", "is instability limiting the learning rate? (lr*, the rates above it, the early check)",
         "tunebook stability lr-sweep --run", arguments=_stability_arguments)
def cmd_stability(args: argparse.Namespace) -> int:
    from tunebook.execution import run
    from tunebook.procedures import stability
    from tunebook.study import load_study

    study = load_study(args.study, args.storage)
    result = stability.check(study, param=args.param)
    print_conclusion(result)
    early = stability.early_instability_study(study, param=args.param, steps=args.steps)
    print(printable(f"early-instability check: study {early.name} ({args.steps} steps at 2 x lr*, evaluated every step)"))
    if args.run:
        run(early, workers=args.workers, progress=not args.quiet)
        from tunebook.analysis import analyze

        for f in analyze(early).warnings():
            print(printable(f"  [{f.check}] {f.message}"))
    return 0


# warmup ----------------------------------------------------------------------
def _warmup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study")
    p.add_argument("--unstable-lr", type=positive_float, help="default: what `tunebook stability` recorded")
    p.add_argument("--factor", type=positive_float, default=10.0, help="base rate = factor x unstable rate")
    p.add_argument("--param", default="learning_rate")
    running_options(p)


@command("warmup", "the warmup study: shortest warmup that trains stably at 10x the unstable rate",
         "tunebook warmup lr-sweep", arguments=_warmup_arguments)
def cmd_warmup(args: argparse.Namespace) -> int:
    from tunebook.execution import run
    from tunebook.procedures import stability
    from tunebook.study import load_study

    study = load_study(args.study, args.storage)
    unstable = args.unstable_lr if args.unstable_lr is not None else stability.recorded_unstable_rate(study)
    if unstable is None:
        raise SpecError("--unstable-lr", f"no unstable rate is recorded for {study.name!r}",
                        f"run `tunebook stability {study.name}` first, or give --unstable-lr")
    warm = stability.warmup_study(study, unstable, param=args.param, factor=args.factor)
    print(printable(f"warmup study {warm.name}: warmup_steps {warm.space.params['warmup_steps'].values} at base rate "
                    f"{warm.space.fixed[args.param]:.3g}, {warm.max_train_steps} steps each"))
    run(warm, workers=args.workers, progress=not args.quiet)
    return print_conclusion(stability.analyze_warmup(study, warm, param=args.param))


# retrain ---------------------------------------------------------------------
def _retrain_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study")
    p.add_argument("--trial", type=trial_ref, default="best", help="'best' or a trial number")
    p.add_argument("--n", type=int, default=5)
    running_options(p)


@command("retrain", "retrain one trial with new seeds to measure trial variance",
         "tunebook retrain wd-ablation --trial best --n 5", arguments=_retrain_arguments)
def cmd_retrain(args: argparse.Namespace) -> int:
    from tunebook.execution import run
    from tunebook.procedures.variance import retrain, trial_variance
    from tunebook.study import load_study

    study = load_study(args.study, args.storage)
    replicas = retrain(study, args.trial, args.n)
    run(replicas, workers=args.workers, progress=not args.quiet)
    spread = trial_variance(replicas)
    if spread is not None:
        print(printable(f"{replicas.name}: {spread['n']} retrains, {study.objective[0]} mean {spread['mean']:.6g}, "
                        f"std {spread['std']:.3g} (trial variance)"))
    print_outcome(replicas)
    return 0


# compare, adopt ----------------------------------------------------------------
def _compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("baseline")
    p.add_argument("candidate")
    p.add_argument("--alpha", type=positive_float, default=0.05)


@command("compare", "baseline against candidate by their retrains: Welch's test and effect size",
         "tunebook compare baseline-study candidate-study", arguments=_compare_arguments)
def cmd_compare(args: argparse.Namespace) -> int:
    from tunebook.procedures.variance import compare
    from tunebook.study import load_study

    result = compare(load_study(args.baseline, args.storage), load_study(args.candidate, args.storage), alpha=args.alpha)
    e = result.evidence
    for side in ("baseline", "candidate"):
        print(printable(f"{side:>9} {e[side + '_study']}: n={e[side]['n']} mean={e[side]['mean']:.6g} std={e[side]['std']:.3g}"))
    print(f"difference {e['difference']:+.6g}, Welch p = {e['p_value']:.3g}, Hedges' g = {e['hedges_g']:.2f}")
    return print_conclusion(result)


def _adopt_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("candidate")
    p.add_argument("--experiment")
    p.add_argument("--force", action="store_true", help="adopt without a favorable comparison")


@command("adopt", "record a compared candidate as its experiment's new baseline", "tunebook adopt candidate-study",
         arguments=_adopt_arguments)
def cmd_adopt(args: argparse.Namespace) -> int:
    from tunebook.procedures.variance import adopt
    from tunebook.study import load_study

    return print_conclusion(adopt(load_study(args.candidate, args.storage), experiment=args.experiment, force=args.force))


# next-round ------------------------------------------------------------------
def _next_round_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study")
    p.add_argument("--steps", type=positive, required=True)
    p.add_argument("--name")
    p.add_argument("--trials", type=positive)
    p.add_argument("--retune", help="comma-separated tuned hyperparameters to keep tuning ('' for none; "
                                    "default: learning_rate when the study tunes it)")


@command("next-round", "the next round: best configuration, more steps, schedule extended",
         "tunebook next-round wd-ablation --steps 4000", arguments=_next_round_arguments)
def cmd_next_round(args: argparse.Namespace) -> int:
    from tunebook.procedures.rounds import check_retune, next_round
    from tunebook.study import load_study

    study = load_study(args.study, args.storage)
    if args.retune is None:
        retune: tuple[str, ...] = ("learning_rate",)  # the library's default: kept only when the study tunes it
    else:
        retune = check_retune(study, tuple(r.strip() for r in args.retune.split(",") if r.strip()))
    return print_conclusion(next_round(study, args.steps, name=args.name, trials=args.trials, retune=retune))


COMMANDS = [cmd_batch_size, cmd_lr_sweep, cmd_stability, cmd_warmup, cmd_retrain, cmd_compare, cmd_adopt, cmd_next_round]
