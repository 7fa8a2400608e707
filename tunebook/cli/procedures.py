"""The playbook's procedures: `batch-size`, `lr-sweep`, `stability`, `warmup`, `retrain`, `compare`, `adopt`,
`next-round`, `study-variance`.

Each handler reads its arguments, calls :mod:`tunebook.procedures`, and prints
the conclusion; the statistics and decisions live in the library. Every verb
that runs trials takes ``--train`` (default: the function stored with the
study, or recorded by ``tb.run``), checks it before it stores anything, and
prints the command that runs the study it made (``tunebook run NAME``).
"""

from __future__ import annotations

import argparse
from typing import Any

from tunebook.cli._base import command, positive, positive_float, print_conclusion, print_outcome, printable, running_options, trial_ref
from tunebook.errors import SpecError


def _train_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", help="module:function or path/to/file.py:function (default: the one stored with the study)")


def _rate_param(study: Any, given: str | None) -> str:
    """``--param``, else the study's one learning rate found by name (lr, learning_rate, *_lr)."""
    from tunebook.procedures.rounds import learning_rates

    if given:
        return given
    rates = learning_rates(study)
    tuned = [r for r in rates if r in study.space.params]
    if len(tuned) == 1 or (not tuned and len(rates) == 1):
        return (tuned or rates)[0]
    if "learning_rate" in rates:
        return "learning_rate"
    raise SpecError("--param", f"study {study.name!r} has {'no' if not rates else 'several'} learning rates by name"
                    + (f" ({', '.join(rates)})" if rates else ""), "name its learning-rate hyperparameter with --param")


def _run_derived(study: Any, train: Any, args: argparse.Namespace) -> None:
    """Run a derived study as `tunebook run NAME` would, and print that command."""
    from tunebook.execution import run
    from tunebook.procedures import run_command

    print(printable(f"{study.name}: run it again or resume it with `{run_command(study.name, study.storage)}`"))
    run(study, train, workers=args.workers, progress=not args.quiet)
    if args.quiet:
        print_outcome(study)


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
         "tunebook batch-size tunebook.workloads.digits:make_step --max 2048", arguments=_batch_size_arguments,
         creates_store=True)
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
    p.add_argument("--fixed", action="append", help="name=value held constant (repeatable); not a schedule or "
                                                    "regularization, which break the sweep's premise")
    p.add_argument("--force", action="store_true", help="accept --fixed overrides of the schedule or regularization "
                                                        "(the recorded note says so)")
    running_options(p)


@command("lr-sweep", "pick an initial max_train_steps with a constant learning-rate sweep",
         "tunebook lr-sweep --train tunebook.workloads.digits:train --metric train/error --threshold 0 --steps 1000",
         arguments=_lr_sweep_arguments, creates_store=True)
def cmd_lr_sweep(args: argparse.Namespace) -> int:
    from tunebook.procedures.lr_sweep import run_sweep
    from tunebook.study import resolve_train

    from tunebook.procedures.lr_sweep import premise_overrides

    resolve_train(args.train)  # a bad module is a clear error before anything is stored
    if not 0 < args.low < args.high:
        raise SpecError("--low", f"need 0 < --low < --high, got {args.low} and {args.high}", "e.g. --low 1e-4 --high 1")
    fixed = _fixed_pairs(args.fixed)
    broken = premise_overrides(fixed)
    if broken and not args.force:
        raise SpecError("--fixed", f"{', '.join(broken)} would break the sweep's premise (a constant learning rate, "
                        "no regularization)", "leave them out, or pass --force (the recorded note will say so)")
    result = run_sweep(args.name, train=args.train, storage=args.storage, low=args.low, high=args.high, points=args.points,
                       steps=args.steps, metric=args.metric, threshold=args.threshold, fixed=fixed,
                       workers=args.workers, progress=not args.quiet, force=args.force)
    print_conclusion(result)
    return 0 if result.concluded else 1


