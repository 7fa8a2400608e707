"""Issue 22 item 7: stored text is inert when shown. No escape sequence from a goal, a choice value or a
trial's error reaches the terminal (`report --format terminal`, `status`, `ls`), and no CSV cell that a
spreadsheet would run as a formula leaves tunebook (`export --to csv`, the report's and the dashboard's CSV)."""

from __future__ import annotations

import csv
import io

import pytest

import tunebook as tb
from conftest import run_cli
from tunebook.textsafe import FORMULA_STARTS, csv_cell, terminal

# a window title, a screen clear, a colour, an 8-bit CSI, a bidirectional override, a hyperlink
EVIL = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\x9b1mX\u202eevil\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"
FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(1)", "\tx=1", "\rx"]


def _train(trial):
    if trial.params["opt"] == FORMULAS[1]:
        raise RuntimeError(f"boom {EVIL}")
    trial.log(1, **{"val/error": 0.5 + 0.01 * trial.number})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inert")
    url = f"sqlite:///{folder / 'store.db'}"
    study = tb.create_study("evil", goal=f"does {EVIL} help?",
                            space={"scientific": {"opt": {"choice": [f"adam{EVIL}", *FORMULAS]}},
                                   "nuisance": {"lr": {"min": 0.1, "max": 1.0}}},
                            objective=("val/error", "min"), trials=14, max_train_steps=1, storage=url)
    tb.run(study, _train, workers=0, progress=False)
    assert study.counts()["failed"] == 2 and study.counts()["completed"] == 12
    return folder, url


def _no_escapes(text: str) -> None:
    for bad in ("\x1b", "\x9b", "\x07", "\u202e"):
        assert bad not in text, repr(text[max(0, text.find(bad) - 40): text.find(bad) + 40])


@pytest.mark.parametrize("argv", [["report", "evil", "--format", "terminal"], ["status"], ["status", "evil"], ["ls"],
                                  ["report", "evil", "-o", "r.html"]], ids=" ".join)
def test_terminal_formats_print_no_escape_sequence(store, argv):
    folder, url = store
    result = run_cli(*argv, "--storage", url, cwd=folder, env={"COLUMNS": "300"})
    assert result.returncode == 0, result.stderr
    _no_escapes(result.stdout + result.stderr)
    if argv == ["status", "evil"]:
        assert "does redXevillink help" in result.stdout  # the text is shown, only its escapes go


def test_terminal_strips_sequences_and_controls_keeps_text():
    assert terminal(EVIL) == "redXevillink"  # an OSC payload (the window title) is part of its sequence
    assert terminal("a\tb\nc\x00d\x7fe\x85f") == "a\tb\ncdef"


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def _no_formulas(cells: list[str]) -> None:
    starts = [c for c in cells if c.startswith(FORMULA_STARTS)]
    # a negative number is a number, not a formula
    assert all(_is_number(c) for c in starts), starts


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_export_csv_cells_never_start_a_formula(store):
    folder, url = store
    result = run_cli("export", "evil", "--to", "csv", "trials.csv", "--storage", url, cwd=folder)
    assert result.returncode == 0, result.stderr
    trials = _cells((folder / "trials.csv").read_text(encoding="utf-8"))
    _no_formulas(trials)
    assert "'" + FORMULAS[0] in trials and "'" + FORMULAS[4] in trials  # kept, made inert
    _no_formulas(_cells((folder / "trials-curves.csv").read_text(encoding="utf-8")))


def test_report_and_dashboard_csv_cells_never_start_a_formula(store):
    """The report's download and the dashboard's /study/NAME/trials.csv are one function, analysis.html.trials_csv."""
    from tunebook.analysis.data import load
    from tunebook.analysis.html import trials_csv

    _, url = store
    data = load(tb.load_study("evil", url))
    text = trials_csv(data.trials, ["opt", "lr"], data.metric)
    _no_formulas(_cells(text))
    assert "'" + FORMULAS[3] in _cells(text)


def test_dashboard_csv_endpoint(store):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from tunebook.dashboard.app import create_app

    _, url = store
    client = TestClient(create_app(url), base_url="http://127.0.0.1")
    response = client.get("/study/evil/trials.csv")
    assert response.status_code == 200
    cells = _cells(response.text)
    _no_formulas(cells)
    assert "'" + FORMULAS[0] in cells


def test_csv_cell():
    assert [csv_cell(v) for v in ("=1", "+1", "-x", "@a", "\tz", "\rz", "ok", -0.5, 3, None)] == \
        ["'=1", "'+1", "'-x", "'@a", "'\tz", "'\rz", "ok", -0.5, 3, None]

