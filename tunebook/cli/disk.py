"""Checkpoint disk: `prune` (a dry run unless --apply).

The policy is the study's (``keep_top_trials``, default 5: the best five finished trials keep every
checkpoint they kept, every other finished trial its best one); ``--keep-top`` overrides it for this
command. See :mod:`tunebook.checkpoints.prune`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tunebook.cli._base import command, printable


def _keep_top(text: str) -> int | None:
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative whole number or 'all', got {text!r}")
    return value


def _prune_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study")
    p.add_argument("--keep-top", type=_keep_top, default=argparse.SUPPRESS, metavar="N",
                   help="the best N finished trials keep all their checkpoints (default: the study's keep_top_trials)")
    p.add_argument("--apply", action="store_true", help="delete the files (without it: say what would go)")
    p.add_argument("--checkpoint-dir", help="where the checkpoints are (default: beside the SQLite file)")


def study_folder(study, checkpoint_dir: str | None) -> Path:
    """The study's checkpoint folder: ``<root>/<store id>/<study>``, the parent of its trials' folders."""
    from tunebook.checkpoints import checkpoint_dir as trial_folder
    from tunebook.execution.loop import default_checkpoint_root

    root = Path(checkpoint_dir) if checkpoint_dir else default_checkpoint_root(study.storage)
    return trial_folder(root, study.storage.store_id, study.name, 0).parent


def disk_line(study, checkpoint_dir: str | None) -> str | None:
    """"checkpoints: 84.3 MB in 12 files of 4 trials (FOLDER)", or None when there are none."""
    from tunebook.checkpoints import prune

    used = prune.usage(study_folder(study, checkpoint_dir))
    if not used.files:
        return None
    return f"checkpoints: {used.summary()} ({used.folder})"


@command("prune", "delete the checkpoints a finished study no longer keeps (a dry run unless --apply)",
         "tunebook prune wd-ablation --apply", arguments=_prune_arguments)
def cmd_prune(args: argparse.Namespace) -> int:
    from tunebook.checkpoints import prune
    from tunebook.storage import open_storage
    from tunebook.study import load_study

    study = load_study(args.study, open_storage(args.storage))
    top = args.keep_top if "keep_top" in args else study.keep_top_trials
    folder = study_folder(study, args.checkpoint_dir)
    before = prune.usage(folder)
    plan = prune.plan(study.storage, study.id, study.objective[1], prune.KeepPolicy(top), folder)
    keeps = "every trial keeps everything" if top is None else \
        f"the best {top} finished trials keep all their checkpoints, the other finished trials their best one"
    print(printable(f"{study.name}: {keeps}; {prune.human(before.bytes)} in {before.files} files now ({folder})"))
    if not plan.files:
        print("nothing to delete")
        return 0
    what = (f"{len(plan.remove)} checkpoint files of {plan.trials} finished trials"
            + (f" and {len(plan.orphans)} files no trial names" if plan.orphans else ""))
    if not args.apply:
        print(printable(f"would delete {what}: {prune.human(plan.bytes)} (run again with --apply)"))
        return 0
    freed = prune.apply(study.storage, plan)
    after = prune.usage(folder)
    print(printable(f"deleted {what}: {prune.human(freed)} freed; {prune.human(after.bytes)} in {after.files} files left"))
    return 0


COMMANDS = [cmd_prune]