# stability -------------------------------------------------------------------
def _stability_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study")
    p.add_argument("--param", help="the learning-rate hyperparameter (default: the one named lr, learning_rate or *_lr)")
    p.add_argument("--steps", type=positive, default=500, help="early-instability check length")
    p.add_argument("--run", action="store_true", help="run the early-instability check now and state its conclusion")
    _train_option(p)
    running_options(p)


@command("stability", "is instability limiting the learning rate? (lr*, the rates above it, the early check)",
         "tunebook stability lr-sweep --run", arguments=_stability_arguments)
def cmd_stability(args: argparse.Namespace) -> int:
    from tunebook.procedures import stability
    from tunebook.procedures import study_train
    from tunebook.study import load_study

    study = load_study(args.study, args.storage)
    args.param = _rate_param(study, args.param)
    ref, train = study_train(study, args.train) if args.run else (None, None)  # before anything is stored
    result = stability.check(study, param=args.param)
    print_conclusion(result)
    if not args.run:
        print(printable(f"early-instability check: {args.steps} steps at 2 x lr*, evaluated every step, without the "
                        f"study's infeasible_if: `tunebook stability {study.name} --run`"))
        return 0
    early = stability.early_instability_study(study, param=args.param, steps=args.steps, train=ref)
    print(printable(f"early-instability check: study {early.name} ({args.steps} steps at 2 x lr*, evaluated every step)"))
    _run_derived(early, train, args)
    return print_conclusion(stability.analyze_early(study, early, param=args.param))


# warmup ----------------------------------------------------------------------
def _warmup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study")
    p.add_argument("--unstable-lr", type=positive_float, help="default: what `tunebook stability` recorded")
    p.add_argument("--factor", type=positive_float, default=10.0, help="base rate = factor x unstable rate")
    p.add_argument("--param", help="the learning-rate hyperparameter (default: the one named lr, learning_rate or *_lr)")
    _train_option(p)
    running_options(p)


@command("warmup", "the warmup study: shortest warmup that trains stably at 10x the unstable rate",
         "tunebook warmup lr-sweep", arguments=_warmup_arguments)
def cmd_warmup(args: argparse.Namespace) -> int:
    from tunebook.procedures import stability
    from tunebook.study import load_study

    study = load_study(args.study, args.storage)
    unstable = args.unstable_lr if args.unstable_lr is not None else stability.recorded_unstable_rate(study)
    if unstable is None:
        raise SpecError("--unstable-lr", f"no unstable rate is recorded for {study.name!r}",
                        f"run `tunebook stability {study.name}` first, or give --unstable-lr")
    from tunebook.procedures import study_train

    args.param = _rate_param(study, args.param)
    stability.learning_rate_of(study, stability.best_params(study)[0], args.param)  # a bad --param before anything is stored
    ref, train = study_train(study, args.train)
    warm = stability.warmup_study(study, unstable, param=args.param, factor=args.factor, train=ref)
    print(printable(f"warmup study {warm.name}: warmup_steps {list(warm.space.params['warmup_steps'].values)} at base rate "
                    f"{warm.space.fixed[args.param]:.3g}, {warm.max_train_steps} steps each"))
    _run_derived(warm, train, args)
    return print_conclusion(stability.analyze_warmup(study, warm, param=args.param))


# retrain ---------------------------------------------------------------------
def _retrain_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study")
    p.add_argument("--trial", type=trial_ref, default="best", help="'best' or a trial number")
    p.add_argument("--n", type=int, default=5)
    _train_option(p)
    running_options(p)


@command("retrain", "retrain one trial with new seeds to measure trial variance",
         "tunebook retrain wd-ablation --trial best --n 5", arguments=_retrain_arguments)
def cmd_retrain(args: argparse.Namespace) -> int:
    from tunebook.procedures import study_train
    from tunebook.procedures.variance import retrain, trial_variance
    from tunebook.study import load_study

    study = load_study(args.study, args.storage)
    ref, train = study_train(study, args.train)  # before anything is stored
    replicas = retrain(study, args.trial, args.n, train=ref)
    _run_derived(replicas, train, args)
    spread = trial_variance(replicas)
    if spread is not None:
        print(printable(f"{replicas.name}: {spread['n']} retrains, {study.objective[0]} mean {spread['mean']:.6g}, "
                        f"std {spread['std']:.3g} (trial variance)"))
    return 0


