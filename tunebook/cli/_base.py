"""What every group of verbs shares: the command record, the parser class, argument types, output helpers.

A verb is a handler decorated with :func:`command`; its arguments are declared
by the function given as ``arguments``, written right above the handler. Each
module of ``tunebook.cli`` lists its verbs in ``COMMANDS``; ``tunebook.cli``
builds the parser from the modules named in ``tunebook.cli.MODULES``.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tunebook.errors import SpecError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    """One verb: its name, handler, one-line help, example, and the function that declares its arguments."""

    name: str
    handler: Handler
    help: str
    example: str
    arguments: Arguments | None = None
    storage: bool = True  # takes --storage
    creates_store: bool = False  # may create the store; a verb that only reads never does (the store must exist)

    def __call__(self, args: argparse.Namespace) -> int:
        return self.handler(args)

    def install(self, sub: Any) -> argparse.ArgumentParser:
        """Add this verb to an ``add_subparsers`` object."""
        p = sub.add_parser(self.name, help=self.help, description=self.help, epilog=f"example: {self.example}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=self.handler, store_must_exist=self.storage and not self.creates_store)
        if self.storage:
            p.add_argument("--storage", help="sqlite:///file.db (default ./tunebook.db, or $TUNEBOOK_STORAGE) or postgresql://...")
        if self.arguments is not None:
            self.arguments(p)
        return p


def command(name: str, help: str, example: str, *, arguments: Arguments | None = None,
            storage: bool = True, creates_store: bool = False) -> Callable[[Handler], Command]:
    """Make a handler a verb: ``@command("ls", "the notebook", "tunebook ls", arguments=_ls_arguments)``."""
    if not example.startswith("tunebook "):
        raise ValueError(f"the example of {name!r} must be a tunebook command line")

    def wrap(handler: Handler) -> Command:
        return Command(name, handler, help, example, arguments, storage, creates_store)

    return wrap


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and still exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"tunebook: error: {message}; see `{self.prog} --help`\n")


# argument types: a bad value is argparse's one line naming the option ----------
def _number(text: str, kind: type) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def non_negative(text: str) -> int:
    """A whole number >= 0."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


#: Most worker processes one command starts (``--workers``): each is a Python process with its own copy of
#: the training libraries, so thousands would exhaust the machine before the first trial ran.
MAX_WORKERS = 256


def workers_count(text: str, minimum: int = 0) -> int:
    """``--workers``: a whole number from ``minimum`` (0: in this process) to :data:`MAX_WORKERS`."""
    value = _number(text, int)
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {minimum} or more, got {value}")
    if value > MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_WORKERS} worker processes, got {value:,} "
                                         "(on a cluster, start `tunebook worker` on each machine instead)")
    return value


def some_workers(text: str) -> int:
    """``--workers`` of ``tunebook worker``: 1 to :data:`MAX_WORKERS`."""
    return workers_count(text, minimum=1)


def positive(text: str) -> int:
    """A whole number >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (seconds, rates)."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text}")
    return value


def at_least(minimum: float, unit: str = "") -> Callable[[str], float]:
    """A finite number >= ``minimum``."""

    def parse(text: str) -> float:
        value = _number(text, float)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected at least {minimum:g}{unit}, got {text}")
        return value

    parse.__name__ = f"at_least_{minimum:g}"
    return parse


def port(text: str) -> int:
    """A TCP port, 0..65535 (0: any free port)."""
    value = _number(text, int)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value}")
    return value


def trial_ref(text: str) -> str | int:
    """'best' or a trial number."""
    if text == "best":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'best' or a trial number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 'best' or a trial number (0 or more), got {value}")
    return value


def output_file(path: str | None, option: str = "--output") -> None:
    """Refuse an output path whose folder is missing or that is a folder, before any work is done."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise SpecError(option, f"{path!r} is a folder", f"name a file in it, e.g. {option} {target / 'report.html'}")
    if not target.parent.is_dir():
        raise SpecError(option, f"folder {str(target.parent)!r} does not exist", "create it first, or write elsewhere")


def existing_store(url: str | None, field: str = "--storage") -> None:
    """A verb that only reads a store never creates one, on any backend: a SQLite file that is missing (a
    mistyped path), a database that holds no tables (an empty file, a new PostgreSQL database) or only
    another tool's tables is one line, and nothing is written (no table, no row)."""
    from tunebook.storage import local_files, normalize_url, redact, store_tables

    files = local_files(url)  # a server store keeps none here
    where = repr(str(files[0])) if files else f"database {redact(normalize_url(url))}"
    if files and not files[0].exists():
        raise SpecError(field, f"no store at {where}", _READ_ONLY_FIX)
    if files and files[0].is_dir():
        raise SpecError(field, f"{where} is a folder", "give the store's file, e.g. sqlite:///tunebook.db")
    tables = store_tables(url)
    if tables is None:
        return  # unreadable, damaged or down: opening the store says which, in one line
    if not tables:
        raise SpecError(field, f"no store in {where} (it holds no tables)", _READ_ONLY_FIX)
    if "tb_studies" not in tables:
        raise SpecError(field, f"{where} is not a tunebook store (it holds other tables)",
                        "give the tunebook store; `tunebook import optuna --storage ...` reads an Optuna database")


_READ_ONLY_FIX = "check the URL or path (or $TUNEBOOK_STORAGE); `tunebook run` creates a store, commands that only read never do"


# output ------------------------------------------------------------------------
def printable(text: Any) -> str:
    """``text`` without terminal escape sequences or control characters (stored text is never trusted)."""
    from tunebook.textsafe import terminal

    return terminal(text)


def print_outcome(study: Any) -> None:
    """Counts, best trial and store of a study: what `run`, `demo` and `retrain` end with (as ``tb.run`` does)."""
    from tunebook.columns import width, wrap
    from tunebook.study import outcome_lines

    for line in outcome_lines(study):
        print("\n".join(wrap(printable(line), width(), indent="  ", first="")))


def print_conclusion(result: Any) -> int:
    """A procedure's conclusion and the studies it made."""
    print(printable(result.conclusion))
    for name in result.studies:
        print(f"  study: {printable(name)}")
    return 0


def running_options(p: argparse.ArgumentParser, workers: int = 1) -> None:
    """--workers and --quiet, for verbs that run trials."""
    p.add_argument("--workers", type=workers_count, default=workers,
                   help=f"worker processes (0: in this process; at most {MAX_WORKERS})")
    p.add_argument("--quiet", action="store_true", help="no progress output")
