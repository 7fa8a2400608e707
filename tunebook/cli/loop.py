"""The playbook's loop from the command line: `next` (the study the findings call for) and `pursue` (the loop, run).

`tunebook next STUDY` prints the decision, one line per change naming the
finding behind it, and the diff of the spec; ``--write FILE`` saves the spec
(valid input for ``tunebook run FILE``), ``--run`` stores and runs it.
`tunebook pursue SPEC --budget N` runs the study and its next studies until
the answer is fair and separated (or a measured tie), or N trials are spent;
run again, it resumes. The decisions live in :mod:`tunebook.procedures.next`
and :mod:`tunebook.procedures.pursue`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tunebook.cli._base import command, output_file, positive, print_outcome, printable, running_options
from tunebook.errors import SpecError


def _next_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", help="a stored study")
    p.add_argument("--write", metavar="FILE", help="save the next study's spec as YAML (valid input for `tunebook run FILE`)")
    p.add_argument("--run", action="store_true", help="store the next study (or the extension, or the retrains) and run it")
    p.add_argument("--train", help="module:function or path/to/file.py:function for the next study "
                                   "(default: the one stored with the study)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    running_options(p)


def _with_train(proposal: Any, study: Any, ref: str | None) -> None:
    """Put ``--train`` (checked, a file made absolute) into the proposal's spec."""
    if proposal.spec is None:
        return
    if ref is not None:
        proposal.spec["train"] = ref
    elif not proposal.spec.get("train"):
        raise SpecError("--train", f"study {study.name!r} stores no training function, so the next spec would name none",
                        "pass --train module:function (or path/to/file.py:function)")


@command("next", "the next study the findings call for: its spec, the diff, and the finding behind each change",
         "tunebook next wd-ablation --write next.yaml", arguments=_next_arguments)
def cmd_next(args: argparse.Namespace) -> int:
    from tunebook.procedures.next import create_next, next_study, retrain_studies
    from tunebook.study import load_study

    output_file(args.write, "--write")
    study = load_study(args.study, args.storage)
    proposal = next_study(study)
    ref = train = None
    if (args.write or args.run) and (args.train or study.train_ref):
        from tunebook.procedures import study_train

        ref, train = study_train(study, args.train)  # imported once: worker processes pickle it by reference
    if args.write or args.run:
        _with_train(proposal, study, ref if args.train else None)
    if args.format == "json":
        print(json.dumps(proposal.as_dict(), indent=2, default=str))
    else:
        from tunebook.columns import width, wrap

        for line in proposal.lines():  # wrapped at spaces on a narrow terminal, whole lines into a pipe
            print("\n".join(wrap(printable(line), width(), indent="    ", first="")))
        if proposal.spec is not None:
            print(printable(proposal.diff()))
    if (args.write or args.run) and proposal.spec is None and proposal.action != "retrain":
        if proposal.answered:
            print("nothing to write or run: the question is answered")
            return 0
        print(f"nothing to write or run: {printable(proposal.decision)}")
        return 1
    if args.write:
        if proposal.spec is None:
            print("nothing to write: retraining is a procedure, not a spec (`--run` runs it)")
        else:
            Path(args.write).write_text(proposal.to_yaml())
            print(f"wrote {args.write}: `tunebook run {args.write}` runs it")
    if args.run:
        from tunebook.execution import run

        if train is None:  # no function stored and no --train: one line saying so, before anything is stored
            from tunebook.procedures import study_train

            study_train(study, args.train)
        made = create_next(study, proposal)  # the next studies train with the source's function
        todo = retrain_studies(study, proposal) if proposal.action == "retrain" else [made]
        for s in todo:
            run(s, train, workers=args.workers, progress=not args.quiet)
            if args.quiet:
                print_outcome(s)
    return 0


def _pursue_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="the first study's YAML file, or the name of a stored study")
    p.add_argument("--budget", type=positive, required=True, help="trials in all: every round, extension and retrain")
    p.add_argument("--train", help="module:function or path/to/file.py:function for every round "
                                   "(default: each study's stored one)")
    running_options(p)


@command("pursue", "run a study, then the next the findings call for, until the goal is answered or the budget is spent",
         "tunebook pursue study.yaml --budget 96 --workers 2", arguments=_pursue_arguments, creates_store=True)
def cmd_pursue(args: argparse.Namespace) -> int:
    from tunebook.procedures.pursue import pursue

    train = None
    if args.train:
        from tunebook.study import resolve_train

        train = resolve_train(args.train, Path.cwd())
    result = pursue(args.spec, budget=args.budget, storage=args.storage, workers=args.workers, train=train,
                    progress=not args.quiet, log=lambda line: print(printable(line), flush=True))
    return 0 if result.answered else 1


COMMANDS = [cmd_next, cmd_pursue]