# compare, adopt ----------------------------------------------------------------
def _compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("baseline", help="a tuned study (the retrains of its best trial are used) or a retrain study")
    p.add_argument("candidate", help="a tuned study (the retrains of its best trial are used) or a retrain study")
    p.add_argument("--alpha", type=positive_float, default=0.05)


@command("compare", "baseline against candidate by their retrains: Welch's test and effect size",
         "tunebook compare baseline-study candidate-study", arguments=_compare_arguments)
def cmd_compare(args: argparse.Namespace) -> int:
    from tunebook.procedures.variance import compare
    from tunebook.study import load_study

    result = compare(load_study(args.baseline, args.storage), load_study(args.candidate, args.storage), alpha=args.alpha)
    e = result.evidence
    for side in ("baseline", "candidate"):
        print(printable(f"{side:>9} {e[side + '_retrains']}: n={e[side]['n']} mean={e[side]['mean']:.6g} std={e[side]['std']:.3g}"))
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
    p.add_argument("--steps", type=positive, required=True, help="the new max_train_steps (more than the study's)")
    p.add_argument("--name")
    p.add_argument("--trials", type=positive, help="long runs of the best configuration (default 3); with --retune, "
                                                   "the trial budget (default a quarter of the study's)")
    p.add_argument("--retune", default="", help="comma-separated nuisance hyperparameters to re-tune over a range "
                                                 "narrowed around their best value (default: none, everything frozen)")
    p.add_argument("--run", action="store_true", help="run the new round now")
    _train_option(p)
    running_options(p)


@command("next-round", "the next round: a few long runs of the best configuration, schedule extended",
         "tunebook next-round wd-ablation --steps 4000", arguments=_next_round_arguments)
def cmd_next_round(args: argparse.Namespace) -> int:
    from tunebook.procedures import study_train
    from tunebook.procedures.rounds import check_retune, next_round
    from tunebook.study import load_study

    study = load_study(args.study, args.storage)
    retune = check_retune(study, tuple(r.strip() for r in args.retune.split(",") if r.strip()))
    ref, train = study_train(study, args.train)  # before anything is stored
    result = next_round(study, args.steps, name=args.name, trials=args.trials, retune=retune, train=ref)
    print_conclusion(result)
    if args.run:
        _run_derived(load_study(result.studies[0], study.storage), train, args)
    return 0


# study-variance ----------------------------------------------------------------
def _study_variance_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study")
    p.add_argument("--seeds", type=positive, default=2, help="re-runs of the study, each with another design seed")
    p.add_argument("--run", action="store_true", help="run the re-runs now (else: create them and print how to run them)")
    _train_option(p)
    running_options(p)


@command("study-variance", "would a second study pick the same winner? re-run it with other design seeds",
         "tunebook study-variance wd-ablation --seeds 2 --run", arguments=_study_variance_arguments)
def cmd_study_variance(args: argparse.Namespace) -> int:
    from tunebook.procedures import run_command, study_train
    from tunebook.procedures.variance import study_variance, study_variance_studies
    from tunebook.study import load_study

    study = load_study(args.study, args.storage)
    ref, train = study_train(study, args.train)  # before anything is stored
    reruns = study_variance_studies(study, args.seeds, train=ref)
    for rerun in reruns:
        if args.run:
            _run_derived(rerun, train, args)
        else:
            print(printable(f"{rerun.name} (design seed {rerun.seed}): `{run_command(rerun.name, study.storage)}`"))
    result = study_variance(study, reruns)
    print_conclusion(result)
    return 0 if result.concluded or not args.run else 1


COMMANDS = [cmd_batch_size, cmd_lr_sweep, cmd_stability, cmd_warmup, cmd_retrain, cmd_compare, cmd_adopt, cmd_next_round,
            cmd_study_variance]
