"""The ``tunebook`` command: a thin shell over the library.

One module per group of verbs (``run``: run, worker, demo, init;
``inspect``: status, ls, report, dashboard; ``procedures``: the playbook's
recipes). Each module lists its verbs in ``COMMANDS`` (see
:func:`tunebook.cli._base.command`); a new group plugs in by adding its module
to :data:`MODULES`.

Errors map to exit codes in one place, :func:`main`, through
:func:`tunebook.errors.exit_code_for`: a bad input prints one line naming the
field and the fix and exits 2; an unavailable store exits 3; a bug keeps its
traceback. A closed pipe (``tunebook status | head -3``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from tunebook.cli._base import EXIT_BAD_INPUT, EXIT_INTERRUPTED, Command, Parser, command, existing_store, printable
from tunebook.errors import exit_code_for

#: The modules whose ``COMMANDS`` make the verbs, in the order ``--help`` lists them: a name of a module of
#: ``tunebook.cli``, or a full dotted module path.
MODULES = ("run", "inspect", "procedures", "disk", "loop", "tunebook.integrations.cli_export")

#: Exit status after the reader of stdout went away: 1, as Python's documentation advises and as rich's
#: consoles (`ls`, `report --format terminal`) do on their own.
EXIT_BROKEN_PIPE = 1


def commands() -> list[Command]:
    """Every verb, from the modules in :data:`MODULES`."""
    out: list[Command] = []
    for module in _modules():
        out.extend(getattr(module, "COMMANDS", ()))
    return out


def _modules() -> list:
    return [importlib.import_module(name if "." in name else f"tunebook.cli.{name}") for name in MODULES]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tunebook",
        description="The Deep Learning Tuning Playbook as software.",
        epilog="example: tunebook demo && tunebook ls",
    )
    sub = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    seen: set[str] = set()
    for verb in commands():
        if verb.name in seen:
            raise ValueError(f"two verbs are named {verb.name!r}: see tunebook.cli.MODULES")
        seen.add(verb.name)
        verb.install(sub)
    for module in _modules():  # a group that builds its own subparsers (e.g. `import optuna`)
        if hasattr(module, "add_parsers"):
            module.add_parsers(sub)
    return parser


def _quiet_stdout() -> None:
    """After a broken pipe: send what is still buffered to /dev/null, so the interpreter's exit flush is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file (tests capture it)
        pass


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
        from tunebook.specio import check_storage_url

        if hasattr(args, "storage"):
            check_storage_url(args.storage)
        if getattr(args, "store_must_exist", False):
            existing_store(args.storage)
        code = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        code = exit_code_for(exc)
        if code is None:
            raise  # a bug: keep its traceback
        message = " ".join(printable(str(exc)).split()) or type(exc).__name__
        print(f"tunebook: error: {message}", file=sys.stderr)
        return code


__all__ = ["MODULES", "Command", "build_parser", "command", "commands", "main"]
