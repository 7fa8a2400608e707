"""Text for a terminal of any width: wrapped at spaces, never inside a word.

A token wider than the line (a long path, a URL) is kept whole on its own line: cutting it would make it
unusable for copy and paste, and a terminal that must wrap it does so visibly at the edge.
"""

from __future__ import annotations

import shutil
import textwrap
from typing import Iterable


def width(default: int = 100) -> int:
    """The terminal's columns (``$COLUMNS`` first, as a shell sets it; ``default`` when unknown)."""
    return max(40, shutil.get_terminal_size((default, 24)).columns)


def wrap(text: str, columns: int, indent: str = "", first: str | None = None) -> list[str]:
    """``text`` as lines of at most ``columns`` characters, broken only at spaces (``first``: the first
    line's prefix, ``indent`` the others')."""
    out: list[str] = []
    for paragraph in text.splitlines() or [""]:
        out += textwrap.wrap(paragraph, columns, initial_indent=indent if (out or first is None) else first,
                             subsequent_indent=indent, break_long_words=False, break_on_hyphens=False) or [indent]
    return out


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
