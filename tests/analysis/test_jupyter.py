"""Jupyter renderers: the report (answer, findings, figures), a study, a trial."""

from __future__ import annotations

from html.parser import HTMLParser

import tunebook as tb
from _exports import make_study
from tunebook.analysis.answer import GoalAnswer, GroupResult
from tunebook.analysis.jupyter import report_html
from tunebook.display import study_html, trial_html


class _Tags(HTMLParser):
    """Counts start tags and checks every opened element is closed (the fragment nests well)."""

    VOID = {"br", "meta", "img", "input", "hr", "link", "polyline"}

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.stack: list[str] = []
        self.attrs: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.attrs.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()


def _parse(fragment: str) -> _Tags:
    parser = _Tags()
    parser.feed(fragment)
    parser.close()
    assert parser.stack == []
    return parser


def test_report_html_shows_the_answer_findings_and_figures(sqlite_url):
    study = make_study(sqlite_url)
    report = tb.analyze(study)
    plain = report_html(report)
    tags = _parse(plain)
    checks = [a["data-check"] for tag, a in tags.attrs if tag == "div" and "data-check" in a]
    assert checks == [f.check for f in report.findings] and checks
    figures = [a["data-kind"] for tag, a in tags.attrs if tag == "div" and a.get("class") == "figure"]
    assert figures == [f.kind for f in report.figures]
    answer = report.answer
    assert "<h4>Answer</h4>" in plain and plain.index("<h4>Answer</h4>") < plain.index("Findings")
    assert all(g.group in plain for g in answer.groups)
    assert "Does the optimizer matter?" in plain

    best = report.top_trials[0]
    report.answer = GoalAnswer(  # what the checks will attach (tunebook.analysis.answer)
        goal=study.goal, objective=study.objective,
        groups=[GroupResult("optimizer=adam", {"optimizer": "adam"}, 4, 3, best.value, best.number, best.best_step),
                GroupResult("optimizer=sgd", {"optimizer": "sgd"}, 4, 3, 0.2, 7, 100,
                            limited_by=["learning_rate at its upper bound"])],
        best_group="optimizer=adam", difference=0.02, trial_sd=0.004, trial_sd_source="paired seeds",
        fair=False, reasons=["optimizer=sgd: learning_rate at its upper bound"],
        verdict="adam beats sgd by 0.02 val/error, but sgd's learning rate range is too narrow.",
    )
    with_answer = report_html(report, figures=False)
    tags = _parse(with_answer)
    assert [a.get("data-fair") for tag, a in tags.attrs if tag == "div" and "data-fair" in a] == ["false"]
    assert "adam beats sgd by 0.02 val/error" in with_answer and "learning_rate at its upper bound" in with_answer
    assert with_answer.index("Answer") < with_answer.index("Findings")
    assert "plotly" not in with_answer.lower()


def test_study_html_has_the_summary_and_best_trials(sqlite_url):
    study = make_study(sqlite_url)
    fragment = study_html(study, top=3)
    tags = _parse(fragment)
    assert "6 completed, 2 infeasible of 8" in fragment
    best = study.best_trial()
    assert f"<tr><td>{best.number}</td>" in fragment
    assert tags.counts["tr"] >= 3 + 1 + 5  # header + 3 trials + the summary rows


def test_trial_html_has_params_by_role_and_a_curve_per_metric(sqlite_url):
    study = make_study(sqlite_url)
    completed, infeasible = study.trials(["completed"])[0], study.trials(["infeasible"])[0]
    fragment = trial_html(completed, study)
    tags = _parse(fragment)
    assert tags.counts["svg"] == len(study.metrics(completed)) == 2
    for role, name in (("scientific", "optimizer"), ("nuisance", "learning_rate"), ("fixed", "batch_size")):
        assert f"<tr><th>{role}</th><td><code>{name}</code>" in fragment
    assert fragment.index("val/error") < fragment.index("train/loss")  # the objective first
    bad = trial_html(infeasible, study)
    assert "infeasible: train/loss is NaN" in bad and "No metric logged yet." in bad


def test_the_repr_html_one_liners_for_the_lead_work_with_ipython(sqlite_url, monkeypatch):
    from IPython.core.formatters import HTMLFormatter

    from tunebook.analysis.report import Report
    from tunebook.study import Study

    # The exact one-line methods the lead adds to Report and Study (NOTES-exporters.md).
    def report_repr(self) -> str: return __import__("tunebook.analysis.jupyter", fromlist=["_"]).report_html(self)  # noqa: E704

    def study_repr(self) -> str: return __import__("tunebook.display", fromlist=["_"]).study_html(self)  # noqa: E704

    monkeypatch.setattr(Report, "_repr_html_", report_repr, raising=False)
    monkeypatch.setattr(Study, "_repr_html_", study_repr, raising=False)
    study = make_study(sqlite_url)
    formatter = HTMLFormatter()
    assert formatter(study).startswith("<div class='tunebook tunebook-study'>")
    assert formatter(tb.analyze(study)).startswith("<div class='tunebook tunebook-report'>")
