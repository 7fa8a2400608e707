"""Text for a terminal of any width: wrapped at spaces, never inside a word.

The width is ``$COLUMNS`` when it is set (as a shell sets it, or a test asks), else the terminal's own
width when the output is a terminal. Output that goes to a pipe or a file (``| grep``, a CI log) is not
wrapped at all: a line stays one record that ``grep`` can find.

A token wider than the line (a long path, a URL) is kept whole on its own line: cutting it would make it
unusable for copy and paste, and a terminal that must wrap it does so visibly at the edge.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from typing import IO, Any, Iterable

#: The width of output that is not wrapped (a pipe or a file with ``$COLUMNS`` unset).
UNWRAPPED = 1_000_000


def width(default: int = 100, stream: IO[str] | None = None) -> int:
    """The columns to wrap to: ``$COLUMNS``, else the terminal's (``default`` when it cannot be asked),
    else :data:`UNWRAPPED` for a pipe or a file."""
    env = os.environ.get("COLUMNS", "").strip()
    if env.isdigit() and int(env) > 0:
        return max(40, int(env))
    stream = stream if stream is not None else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        return UNWRAPPED
    return max(40, shutil.get_terminal_size((default, 24)).columns)


def wrap(text: str, columns: int, indent: str = "", first: str | None = None) -> list[str]:
    """``text`` as lines of at most ``columns`` characters, broken only at spaces (``first``: the first
    line's prefix, ``indent`` the others')."""
    out: list[str] = []
    for paragraph in text.splitlines() or [""]:
        out += textwrap.wrap(paragraph, columns, initial_indent=indent if (out or first is None) else first,
                             subsequent_indent=indent, break_long_words=False, break_on_hyphens=False) or [indent]
    return out


def fill(lines: Iterable[str], columns: int | None = None) -> str:
    """Each of ``lines`` wrapped at spaces to ``columns`` (default :func:`width`), continuations indented."""
    columns = columns or width()
    return "\n".join("\n".join(wrap(line, columns, indent="  ", first="")) for line in lines)


def console(stream: IO[str] | None = None) -> Any:
    """A Rich console that wraps as :func:`width` says: to ``$COLUMNS`` or the terminal, and not at all into a
    pipe or a file (Rich's own default there is 80 columns, which cuts a finding mid-sentence for ``grep``)."""
    from rich.console import Console

    columns = width(stream=stream)
    return Console(file=stream, width=10_000 if columns == UNWRAPPED else columns,
                   soft_wrap=columns == UNWRAPPED)


def pairs(items: Iterable[tuple[str, str]], columns: int, indent: str) -> list[str]:
    """``name=value`` pairs, comma-separated, as many to a line as fit; a pair is never split."""
    lines: list[str] = []
    line = indent
    for name, value in items:
        piece = f"{name}={value}"
        if line.strip() and len(line) + 2 + len(piece) > columns:
            lines.append(line + ",")
            line = indent
        line += (", " if line.strip() else "") + piece
    if line.strip():
        lines.append(line)
    return lines
