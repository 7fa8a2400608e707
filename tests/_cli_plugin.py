"""A verb group from outside tunebook.cli, for tests/cli/test_cli_unit.py: plugs in through tunebook.cli.MODULES."""

from __future__ import annotations

import argparse

from tunebook.cli import command
from tunebook.errors import SpecError, StorageUnavailable, StudyNotFound


def _raise_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=("spec", "missing", "unavailable", "bug", "interrupt", "multiline", "none"))


@command("raise", "raise an error of a given kind", "tunebook raise spec", arguments=_raise_arguments, storage=False)
def cmd_raise(args: argparse.Namespace) -> int:
    print(f"about to raise {args.what}")
    if args.what == "spec":
        raise SpecError("--what", "is bad", "pass a good one")
    if args.what == "missing":
        raise StudyNotFound("study: no study named 'x'")
    if args.what == "unavailable":
        raise StorageUnavailable("storage: the database at db-host is unreachable")
    if args.what == "bug":
        raise RuntimeError("a bug")
    if args.what == "interrupt":
        raise KeyboardInterrupt
    if args.what == "multiline":
        raise SpecError("--what", "line one\nline two \x1b[31m", "")
    return 0


COMMANDS = [cmd_raise]
