"""The ``export`` and ``import`` verbs: each verb's arguments next to its handler.

``add_parsers(subparsers)`` registers both on the ``tunebook`` command's
subparsers; a handler returns the exit code and raises
:class:`~tunebook.errors.SpecError` on bad input (the CLI prints one line and
exits 2; nothing is stored).
"""

from __future__ import annotations

import argparse
from typing import Any

from tunebook.integrations.trackers import TRACKERS  # light: the exporters are imported when used


_STORAGE_HELP = "sqlite:///file.db (default ./tunebook.db, or $TUNEBOOK_STORAGE) or postgresql://..."
_EXPORT_EXAMPLES = """examples:
  tunebook export wd-ablation --to tensorboard runs/        # then: tensorboard --logdir runs/
  tunebook export wd-ablation --to mlflow sqlite:///mlflow.db
  tunebook export wd-ablation --to wandb wandb-runs/        # offline runs; upload with `wandb sync`
  tunebook export wd-ablation --to csv trials.csv           # + trials-curves.csv
  tunebook export wd-ablation --to parquet trials.parquet   # + trials-curves.parquet"""
_IMPORT_EXAMPLE = ("example: tunebook import optuna --storage sqlite:///optuna.db --study resnet-lr "
                   "--scientific optimizer --fixed batch_size && tunebook report resnet-lr")


def cmd_export(args: argparse.Namespace) -> int:
    from tunebook.integrations.export import export
    from tunebook.study import load_study

    study = load_study(args.study, args.storage)
    written = export(study, to=args.to, target=args.target)
    where = " and ".join(str(w) for w in written) if isinstance(written, tuple) else str(written)
    label = {"mlflow": f"parent run {written} in {args.target}"}.get(args.to, where)
    print(f"exported study {study.name!r} ({len(study.trials())} trials) to {args.to}: {label}")
    return 0


def cmd_import_optuna(args: argparse.Namespace) -> int:
    from tunebook.integrations.optuna_import import import_study

    study = import_study(args.storage, args.study, to=args.to, name=args.name, scientific=args.scientific,
                         fixed=args.fixed, metric=args.metric, goal=args.goal or "")
    counts = ", ".join(f"{n} {s}" for s, n in study.counts().items() if n)
    print(f"imported Optuna study {args.study!r} as {study.name!r}: {counts}")
    print(f"next: tunebook report {study.name}{f' --storage {args.to}' if args.to else ''}")
    return 0


def add_parsers(subparsers: Any) -> None:
    """Register ``export`` and ``import`` (with ``import optuna``) on the CLI's subparsers."""
    p = subparsers.add_parser(
        "export", help="write a study to a tracker or a file: " + ", ".join(TRACKERS),
        description="Write a stored study's trials, hyperparameters (with their roles) and curves to a tracker or a file.",
        epilog=_EXPORT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study", help="the study's name")
    p.add_argument("--to", required=True, choices=tuple(TRACKERS), help="where to: " + ", ".join(TRACKERS))
    p.add_argument("target", help="by tracker: " + "; ".join(f"{k}: a {t.target}, e.g. {t.example}" for k, t in TRACKERS.items()))
    p.add_argument("--storage", help=_STORAGE_HELP)
    p.set_defaults(handler=cmd_export, store_must_exist=True)  # exporting reads: a mistyped path never makes a store

    p = subparsers.add_parser("import", help="bring another tool's study into tunebook (Optuna)",
                              description="Import a study from another tool so the playbook's checklist runs on it.",
                              epilog=_IMPORT_EXAMPLE)
    sources = p.add_subparsers(dest="source", metavar="SOURCE", required=True, parser_class=type(p))
    q = sources.add_parser("optuna", help="an Optuna study in an RDB storage",
                           description="Import an Optuna study: params, states, values and intermediate values.",
                           epilog=_IMPORT_EXAMPLE)
    q.add_argument("--storage", required=True, help="the Optuna storage URL, e.g. sqlite:///optuna.db")
    q.add_argument("--study", required=True, help="the Optuna study's name")
    q.add_argument("--to", help="the tunebook store to import into: " + _STORAGE_HELP)
    q.add_argument("--name", help="the tunebook study's name (default: the Optuna study's)")
    q.add_argument("--scientific", help="comma-separated scientific parameters (the others are nuisance)")
    q.add_argument("--fixed", help="comma-separated fixed parameters (each took one value)")
    q.add_argument("--metric", help="the objective's name (default: Optuna's metric name, else 'value')")
    q.add_argument("--goal", help="the question the study answered, shown first in its report")
    q.set_defaults(handler=cmd_import_optuna)
