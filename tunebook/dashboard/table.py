"""The study page's trial table: what the query string asks for, read through the storage contract.

:func:`parse` turns ``?state=&order=&desc=&page=&top=&p.<name>=`` into a :class:`TableQuery`, or raises
:class:`FilterError` with one line naming the field and the fix (the page shows it above the table: a
malformed filter never replaces the page). :func:`page` asks the store (``Storage.trials_page``, which
sorts and filters in the database, also by a hyperparameter) for one page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from tunebook.space import Choice
from tunebook.storage.base import Storage, TrialRecord

COLUMNS = ("number", "value", "best_step", "state", "attempts")
STATES = ("completed", "infeasible", "failed", "running", "pending")
PAGE_SIZE = 50
MAX_PAGE = 2**31 - 1


class FilterError(ValueError):
    """A table filter the page cannot apply: ``field`` names it, the message says the fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass
class TableQuery:
    """What the table shows: state filter, hyperparameter filters, sort key and page."""

    states: list[str] | None = None
    choices: dict[str, Any] = field(default_factory=dict)  # choice hyperparameter -> the value kept
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # numeric -> (lo, hi)
    order: str = "value"  # a column of COLUMNS, or "p.<hyperparameter>"
    descending: bool = False
    offset: int = 0
    limit: int = PAGE_SIZE


def parse_range(text: str) -> tuple[float | None, float | None] | None:
    """``"lo..hi"`` (either side may be empty) as floats, or None when it is not one."""
    lo, sep, hi = text.partition("..")
    if not sep:
        return None
    try:
        a = float(lo) if lo.strip() else None
        b = float(hi) if hi.strip() else None
    except ValueError:
        return None
    if (a is not None and not math.isfinite(a)) or (b is not None and not math.isfinite(b)):
        return None
    return a, b


def choice_value(param: Choice, text: str) -> Any:
    """The choice's value whose text is ``text`` (the typed value, as stored), or raise KeyError."""
    for v in param.values:
        if str(v) == text:
            return v
    raise KeyError(text)


def _positive(qp: Mapping[str, str], name: str) -> int | None:
    text = (qp.get(name) or "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise FilterError(name, f"{text!r} is not a whole number; give e.g. {name}=2") from None
    if not 1 <= value <= MAX_PAGE:
        raise FilterError(name, f"{value} is out of range; give 1 or more")
    return value


def _filters(q: TableQuery, qp: Mapping[str, str], params: Mapping[str, Any]) -> None:
    for name, p in params.items():
        text = (qp.get("p." + name) or "").strip()
        if not text:
            continue
        if isinstance(p, Choice):
            try:
                q.choices[name] = choice_value(p, text)
            except KeyError:
                raise FilterError(name, f"has no value {text!r}; pick one of {', '.join(map(str, p.values))}") from None
        else:
            bounds = parse_range(text)
            if bounds is None:
                raise FilterError(name, f"{text!r} is not a range; write lo..hi, e.g. 0.001..0.1 (either side may be empty)")
            q.ranges[name] = bounds


def parse(qp: Mapping[str, str], params: Mapping[str, Any], mode: str) -> TableQuery:
    """The query string's table, or :class:`FilterError`. ``params``: the study's hyperparameters."""
    order = qp.get("order") or "value"
    if order not in COLUMNS and not (order.startswith("p.") and order[2:] in params):
        raise FilterError("order", f"no column {order!r}; sort by one of {', '.join(COLUMNS)} or p.<hyperparameter>")
    desc_text = qp.get("desc")
    descending = (mode == "max") if (desc_text in (None, "") and order == "value") else desc_text == "1"
    states = [s for s in (qp.get("state") or "").split(",") if s]
    if any(s not in STATES for s in states):
        raise FilterError("state", f"no trial state {qp.get('state')!r}; use one of {', '.join(STATES)}")
    q = TableQuery(states=states or None, order=order, descending=descending)
    _filters(q, qp, params)
    top = _positive(qp, "top")
    if top is not None:  # the best N (of the sort), on one page
        q.limit = min(top, 1000)
    q.offset = ((_positive(qp, "page") or 1) - 1) * q.limit
    return q


def page(store: Storage, study_id: int, q: TableQuery) -> tuple[list[TrialRecord], int]:
    """One page of trials and the filtered total, sorted and filtered by the store."""
    order = q.order if q.order in COLUMNS else "params." + q.order[2:]
    return store.trials_page(study_id, states=q.states, order=order, descending=q.descending, offset=q.offset,
                             limit=q.limit, params_equal=q.choices, params_between=q.ranges)

