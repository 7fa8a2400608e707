"""Running studies: `run`, `worker`, `demo`, `init`.

`tunebook run` takes a YAML spec or the name of any stored study (one a
procedure derived, or one made in Python whose training function ``tb.run``
recorded); it exits 1 when the study ends with every trial failed.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from tunebook.cli._base import (
    MAX_WORKERS, at_least, command, output_file, positive, positive_float, print_outcome, printable,
    running_options, some_workers, workers_count,
)
from tunebook.errors import SpecError

#: The shortest --stale-after a worker accepts: a running trial heartbeats every second (with its metric flush),
#: so anything shorter re-queues trials whose workers are alive. Keep the default (60 s) on a busy store.
MIN_STALE_AFTER = 2.0


# run -------------------------------------------------------------------------
def _write_to_argument(p: argparse.ArgumentParser) -> None:
    from tunebook.integrations.trackers import described, live_kinds

    p.add_argument("--write-to", nargs=2, action="append", default=[], metavar=("KIND", "TARGET"),
                   help=f"stream each trial to a tracker while it trains (repeatable): {described(live_kinds())}")


def _writers(args: argparse.Namespace) -> list[Any]:
    """The live writers of ``--write-to``, checked before anything runs."""
    if not args.write_to:
        return []
    from tunebook.integrations.export import live_writers

    return live_writers(args.write_to)


def _run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="the study's YAML file, or the name of a stored study")
    p.add_argument("--train", help="with a study name: module:function or path/to/file.py:function "
                                   "(default: the one stored with the study)")
    p.add_argument("--retry-failed", action="store_true",
                   help="put failed trials back to pending first (attempts stay counted; infeasible trials stay data)")
    p.add_argument("--workers", type=workers_count, default=1,
                   help=f"worker processes (0: in this process; at most {MAX_WORKERS})")
    p.add_argument("--devices", help="comma-separated device ids, one per worker (CUDA_VISIBLE_DEVICES)")
    p.add_argument("--nproc-per-trial", type=positive, default=1,
                   help="processes per trial, with torch.distributed's environment like torchrun (with --devices: "
                        "that many devices per worker)")
    p.add_argument("--checkpoint-dir", help="where checkpoints go (default: beside the SQLite file)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--executor", choices=("local", "ray"), default="local", help="local processes or one Ray task per trial")
    p.add_argument("--create-only", action="store_true", help="create (or extend) the study and stop: workers run it")
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="Ray: CPUs per trial")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="Ray: GPUs per trial")
    _write_to_argument(p)


#: Exit code of `tunebook run` when every trial of the study failed.
EXIT_ALL_FAILED = 1


def _is_spec_file(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or Path(text).is_file()


def _devices(args: argparse.Namespace) -> list[str] | None:
    """``--devices`` as a list (None without it); sets ``--workers`` to one worker per trial's devices when not given."""
    if args.devices is None:
        return None
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    if not devices:
        raise SpecError("--devices", f"{args.devices!r} lists no device", "give comma-separated device ids, e.g. "
                        "--devices 0,1, or leave --devices out")
    if len(devices) % args.nproc_per_trial:
        raise SpecError("--devices", f"{len(devices)} devices for trials of {args.nproc_per_trial} processes",
                        f"give {args.nproc_per_trial} devices per worker")
    if not args.workers_given:
        args.workers = len(devices) // args.nproc_per_trial
    return devices


def _executor_options(args: argparse.Namespace) -> dict[str, Any]:
    """The executor's own options (Ray's address and resources per trial); refused for the local executor."""
    if args.executor == "ray" and args.nproc_per_trial > 1:
        raise SpecError("--nproc-per-trial", "the Ray executor runs one process per trial",
                        "use the local executor or `tunebook worker --nproc-per-trial N`")
    if args.executor == "ray":
        return {"address": args.address, "cpus_per_trial": args.cpus_per_trial, "gpus_per_trial": args.gpus_per_trial}
    if args.address or args.gpus_per_trial or args.cpus_per_trial != 1.0:
        raise SpecError("--executor", "--address, --cpus-per-trial and --gpus-per-trial need the Ray executor", "add --executor ray")
    return {}


