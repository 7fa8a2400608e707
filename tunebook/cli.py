"""The ``tunebook`` command: a thin shell over the library.

Every bad input prints one line naming the field and the fix, and exits 2.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from tunebook._errors import MissingExtraError, SpecError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and still exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"tunebook: error: {message}; see `{self.prog} --help`\n")


# run -------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from tunebook.execution import run
    from tunebook.study import study_from_spec_file

    devices = None
    if args.devices:
        devices = [d.strip() for d in args.devices.split(",") if d.strip()]
        if not args.workers_given:
            args.workers = len(devices)
    repro = "tunebook " + shlex.join(args.argv)
    options: dict[str, Any] = {}
    if args.executor == "ray":
        options = {"address": args.address, "cpus_per_trial": args.cpus_per_trial, "gpus_per_trial": args.gpus_per_trial}
    elif args.address or args.gpus_per_trial or args.cpus_per_trial != 1.0:
        raise SpecError("--executor", "--address, --cpus-per-trial and --gpus-per-trial need the Ray executor", "add --executor ray")
    study, train = study_from_spec_file(args.spec, storage=args.storage, repro_command=repro)
    if study.design == "bayesian" and study.record.spec.get("parent"):
        from tunebook.bayesian import refined_space
        from tunebook.study import load_study

        refined = refined_space(load_study(study.record.spec["parent"], study.storage))
        if refined:
            print(f"exploration {study.record.spec['parent']} suggests narrower bounds (span of its best trials): "
                  + "; ".join(f"{k} {v['min']:.3g}..{v['max']:.3g}" for k, v in refined.items()))
    if args.create_only:
        from tunebook.storage import redact

        print(f"study {study.name}: {study.trials_budget} trials stored in {redact(study.storage.url)}; "
              "run them with `tunebook worker` or `tunebook run`")
        return 0
    if args.executor == "ray":
        from tunebook.execution.ray_executor import _import_ray

        _import_ray()  # a missing extra is a clear error before anything runs
    result = run(
        study, train, workers=args.workers, devices=devices, checkpoint_dir=args.checkpoint_dir,
        progress=not args.quiet, executor=args.executor, **options,
    )
    _print_outcome(study)
    if result.interrupted:
        print(f"interrupted: running trials went back to pending; run the same command again to resume {study.name!r}")
        return EXIT_INTERRUPTED
    return 0


def _print_outcome(study: Any) -> None:
    counts = study.counts()
    best = study.best_trial()
    metric, mode = study.objective
    print(
        f"{study.name}: {counts['completed']} completed, {counts['infeasible']} infeasible, "
        f"{counts['failed']} failed, {counts['pending'] + counts['running']} left of {sum(counts.values())}"
    )
    if best is not None:
        print(f"best {metric} ({mode}) = {best.value:.6g} at step {best.best_step}, trial #{best.number}: {best.params}")
    from tunebook.storage import redact

    print(f"stored in {redact(study.storage.url)}")


# worker ----------------------------------------------------------------------
def cmd_worker(args: argparse.Namespace) -> int:
    from tunebook.execution.worker import main_worker

    return main_worker(
        storage=args.storage, study=args.study, wait=args.wait, poll_interval=args.poll_interval,
        idle_timeout=args.idle_timeout, max_trials=args.max_trials, stale_after=args.stale_after,
        max_lost_workers=args.max_lost_workers, checkpoint_dir=args.checkpoint_dir,
    )


# procedures ------------------------------------------------------------------
def _print_conclusion(result: Any) -> int:
    print(result.conclusion)
    for name in result.studies:
        print(f"  study: {name}")
    return 0


def _fixed_pairs(pairs: list[str] | None) -> dict[str, Any]:
    import yaml

    fixed: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SpecError("--fixed", f"expected name=value, got {pair!r}", "e.g. --fixed batch_size=64")
        key, value = pair.split("=", 1)
        fixed[key] = yaml.safe_load(value)
    return fixed


def cmd_batch_size(args: argparse.Namespace) -> int:
    from tunebook.procedures import batch_size as bs
    from tunebook.storage import open_storage
    from tunebook.study import resolve_train

    make_step = resolve_train(args.step)
    if args.min < 1 or args.max < args.min:
        raise SpecError("--min", f"need 1 <= --min <= --max, got {args.min} and {args.max}", "e.g. --min 8 --max 4096")
    measurements = bs.measure(make_step, bs.powers_of_two(args.min, args.max), warmup=args.warmup, steps=args.steps)
    result = bs.decide(measurements, args.max_train_steps)
    for row in result.evidence["measurements"]:
        ratio = row["throughput_ratio_vs_half"]
        extra = f"  time x steps {row['training_time_seconds']:.1f}s" if "training_time_seconds" in row else ""
        print(f"batch {row['batch_size']:>6}: {row['seconds_per_step'] * 1e3:8.2f} ms/step  {row['examples_per_second']:10.0f} examples/s"
              + (f"  x{ratio:.2f} vs half" if ratio else "") + extra)
    if result.evidence["out_of_memory_at"]:
        print(f"batch {result.evidence['out_of_memory_at']:>6}: out of memory")
    open_storage(args.storage).add_note("batch-size", result.conclusion, {**result.evidence, "step": args.step},
                                        experiment=args.experiment)
    return _print_conclusion(result)


def cmd_lr_sweep(args: argparse.Namespace) -> int:
    from tunebook.procedures.lr_sweep import run_sweep
    from tunebook.study import resolve_train

    resolve_train(args.train)  # a bad module is a clear error before anything is stored
    if not 0 < args.low < args.high:
        raise SpecError("--low", f"need 0 < --low < --high, got {args.low} and {args.high}", "e.g. --low 1e-4 --high 1")
    result = run_sweep(args.name, train=args.train, storage=args.storage, low=args.low, high=args.high, points=args.points,
                       steps=args.steps, metric=args.metric, threshold=args.threshold, fixed=_fixed_pairs(args.fixed),
                       workers=args.workers, progress=not args.quiet)
    _print_conclusion(result)
    return 0 if result.concluded else 1


def cmd_stability(args: argparse.Namespace) -> int:
    from tunebook.execution import run
    from tunebook.procedures import stability
    from tunebook.study import load_study

    study = load_study(args.study, args.storage)
    result = stability.check(study, param=args.param)
    _print_conclusion(result)
    early = stability.early_instability_study(study, param=args.param, steps=args.steps)
    print(f"early-instability check: study {early.name} ({args.steps} steps at 2 x lr*, evaluated every step)")
    if args.run:
        run(early, workers=args.workers, progress=not args.quiet)
        from tunebook.analysis import analyze

        for f in analyze(early).warnings():
            print(f"  [{f.check}] {f.message}")
    return 0


def cmd_warmup(args: argparse.Namespace) -> int:
    from tunebook.execution import run
    from tunebook.procedures import stability
    from tunebook.study import load_study

    study = load_study(args.study, args.storage)
    unstable = args.unstable_lr
    if unstable is None:
        notes = study.storage.get_notes(study=study.name, kind="stability")
        unstable = next((n["evidence"]["unstable_learning_rate"] for n in reversed(notes) if n["evidence"].get("unstable_learning_rate")), None)
        if unstable is None:
            raise SpecError("--unstable-lr", f"no unstable rate is recorded for {study.name!r}",
                            f"run `tunebook stability {study.name}` first, or give --unstable-lr")
    warm = stability.warmup_study(study, unstable, param=args.param, factor=args.factor)
    print(f"warmup study {warm.name}: warmup_steps {warm.space.params['warmup_steps'].values} at base rate "
          f"{warm.space.fixed[args.param]:.3g}, {warm.max_train_steps} steps each")
    run(warm, workers=args.workers, progress=not args.quiet)
    return _print_conclusion(stability.analyze_warmup(study, warm, param=args.param))


def cmd_retrain(args: argparse.Namespace) -> int:
    from tunebook.execution import run
    from tunebook.procedures.variance import retrain
    from tunebook.study import load_study

    study = load_study(args.study, args.storage)
    replicas = retrain(study, args.trial, args.n)
    run(replicas, workers=args.workers, progress=not args.quiet)
    values = [t.value for t in replicas.trials(["completed"])]
    import numpy as np

    if len(values) >= 2:
        print(f"{replicas.name}: {len(values)} retrains, {study.objective[0]} mean {np.mean(values):.6g}, "
              f"std {np.std(values, ddof=1):.3g} (trial variance)")
    _print_outcome(replicas)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from tunebook.procedures.variance import compare
    from tunebook.study import load_study

    result = compare(load_study(args.baseline, args.storage), load_study(args.candidate, args.storage), alpha=args.alpha)
    e = result.evidence
    for side in ("baseline", "candidate"):
        print(f"{side:>9} {e[side + '_study']}: n={e[side]['n']} mean={e[side]['mean']:.6g} std={e[side]['std']:.3g}")
    print(f"difference {e['difference']:+.6g}, Welch p = {e['p_value']:.3g}, Hedges' g = {e['hedges_g']:.2f}")
    return _print_conclusion(result)


def cmd_adopt(args: argparse.Namespace) -> int:
    from tunebook.procedures.variance import adopt
    from tunebook.study import load_study

    return _print_conclusion(adopt(load_study(args.candidate, args.storage), experiment=args.experiment, force=args.force))


def cmd_next_round(args: argparse.Namespace) -> int:
    from tunebook.procedures.rounds import next_round
    from tunebook.study import load_study

    retune = tuple(r for r in (args.retune or "learning_rate").split(",") if r) if args.retune != "" else ()
    result = next_round(load_study(args.study, args.storage), args.steps, name=args.name, trials=args.trials, retune=retune)
    return _print_conclusion(result)


# dashboard -------------------------------------------------------------------
def cmd_dashboard(args: argparse.Namespace) -> int:
    from tunebook.dashboard import check_bind, serve
    from tunebook.storage import open_storage

    check_bind(args.host, args.token)
    open_storage(args.storage)  # a bad store is a clear error before the server starts
    serve(args.storage, host=args.host, port=args.port, token=args.token)
    return 0


# demo ------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from tunebook.execution import run
    from tunebook.study import create_study
    from tunebook.workloads.digits import demo_spec, train

    spec = demo_spec()
    name = spec.pop("study")
    study = create_study(
        name,
        space=spec.pop("search_space"),
        storage=args.storage,
        repro_command="tunebook " + shlex.join(args.argv),
        **spec,
    )
    started = time.monotonic()
    result = run(study, train, workers=args.workers, progress=not args.quiet)
    _print_outcome(study)
    if result.interrupted:
        return EXIT_INTERRUPTED
    print(f"demo took {time.monotonic() - started:.0f}s; the playbook's checklist says:")
    write_report(study, args.output)
    print("see the notebook with `tunebook ls`")
    return 0


# report ----------------------------------------------------------------------
def write_report(study: Any, output: str | None, top_findings: int = 5) -> Path:
    """Analyze a study, write the HTML report, print the findings summary."""
    from rich.console import Console

    from tunebook.analysis import analyze

    report = analyze(study)
    path = report.save(output or f"tunebook-report-{study.name}.html")
    console = Console(width=None if sys.stdout.isatty() else 160)
    for f in report.findings[:top_findings]:
        console.print(f"[{f.severity}] {f.check}: {f.message}\n    -> {f.action}", markup=False, highlight=False)
    if len(report.findings) > top_findings:
        console.print(f"... and {len(report.findings) - top_findings} more findings in the report", markup=False)
    print(f"report: {path.resolve()}")
    return path


def cmd_report(args: argparse.Namespace) -> int:
    from tunebook.study import load_study

    study = load_study(args.study, args.storage)
    if args.format == "terminal":
        from tunebook.analysis import analyze

        analyze(study).print()
        return 0
    write_report(study, args.output, top_findings=len(study.trials()) + 20)
    return 0


# ls --------------------------------------------------------------------------
def cmd_ls(args: argparse.Namespace) -> int:
    from tunebook.analysis.notebook import notebook_rows
    from tunebook.storage import open_storage

    rows = notebook_rows(open_storage(args.storage))
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no studies yet: `tunebook init` writes an example, `tunebook demo` runs one")
        return 0
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="tunebook experiment notebook", show_lines=True)
    for column in ("experiment / study", "goal", "config", "trials c/i/f/total", "best", "reproduce", "created"):
        table.add_column(column, overflow="fold")
    for r in rows:
        best = "-" if r["best_value"] is None else f"{r['objective']} = {r['best_value']:.4g}\n@ step {r['best_step']} (#{r['best_trial']})"
        marker = "  * baseline" if r["baseline"] else ""
        goal = r["goal"] + "".join(f"\n- {n}" for n in r["notes"][-2:])
        cells = (
            f"{r['experiment']}\n{r['study']} (round {r['round']}){marker}",
            goal,
            r["config"],
            f"{r['completed']}/{r['infeasible']}/{r['failed']}/{r['total']}",
            best,
            r["reproduce"],
            r["created"],
        )
        table.add_row(*(Text(c) for c in cells))  # user text is never read as rich markup
    # Wide enough not to fold the reproduction command when piped to a file.
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0


# status ----------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    from tunebook.analysis.notebook import ago, fmt, notebook_rows
    from tunebook.execution._runner import DEFAULT_STALE_AFTER
    from tunebook.storage import open_storage
    from tunebook.study import load_study

    storage = open_storage(args.storage)
    if not args.study:
        rows = notebook_rows(storage)
        if not rows:
            print("no studies yet")
        for r in rows:
            print(
                f"{r['study']}: {r['completed']} completed, {r['infeasible']} infeasible, {r['failed']} failed, "
                f"{r['running']} running, {r['pending']} pending of {r['total']}; best {fmt(r['best_value'])}"
            )
        return 0
    study = load_study(args.study, storage)
    now = time.time()
    trials = study.trials()
    counts = study.counts()
    print(f"study {study.name} ({study.experiment}): {study.goal}")
    print("  " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" of {len(trials)}")
    for t in trials:
        if t.state == "running":
            stale = t.heartbeat_at is not None and now - t.heartbeat_at > DEFAULT_STALE_AFTER
            print(
                f"  running #{t.number} on {t.worker_id}, heartbeat {ago(t.heartbeat_at, now)}"
                + ("  STALE: its worker looks dead; it is re-queued on the next claim" if stale else "")
            )
        elif t.state == "pending" and t.attempts:
            print(f"  re-queued #{t.number} (attempts {t.attempts}, lost workers {t.lost_workers})")
    best = study.best_trial()
    if best is not None:
        print(f"  best {study.objective[0]} = {best.value:.6g} at step {best.best_step}, trial #{best.number}: {best.params}")
    for t in trials:
        if t.state == "infeasible":
            print(f"  infeasible #{t.number}: {t.infeasible_reason}")
        elif t.state == "failed":
            last = (t.error or "").strip().splitlines()[-1:] or [""]
            print(f"  failed #{t.number}: {last[0]}")
    return 0


# init ------------------------------------------------------------------------
ADAM_RANGES = {
    "learning_rate": "{min: 1.0e-4, max: 1.0e-1, scale: log}",
    "beta1": "{min: 0.5, max: 0.99}",
    "epsilon": "{min: 1.0e-10, max: 1.0e-3, scale: log}",
    "beta2": "{min: 0.9, max: 0.9999}",
}


def example_spec(trials: int = 12) -> str:
    """The commented example study; Adam's nuisance hyperparameters follow the playbook's budget rule."""
    from tunebook.analysis.diagnostics import adam_recommendation

    per_value = max(1, trials // 2)  # two scientific values share the budget
    tuned = adam_recommendation(per_value)
    fixed = {"beta1": "0.9", "beta2": "0.999", "epsilon": "1.0e-8"}
    nuisance_lines = "".join(f"    {name}: {ADAM_RANGES[name]}\n" for name in tuned)
    fixed_lines = "".join(f"    {name}: {value}\n" for name, value in fixed.items() if name not in tuned)
    return f"""\
