"""Jupyter shows tunebook's objects as HTML, through a real IPython shell's display formatter: a stored
trial (``study.best_trial()``), a finding (its markdown rendered, no literal backticks), a conditional
search space (each group's nuisance hyperparameters), and the study summary with its conditional space."""

from __future__ import annotations

import pytest

import tunebook as tb
from tunebook.analysis import analyze
from tunebook.analysis.checks.base import Finding
from tunebook.analysis.jupyter import report_html

IPython = pytest.importorskip("IPython")

SPACE = tb.SearchSpace(
    scientific={"optimizer": tb.Choice(["adam", "momentum"])},
    nuisance={"weight_decay": tb.Float(1e-6, 1e-2, scale="log")},
    conditional={"optimizer=adam": {"learning_rate": tb.Float(1e-5, 1e-2, scale="log"), "beta1": tb.Float(0.8, 0.99)},
                 "optimizer=momentum": {"learning_rate": tb.Float(1e-3, 10.0, scale="log"), "momentum": tb.Float(0.8, 0.99)}},
)


@pytest.fixture(scope="module")
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    return InteractiveShell.instance()


@pytest.fixture
def study(shell, sqlite_url):
    study = tb.create_study("nb", space=SPACE, objective=("val/error", "min"), trials=4, max_train_steps=3, storage=sqlite_url,
                            goal="Is `adam` better than momentum?")
    for value in (0.4, 0.3):
        record = study.storage.claim_trial("w", study.id)
        study.storage.write_metrics(record.id, "w", [(1, "val/error", value * 2), (2, "val/error", value)])
        study.storage.finish_trial(record.id, "w", "completed", value=value, best_step=2)
    return study


def html_of(shell, obj) -> str:
    data, _ = shell.display_formatter.format(obj)
    assert "text/html" in data, (type(obj), list(data))
    return data["text/html"]


def test_a_stored_trial_displays_as_html(shell, study):
    best = study.best_trial()
    page = html_of(shell, best)
    assert f"Trial {best.number} of nb" in page and "completed" in page
    assert "scientific" in page and "optimizer" in page  # by role
    assert "val/error" in page and "<svg" in page  # its curve
    assert "TrialRecord(" not in page


def test_a_finding_renders_its_markdown(shell, study):
    finding = Finding("search_space_boundary", "warning", "The best `learning_rate` is at the **upper** edge (trial #1).",
                      "Widen `learning_rate` and run a new study.")
    page = html_of(shell, finding)
    assert "<code>learning_rate</code>" in page and "<b>upper</b>" in page
    assert "`" not in page and "**" not in page
    report = report_html(analyze(study), figures=False)
    assert "`" not in report.split("<h4>Findings")[1].split("<h4>")[0]


def test_a_conditional_space_and_the_study_summary_show_each_group(shell, study):
    for page in (html_of(shell, SPACE), html_of(shell, study)):
        assert "nuisance when <code>optimizer=adam</code>" in page
        assert "beta1" in page and "momentum" in page
        adam = page[page.index("optimizer=adam"):]
        assert "beta1" in adam.split("</tr>")[0]  # beta1 belongs to adam's row
        mom = page[page.index("optimizer=momentum"):]
        assert "<code>momentum</code>" in mom.split("</tr>")[0] and "beta1" not in mom.split("</tr>")[0]