def _print_refined_space(study: Any) -> None:
    """A proposing study with a parent exploration: the narrower bounds its best trials span, as a hint."""
    from tunebook.designs import get_design

    if get_design(study.design).capabilities.proposes and study.record.spec.get("parent"):
        from tunebook.designs.bayesian import refined_space
        from tunebook.study import load_study

        refined = refined_space(load_study(study.record.spec["parent"], study.storage))
        if refined:
            print(printable(f"exploration {study.record.spec['parent']} suggests narrower bounds (span of its best trials): "
                            + "; ".join(f"{k} {v['min']:.3g}..{v['max']:.3g}" for k, v in refined.items())))


@command("run", "run (or resume) a study: a YAML spec, or a stored study by name", "tunebook run study.yaml --workers 2",
         arguments=_run_arguments, creates_store=True)
def cmd_run(args: argparse.Namespace) -> int:
    from tunebook.execution import run
    from tunebook.study import study_from_spec_file

    devices = _devices(args)
    repro = "tunebook " + shlex.join(args.argv)
    options = _executor_options(args)
    writers = _writers(args)
    if _is_spec_file(args.spec):
        if args.train:
            raise SpecError("--train", "a spec file names its own training function", "set train: in the YAML instead")
        study, train = study_from_spec_file(args.spec, storage=args.storage, repro_command=repro)
    else:
        from tunebook.procedures import study_train
        from tunebook.study import load_study

        study = load_study(args.spec, args.storage)
        train = study_train(study, args.train)[1]
    _print_refined_space(study)
    if args.create_only:
        from tunebook.storage import redact

        print(f"study {printable(study.name)}: {study.trials_budget} trials stored in {redact(study.storage.url)}; "
              "run them with `tunebook worker` or `tunebook run`")
        return 0
    if args.executor == "ray":
        from tunebook.execution.ray_executor import import_ray

        import_ray()  # a missing extra is a clear error before anything runs
    # Ray: without --workers the cluster decides how many trials run at once; with it, at most that many.
    workers = args.workers if args.executor != "ray" or args.workers_given else None
    if args.retry_failed:
        retried = study.storage.retry_failed(study.id)
        print(f"{retried} failed trial(s) of {printable(study.name)} back to pending")
    result = run(
        study, train, workers=workers, devices=devices, checkpoint_dir=args.checkpoint_dir,
        progress=not args.quiet, executor=args.executor, nproc_per_trial=args.nproc_per_trial, writers=writers,
        **options,
    )
    if args.quiet:  # run() printed the summary unless quiet
        print_outcome(study)
    _warn_unread(study)
    # interrupted: run() printed the line and raised KeyboardInterrupt (exit 130)
    counts = result.counts
    if counts.get("failed", 0) and counts.get("failed", 0) == sum(counts.values()):
        print(f"error: every trial of {printable(study.name)} failed", file=sys.stderr)
        if result.problem:
            print(f"run: {result.problem}", file=sys.stderr)
        return EXIT_ALL_FAILED
    if result.problem:  # unfinished study, dead workers: never exit 0 with work undone
        print(f"run: {result.problem}", file=sys.stderr)
        return 1
    return 0


def _warn_unread(study: Any) -> None:
    """Right after a run: a varied hyperparameter the training function never read wastes the study
    (the checklist's first finding); say it now rather than at the report."""
    from tunebook.analysis.checks import Thresholds
    from tunebook.analysis.checks.fairness import check_unused_hyperparameter
    from tunebook.analysis.data import load

    for f in check_unused_hyperparameter(load(study), Thresholds()):
        if f.severity == "warning":
            print(f"warning: {printable(f.message)}\n    -> {printable(f.action)}", file=sys.stderr)


