"""Stored text made inert before it is shown: in a terminal, and in a spreadsheet.

Goals, choice values, metric names and error messages are written by users
and by their training code; tunebook never trusts them when it prints them.

- :func:`terminal`: no escape sequence (CSI, OSC, two-character ESC
  sequences, the 8-bit CSI) and no other control character but tab and
  newline reaches a terminal, so stored text can neither move the cursor,
  clear the screen, retitle the window nor forge a link.
- :func:`csv_cell`: a text cell that a spreadsheet would read as a formula
  (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is
  prefixed with ``'``, as OWASP advises against CSV injection. Numbers are
  left alone: ``-0.5`` stays a number.

Every terminal format (``status``, ``ls``, ``report --format terminal``, the
procedures' conclusions) and every CSV export (``export --to csv``, the
report's and the dashboard's trials CSV) goes through these two functions.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

# Escape sequences (CSI, OSC and two-character ones, the 8-bit CSI), then any remaining C0/C1 control character but
# tab and newline, and the bidirectional overrides (text shown in another order than stored).
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

#: The first characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def terminal(text: Any) -> str:
    """``text`` without terminal escape sequences or control characters (tab and newline kept)."""
    return _CONTROL.sub("", _ESCAPES.sub("", str(text)))


def csv_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs: text starting like a formula gets a leading ``'``; other values as given."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_row(values: Iterable[Any]) -> list[Any]:
    """:func:`csv_cell` of every value of a row."""
    return [csv_cell(v) for v in values]


__all__ = ["FORMULA_STARTS", "csv_cell", "csv_row", "terminal"]
