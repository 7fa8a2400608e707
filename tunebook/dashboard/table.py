"""The study page's trial table: one page of trials, filtered and sorted in SQL by any column.

The storage's ``trials_page`` sorts by the trial columns; a hyperparameter lives
in the JSON ``params`` text, so this module sorts and filters on it with the
database's JSON functions (SQLite's ``json_extract``, PostgreSQL's ``jsonb``).
A trial that lacks a hyperparameter (a conditional one) sorts last, like a
trial with no value. Stores other than SQL ones are sorted in Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from tunebook.space import Choice

COLUMNS = ("number", "value", "best_step", "state", "attempts")
MAX_NUMBER = 2**31 - 1  # trial numbers and pages beyond this are 404 (PostgreSQL's INTEGER)


@dataclass
class TableQuery:
    """What the table shows: state filter, hyperparameter filters, sort key and page."""

    states: list[str] | None = None
    choices: dict[str, Any] = field(default_factory=dict)  # choice hyperparameter -> the value kept
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # numeric -> (lo, hi)
    order: str = "value"  # a column of COLUMNS, or "p.<hyperparameter>"
    descending: bool = False
    offset: int = 0
    limit: int = 50


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
    """The choice's value whose text is ``text`` (the typed value, for SQL), or raise KeyError."""
    for v in param.values:
        if str(v) == text:
            return v
    raise KeyError(text)


def _json_value(store: Any, name: str) -> Any:
    from tunebook.storage.sql import trials

    if store.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        return sa.cast(trials.c.params, JSONB).op("->")(name)
    return sa.func.json_extract(trials.c.params, f'$."{name}"')


def _json_number(store: Any, name: str) -> Any:
    from tunebook.storage.sql import trials

    if store.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        return sa.cast(sa.cast(trials.c.params, JSONB).op("->>")(name), sa.Float)
    return sa.func.json_extract(trials.c.params, f'$."{name}"')


def trials_page(store: Any, study_id: int, q: TableQuery) -> tuple[list[Any], int]:
    """One page of trials and the filtered total."""
    if not hasattr(store, "_reader") or getattr(store, "dialect", None) not in ("sqlite", "postgresql"):
        return _python_page(store, study_id, q)
    from tunebook.storage.sql import trials

    where: list[Any] = [trials.c.study_id == study_id]
    if q.states:
        where.append(trials.c.state.in_(q.states))
    for name, value in q.choices.items():
        if store.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            where.append(_json_value(store, name) == sa.cast(sa.literal(_json_text(value)), JSONB))
        else:
            where.append(_json_value(store, name) == value)
    for name, (lo, hi) in q.ranges.items():
        column = _json_number(store, name)
        if lo is not None:
            where.append(column >= lo)
        if hi is not None:
            where.append(column <= hi)
    column = trials.c[q.order] if q.order in COLUMNS else _json_value(store, q.order[2:])
    keys = [column.is_(None), column.desc() if q.descending else column.asc(), trials.c.number]
    with store._reader.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(trials).where(*where)).scalar() or 0
        rows = conn.execute(sa.select(trials).where(*where).order_by(*keys).offset(q.offset).limit(q.limit)).all()
    return [store._trial(r) for r in rows], int(total)


def _json_text(value: Any) -> str:
    import json

    return json.dumps(value)


def _python_page(store: Any, study_id: int, q: TableQuery) -> tuple[list[Any], int]:
    rows = store.get_trials(study_id, states=q.states)
    for name, value in q.choices.items():
        rows = [t for t in rows if t.params.get(name) == value]
    for name, (lo, hi) in q.ranges.items():
        rows = [t for t in rows if isinstance(t.params.get(name), (int, float))
                and (lo is None or t.params[name] >= lo) and (hi is None or t.params[name] <= hi)]

    def key(t: Any) -> Any:
        v = getattr(t, q.order) if q.order in COLUMNS else t.params.get(q.order[2:])
        return v is None, v

    present = sorted((t for t in rows if key(t)[0] is False), key=lambda t: (key(t)[1], t.number), reverse=q.descending)
    if q.descending:  # ties stay in ascending number, as in SQL
        present.sort(key=lambda t: key(t)[1], reverse=True)
    absent = sorted((t for t in rows if key(t)[0]), key=lambda t: t.number)
    ordered = present + absent
    return ordered[q.offset:q.offset + q.limit], len(ordered)
