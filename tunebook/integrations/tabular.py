"""CSV and Parquet: a trials table and a curves table in long form.

The trials table has one row per trial and a column per hyperparameter named
``role.name`` (``nuisance.learning_rate``, ``fixed.batch_size``), then the
trial's ``value``, ``best_step``, ``state``, ``seed``, ``infeasible_reason``
``error``, ``attempts``, ``replicate_of`` (the number of the search trial a
replicate re-runs; blank for a search trial), ``length_probe_of`` and
``max_train_steps`` (a length probe: the search trial it trains longer, and its
own step budget; every other trial has the study's). A trial without a hyperparameter (conditional spaces) leaves
its cell blank. The curves go to a second file beside the first, with a
``-curves`` suffix (``trials.csv`` -> ``trials-curves.csv``): one row per
``(trial, metric, step, value)``.

CSV needs nothing beyond the standard library; Parquet needs pyarrow
(``tunebook[parquet]``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from tunebook.errors import SpecError
from tunebook.integrations.export import require, roles_of, study_rows, trial_curves
from tunebook.study import Study
from tunebook.textsafe import csv_cell, csv_row

TRIAL_COLUMNS = ("number", "state", "value", "best_step", "seed", "infeasible_reason", "error", "attempts", "replicate_of",
                 "length_probe_of", "max_train_steps")
CURVE_COLUMNS = ("trial", "metric", "step", "value")


def curves_path(path: str | Path) -> Path:
    """Where the curves of the trials table at ``path`` go: ``name-curves.ext``."""
    path = Path(path)
    return path.with_name(f"{path.stem}-curves{path.suffix}")


def param_columns(study: Study, params_seen: list[str]) -> list[tuple[str, str]]:
    """``(column, name)`` per hyperparameter: the space's order first, then any the trials carry beyond it."""
    roles = roles_of(study)
    names = list(study.space.params) + list(study.space.fixed)
    names += [n for n in params_seen if n not in names]
    return [(f"{roles.get(n, 'unknown')}.{n}", n) for n in names]


def tables(study: Study) -> tuple[list[str], list[dict[str, Any]], list[tuple[int, str, int, float]]]:
    """The trials table (columns, rows) and the curve rows, as plain Python values."""
    from tunebook.analysis.data import probe_of, replicate_of

    trials = study_rows(study)
    of = replicate_of(study)  # a replicate's number -> the search trial it re-runs
    probes = probe_of(study)  # a length probe's number -> (the search trial it trains longer, its steps)
    seen: list[str] = []
    for t in trials:
        seen.extend(n for n in t.params if n not in seen)
    params = param_columns(study, seen)
    columns = [*[c for c, _ in params], *TRIAL_COLUMNS]
    rows: list[dict[str, Any]] = []
    curves: list[tuple[int, str, int, float]] = []
    for t in trials:
        row: dict[str, Any] = {column: _cell(t.params[name]) if name in t.params else None for column, name in params}
        row.update(number=t.number, state=t.state, value=t.value, best_step=t.best_step, seed=t.seed,
                   infeasible_reason=t.infeasible_reason, error=t.error, attempts=t.attempts,
                   replicate_of=of.get(t.number), length_probe_of=probes.get(t.number, (None,))[0],
                   max_train_steps=probes.get(t.number, (None, study.max_train_steps))[1])
        rows.append(row)
        for metric, points in sorted(trial_curves(study, t).items()):
            curves.extend((t.number, metric, step, value) for step, value in points)
    return columns, rows, curves


def _cell(value: Any) -> Any:
    """Lists and mappings (rare fixed values) as JSON; scalars as they are."""
    return json.dumps(value) if isinstance(value, (list, dict, tuple)) else value


def _check_file(path: str | Path, suffixes: tuple[str, ...], kind: str) -> Path:
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise SpecError("target", f"{str(path)!r} does not end in {' or '.join(suffixes)}", f"name the {kind} file, e.g. trials{suffixes[0]}")
    if path.is_dir():
        raise SpecError("target", f"{str(path)!r} is a folder", f"name a {kind} file inside it")
    if not path.parent.exists():
        raise SpecError("target", f"folder {str(path.parent)!r} does not exist", "create it first")
    return path


def export_csv(study: Study, path: str | Path) -> tuple[Path, Path]:
    """Write the trials table to ``path`` and the curves to its ``-curves`` sibling; returns both paths."""
    path = _check_file(path, (".csv",), "CSV")
    columns, rows, curves = tables(study)
    with path.open("w", newline="", encoding="utf-8") as f:  # text that starts like a formula gets a leading '
        writer = csv.writer(f)
        writer.writerow(csv_row(columns))
        writer.writerows(csv_row("" if row[c] is None else row[c] for c in columns) for row in rows)
    second = curves_path(path)
    with second.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(CURVE_COLUMNS)
        out.writerows((n, csv_cell(m), s, repr(v)) for n, m, s, v in curves)
    return path, second


def _column(pa: Any, values: list[Any]) -> Any:
    """A typed Arrow column; one whose values mix types (a choice of numbers and strings) becomes text."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def export_parquet(study: Study, path: str | Path) -> tuple[Path, Path]:
    """As :func:`export_csv`, in Parquet (typed columns; a blank cell is a null)."""
    path = _check_file(path, (".parquet", ".pq"), "Parquet")
    pa = require("pyarrow", "parquet", "Parquet export")
    pq = require("pyarrow.parquet", "parquet", "Parquet export")
    columns, rows, curves = tables(study)
    pq.write_table(pa.table({c: _column(pa, [row[c] for row in rows]) for c in columns}), path)
    second = curves_path(path)
    pq.write_table(pa.table({
        "trial": pa.array([c[0] for c in curves], pa.int64()),
        "metric": pa.array([c[1] for c in curves], pa.string()),
        "step": pa.array([c[2] for c in curves], pa.int64()),
        "value": pa.array([c[3] for c in curves], pa.float64()),
    }), second)
    return path, second