# worker ----------------------------------------------------------------------
def _worker_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", help="only this study (default: any study in the store)")
    p.add_argument("--wait", action="store_true", help="keep polling for new trials instead of exiting when none is left")
    p.add_argument("--poll-interval", type=positive_float, default=2.0, help="seconds between polls for work (above 0)")
    p.add_argument("--idle-timeout", type=positive_float, help="with --wait: exit after this many idle seconds")
    p.add_argument("--max-trials", type=positive, help="exit after this many trials")
    p.add_argument("--stale-after", type=at_least(MIN_STALE_AFTER, " s"), default=60.0,
                   help=f"seconds without heartbeat before a running trial is re-queued (at least {MIN_STALE_AFTER:g}: "
                        "trials heartbeat every second)")
    p.add_argument("--max-lost-workers", type=positive, default=3, help="a trial whose workers died this many times is failed")
    p.add_argument("--checkpoint-dir", help="where checkpoints go (a shared filesystem for several machines)")
    p.add_argument("--nproc-per-trial", type=positive, default=1,
                   help="processes per trial, with torch.distributed's environment like torchrun")
    p.add_argument("--workers", type=some_workers, default=1,
                   help=f"at most {MAX_WORKERS} worker processes on this machine, each claiming its own trials (CPU threads shared out)")
    p.add_argument("--quiet", action="store_true", help="no line per trial (the closing summary still prints)")
    _write_to_argument(p)


def _worker_pool(args: argparse.Namespace) -> int:
    """``--workers N``: N worker processes with the same arguments and a fair share of the CPU threads each;
    signals are passed on; the exit status is the worst of theirs (130 if interrupted)."""
    import os
    import signal
    import subprocess

    argv, skip = [], False
    for arg in args.argv:  # the same command without --workers
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            argv.append(arg)
    threads = str(max(1, (os.cpu_count() or 1) // args.workers))
    env = {**os.environ}
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, threads)
    procs = [subprocess.Popen([sys.executable, "-m", "tunebook", *argv], env=env) for _ in range(args.workers)]

    def forward(signum: int, frame: Any) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = [proc.wait() for proc in procs]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [code for code in codes if code != 0]
    if not failed:
        return 0
    return 130 if 130 in failed else max(failed, key=abs)


@command("worker", "claim and run pending trials from a shared store (one per machine or GPU)",
         "tunebook worker --storage postgresql://tb@db-host/tunebook --wait", arguments=_worker_arguments,
         creates_store=True)
def cmd_worker(args: argparse.Namespace) -> int:
    writers = _writers(args)  # checked here too: a bad target is one line, before any worker starts
    if args.workers > 1:
        return _worker_pool(args)
    from tunebook.execution.worker import main_worker

    return main_worker(
        storage=args.storage, study=args.study, wait=args.wait, poll_interval=args.poll_interval,
        idle_timeout=args.idle_timeout, max_trials=args.max_trials, stale_after=args.stale_after,
        max_lost_workers=args.max_lost_workers, checkpoint_dir=args.checkpoint_dir,
        nproc_per_trial=args.nproc_per_trial, writers=writers, **({"log": _silent} if args.quiet else {}),
    )


def _silent(line: str) -> None:
    """``tunebook worker --quiet``: no line per trial."""


# demo ------------------------------------------------------------------------
def _demo_arguments(p: argparse.ArgumentParser) -> None:
    running_options(p, workers=2)
    p.add_argument("-o", "--output", help="report file (default tunebook-report-digits-weight-decay.html)")


@command("demo", "run the bundled digits study end to end and write its report", "tunebook demo --workers 2",
         arguments=_demo_arguments, creates_store=True)
def cmd_demo(args: argparse.Namespace) -> int:
    from tunebook.cli.inspect import write_report
    from tunebook.execution import run
    from tunebook.study import create_study
    from tunebook.workloads.digits import demo_spec, train

    output_file(args.output)  # before minutes of training, not after
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
    run(study, train, workers=args.workers, progress=not args.quiet)
    if args.quiet:  # run() printed the summary unless quiet
        print_outcome(study)
    _warn_unread(study)
    print(f"demo took {time.monotonic() - started:.0f}s; the answer and the playbook's checklist:")
    write_report(study, args.output)
    print("see the notebook with `tunebook ls`")
    return 0


# init ------------------------------------------------------------------------
def _init_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", default=".")
    p.add_argument("--force", action="store_true")
    p.add_argument("--trials", type=int, default=12, help="the trial budget: decides which Adam hyperparameters to tune")


@command("init", "write a commented example study.yaml and train.py", "tunebook init --dir my-study",
         arguments=_init_arguments, storage=False)
def cmd_init(args: argparse.Namespace) -> int:
    from tunebook.cli._example import EXAMPLE_TRAIN, example_spec

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


COMMANDS = [cmd_run, cmd_worker, cmd_demo, cmd_init]