# A tunebook study: one round of the playbook's incremental tuning.
# Run it with `tunebook run study.yaml --workers 2`; see it with `tunebook ls`.
study: example-weight-decay          # a new round gets a new name
goal: Does weight decay help?        # the question this round answers
train: train.py:train                # module:function, or file.py:function beside this file
objective: {{metric: val/loss, mode: min}}
trials: {trials}                           # raise it later to sample more (same sequence)
max_train_steps: 200                 # never tuned inside a study
search_space:
  scientific:                        # what the study measures
    weight_decay: {{choice: [0.0, 1.0e-2]}}
  nuisance:                          # optimized away for a fair comparison
    # Adam, as the playbook says for {per_value} trials per scientific value: {', '.join(tuned)}
{nuisance_lines}  fixed:                             # held constant
    batch_size: 32
{fixed_lines}infeasible_if:                       # NaN/Inf always counts as infeasible
  train/loss: {{above: 1.0e+3}}
"""

EXAMPLE_TRAIN = '''\
"""An example training function for tunebook: linear regression in PyTorch.

tunebook calls train(trial) once per trial. trial.params holds every
hyperparameter (scientific, nuisance and fixed); trial.seed is the trial's seed.
"""

import torch


def train(trial):
    hp = trial.params
    torch.manual_seed(trial.seed)
    x = torch.randn(512, 8)
    y = x @ torch.linspace(-1, 1, 8) + 0.1 * torch.randn(512)
    x_val, y_val = x[448:], y[448:]
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=hp["learning_rate"], betas=(hp["beta1"], hp["beta2"]),
                            eps=hp["epsilon"], weight_decay=hp["weight_decay"])

    start = 1
    resumed = trial.restore()                      # after an interruption: continue
    if resumed is not None:
        model.load_state_dict(resumed.state["model"])
        opt.load_state_dict(resumed.state["optimizer"])
        start = resumed.step + 1

    for step in range(start, trial.max_train_steps + 1):
        idx = torch.randint(0, 448, (hp["batch_size"],))
        loss = torch.nn.functional.mse_loss(model(x[idx]).squeeze(-1), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        trial.log(step, **{"train/loss": loss.detach()})   # a tensor: no device sync
        if step % 20 == 0:
            with torch.no_grad():
                val = torch.nn.functional.mse_loss(model(x_val).squeeze(-1), y_val)
            trial.log(step, **{"val/loss": val})
            trial.checkpoint(step, {"model": model.state_dict(), "optimizer": opt.state_dict()})
'''


def cmd_init(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if not folder.is_dir():
        raise SpecError("--dir", f"folder {str(folder)!r} does not exist", "create it first")
    if args.trials < 1:
        raise SpecError("--trials", f"expected a positive number, got {args.trials}", "e.g. --trials 24")
    files = {folder / "study.yaml": example_spec(args.trials), folder / "train.py": EXAMPLE_TRAIN}
    existing = [str(p) for p in files if p.exists()]
    if existing and not args.force:
        raise SpecError("--dir", f"{existing[0]} exists already", "pass --force to overwrite, or --dir another folder")
    for path, text in files.items():
        path.write_text(text)
        print(f"wrote {path}")
    print(f"next: tunebook run {folder / 'study.yaml'} --workers 2")
    return 0


# parser ----------------------------------------------------------------------
def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tunebook",
        description="The Deep Learning Tuning Playbook as software.",
        epilog="example: tunebook demo && tunebook ls",
    )
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    def verb(name: str, handler: Callable[[argparse.Namespace], int], help: str, example: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=f"example: {example}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler)
        if name != "init":
            p.add_argument("--storage", help="sqlite:///file.db (default ./tunebook.db, or $TUNEBOOK_STORAGE) or postgresql://...")
        return p

    def running_options(p: argparse.ArgumentParser, workers: int = 1) -> None:
        p.add_argument("--workers", type=_positive, default=workers, help="worker processes (0: in this process)")
        p.add_argument("--quiet", action="store_true", help="no progress output")

    p = verb("run", cmd_run, "run (or resume) the study described by a YAML spec", "tunebook run study.yaml --workers 2")
    p.add_argument("spec", help="the study's YAML file")
    p.add_argument("--workers", type=_positive, default=1, help="worker processes (0: in this process)")
    p.add_argument("--devices", help="comma-separated device ids, one per worker (CUDA_VISIBLE_DEVICES)")
    p.add_argument("--checkpoint-dir", help="where checkpoints go (default: beside the SQLite file)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--executor", choices=("local", "ray"), default="local", help="local processes or one Ray task per trial")
    p.add_argument("--create-only", action="store_true", help="create (or extend) the study and stop: workers run it")
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="Ray: CPUs per trial")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="Ray: GPUs per trial")

    p = verb("worker", cmd_worker, "claim and run pending trials from a shared store (one per machine or GPU)",
             "tunebook worker --storage postgresql://tb@db-host/tunebook --wait")
    p.add_argument("--study", help="only this study (default: any study in the store)")
    p.add_argument("--wait", action="store_true", help="keep polling for new trials instead of exiting when none is left")
    p.add_argument("--poll-interval", type=float, default=2.0)
    p.add_argument("--idle-timeout", type=float, help="with --wait: exit after this many idle seconds")
    p.add_argument("--max-trials", type=int, help="exit after this many trials")
    p.add_argument("--stale-after", type=float, default=60.0, help="seconds without heartbeat before a running trial is re-queued")
    p.add_argument("--max-lost-workers", type=int, default=3, help="a trial whose workers died this many times is failed")
    p.add_argument("--checkpoint-dir", help="where checkpoints go (a shared filesystem for several machines)")

    p = verb("dashboard", cmd_dashboard, "the notebook, findings and figures in the browser (read-only)",
             "tunebook dashboard --port 8080")
    p.add_argument("--port", type=_positive, default=8080)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; anything but localhost needs --token")
    p.add_argument("--token", help="secret every request must carry (?token=, cookie, or Authorization: Bearer)")

    p = verb("batch-size", cmd_batch_size, "measure throughput over powers of two and recommend a batch size",
             "tunebook batch-size tunebook.workloads.digits:make_step --max 2048")
    p.add_argument("step", help="module:function taking a batch size and returning a zero-argument training step")
    p.add_argument("--min", type=int, default=8)
    p.add_argument("--max", type=int, default=4096)
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--steps", type=int, default=20, help="timed steps per window (best of 3 windows)")
    p.add_argument("--max-train-steps", type=int, help="show the resource view: time per step x steps")
    p.add_argument("--experiment", default="batch-size", help="notebook experiment for the conclusion")

    p = verb("lr-sweep", cmd_lr_sweep, "pick an initial max_train_steps with a constant learning-rate sweep",
             "tunebook lr-sweep --train tunebook.workloads.digits:train --metric train/error --threshold 0 --steps 1000")
    p.add_argument("--train", required=True, help="module:function")
    p.add_argument("--name", default="lr-sweep")
    p.add_argument("--low", type=float, default=1e-4)
    p.add_argument("--high", type=float, default=1.0)
    p.add_argument("--points", type=int, default=7)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--metric", default="train/error", help="the training metric that shows 'perfect' performance")
    p.add_argument("--threshold", type=float, default=0.0)
    p.add_argument("--fixed", action="append", help="name=value held constant (repeatable)")
    running_options(p)

    p = verb("stability", cmd_stability, "is instability limiting the learning rate? (lr*, the rates above it, the early check)",
             "tunebook stability lr-sweep --run")
    p.add_argument("study")
    p.add_argument("--param", default="learning_rate")
    p.add_argument("--steps", type=int, default=500, help="early-instability check length")
    p.add_argument("--run", action="store_true", help="run the early-instability check now")
    running_options(p)

    p = verb("warmup", cmd_warmup, "the warmup study: shortest warmup that trains stably at 10x the unstable rate",
             "tunebook warmup lr-sweep")
    p.add_argument("study")
    p.add_argument("--unstable-lr", type=float, help="default: what `tunebook stability` recorded")
    p.add_argument("--factor", type=float, default=10.0, help="base rate = factor x unstable rate")
    p.add_argument("--param", default="learning_rate")
    running_options(p)

    p = verb("retrain", cmd_retrain, "retrain one trial with new seeds to measure trial variance",
             "tunebook retrain wd-ablation --trial best --n 5")
    p.add_argument("study")
    p.add_argument("--trial", default="best", help="'best' or a trial number")
    p.add_argument("--n", type=int, default=5)
    running_options(p)

    p = verb("compare", cmd_compare, "baseline against candidate by their retrains: Welch's test and effect size",
             "tunebook compare baseline-study candidate-study")
    p.add_argument("baseline")
    p.add_argument("candidate")
    p.add_argument("--alpha", type=float, default=0.05)

    p = verb("adopt", cmd_adopt, "record a compared candidate as its experiment's new baseline", "tunebook adopt candidate-study")
    p.add_argument("candidate")
    p.add_argument("--experiment")
    p.add_argument("--force", action="store_true", help="adopt without a favorable comparison")

    p = verb("next-round", cmd_next_round, "the next round: best configuration, more steps, schedule extended",
             "tunebook next-round wd-ablation --steps 4000")
    p.add_argument("study")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--name")
    p.add_argument("--trials", type=int)
    p.add_argument("--retune", default="learning_rate", help="comma-separated hyperparameters to keep tuning ('' for none)")

    p = verb("demo", cmd_demo, "run the bundled digits study end to end and write its report", "tunebook demo --workers 2")
    running_options(p, workers=2)
    p.add_argument("-o", "--output", help="report file (default tunebook-report-digits-weight-decay.html)")

    p = verb("report", cmd_report, "the playbook's plots and checklist for a study: one offline HTML file", "tunebook report wd-ablation -o report.html")
    p.add_argument("study")
    p.add_argument("-o", "--output", help="HTML file (default tunebook-report-STUDY.html)")
    p.add_argument("--format", choices=("html", "terminal"), default="html", help="terminal: findings and top trials only")

    p = verb("ls", cmd_ls, "the experiment notebook: every study, its goal, config, trials, best value, reproduction", "tunebook ls --format json")
    p.add_argument("--format", choices=("table", "json"), default="table")

    p = verb("status", cmd_status, "trial states of the stored studies, or of one study (running, stale, re-queued)", "tunebook status digits-weight-decay")
    p.add_argument("study", nargs="?")

    p = verb("init", cmd_init, "write a commented example study.yaml and train.py", "tunebook init --dir my-study")
    p.add_argument("--dir", default=".")
    p.add_argument("--force", action="store_true")
    p.add_argument("--trials", type=int, default=12, help="the trial budget: decides which Adam hyperparameters to tune")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    args.argv = argv
    args.workers_given = "--workers" in argv or any(a.startswith("--workers=") for a in argv)
    try:
        return args.handler(args)
    except (SpecError, MissingExtraError) as exc:
        print(f"tunebook: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
