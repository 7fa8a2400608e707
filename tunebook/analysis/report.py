"""The report: findings first, then figures; one self-contained HTML file, or the terminal.

The HTML embeds Plotly's JavaScript once (no CDN), so it opens offline.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunebook.analysis.answer import GoalAnswer
from tunebook.analysis.checks import WARNING, CheckSpec, Finding, Thresholds, build_answer, run_checks
from tunebook.analysis.data import StudyData, TrialRow, load
from tunebook.analysis.figures import Figure, compute_figures
from tunebook.study import Study


@dataclass
class Report:
    """What :func:`analyze` returns: ``answer`` (to the goal), ``findings`` (warnings first), ``figures``, the top trials."""

    study: Study
    data: StudyData
    findings: list[Finding]
    figures: list[Figure]
    top_trials: list[TrialRow]
    created_at: float = field(default_factory=time.time)
    answer: GoalAnswer | None = None

    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    def checks(self) -> set[str]:
        return {f.check for f in self.findings}

    def __repr__(self) -> str:
        return (f"Report(study={self.study.name!r}, findings={len(self.findings)} "
                f"({len(self.warnings())} warnings), figures={len(self.figures)})")

    def _repr_html_(self) -> str:
        from tunebook.analysis.jupyter import report_html

        return report_html(self)

    # HTML ------------------------------------------------------------------
    def to_html(self) -> str:
        from tunebook.analysis.html import report_html

        return report_html(self)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_html(), encoding="utf-8")
        return path

    # terminal --------------------------------------------------------------
    def print(self, console: Any = None, top: int = 5) -> None:
        from rich.console import Console
        from rich.table import Table

        from rich.text import Text

        from tunebook.textsafe import terminal

        console = console or Console()
        s = self.study
        # Stored text (goal, choices, metric names, errors) is plain Text without escape sequences: never rich markup,
        # never a sequence that moves the cursor or clears the screen.
        console.print(Text(f"Study {terminal(s.name)}", style="bold") + Text(f": {terminal(s.goal)}"))
        if self.answer is not None:
            print_answer(self.answer, console)
        findings = Table(title=f"Findings ({len(self.warnings())} warnings)", show_lines=True)
        for column in ("severity", "check", "finding", "action"):
            findings.add_column(column, overflow="fold")
        for f in self.findings:
            style = "yellow" if f.severity == WARNING else "cyan"
            findings.add_row(Text(f.severity, style=style), Text(terminal(f.check)), Text(terminal(f.message)),
                             Text(terminal(f.action)))
        console.print(findings)
        trials = Table(title="Best trials")
        for column in ("#", terminal(s.objective[0]), "step", "params"):
            trials.add_column(Text(column), overflow="fold")
        for t in self.top_trials[:top]:
            trials.add_row(str(t.number), f"{t.value:.6g}", str(t.best_step),
                           Text(terminal(json.dumps(t.params, default=str, ensure_ascii=False))))
        console.print(trials)


def analyze(
    study: Study,
    *,
    thresholds: Thresholds | None = None,
    baseline: float | None = None,
    top: int = 10,
    checks: list[CheckSpec] | None = None,
) -> Report:
    """The answer to the study's goal, the playbook's checklist and plots (see :mod:`tunebook.analysis.checks`).

    ``checks`` selects checks by their ids and/or adds custom functions ``(data, thresholds) ->
    list[Finding]``; by default every registered check runs.
    """
    data = load(study)
    th = thresholds or Thresholds()
    findings = run_checks(data, th, checks)
    figures = compute_figures(data, th, baseline)
    answer = build_answer(data, findings, th)
    return Report(study, data, findings, figures, data.ranked()[:top], answer=answer)


def _group_rows(answer: GoalAnswer) -> list[tuple[str, str, str, str, str]]:
    """(group, best, mean +/- sd, trials, limited by) for each group, as text."""
    rows = []
    for g in answer.groups:
        best = "-" if g.best_value is None else f"{g.best_value:.4g} (#{g.best_trial}, step {g.best_step})"
        retrained = "-" if g.mean is None else (
            f"{g.mean:.4g} +/- {g.sd:.2g} (n={g.n_runs} {g.runs_source})" if g.sd is not None
            else f"{g.mean:.4g} (n={g.n_runs} {g.runs_source})")
        rows.append((g.group or "(all trials)", best, retrained, f"{g.n_completed}/{g.n_trials}",
                     "; ".join(g.limited_by) or "-"))
    return rows


def _sd_text(answer: GoalAnswer) -> str:
    dof = f", {answer.trial_dof} dof" if answer.trial_dof is not None else ""
    return f"{answer.trial_sd:.3g} (from {answer.trial_sd_source}{dof})"


def answer_html(answer: GoalAnswer | None) -> str:
    """The headline block: the answer to the goal, each group's best, fairness."""
    if answer is None:
        return ""
    esc = html.escape
    state = "fair" if answer.fair else "not-fair"
    sd = "" if answer.trial_sd is None else f" Trial standard deviation: {_sd_text(answer)}."
    parts = [
        f"<div class='answer {state}' data-fair='{str(answer.fair).lower()}'>",
        "<h2>Answer</h2>",
        f"<p class='verdict'>{esc(answer.verdict)}</p>",
        f"<p class='fairness'><b>{'Fair comparison' if answer.fair else 'Not yet a fair comparison'}</b>.{esc(sd)}</p>",
    ]
    if answer.reasons:
        parts.append("<ul class='reasons'>" + "".join(f"<li>{esc(r)}</li>" for r in answer.reasons) + "</ul>")
    parts.append(f"<table class='groups'><tr><th>group</th><th>best {esc(answer.objective[0])}</th>"
                 "<th>re-runs of the best: mean +/- sd</th><th>completed/finished</th><th>limited by</th></tr>")
    for row in _group_rows(answer):
        parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
    parts.append("</table></div>")
    return "\n".join(parts)


def print_answer(answer: GoalAnswer, console: Any) -> None:
    """The answer to the goal in the terminal: the verdict, then one row per group."""
    from rich.table import Table
    from rich.text import Text

    from tunebook.textsafe import terminal

    style = "green" if answer.fair else "yellow"
    console.print(Text("Answer: ", style="bold") + Text(terminal(answer.verdict), style=style))
    if answer.trial_sd is not None:
        console.print(Text(terminal(f"Trial standard deviation: {_sd_text(answer)}")))
    table = Table(title="Each group's best" if any(g.group for g in answer.groups) else None)
    for column in ("group", f"best {answer.objective[0]}", "re-runs of the best: mean +/- sd", "completed/finished", "limited by"):
        table.add_column(Text(terminal(column)), overflow="fold")
    for row in _group_rows(answer):
        table.add_row(*(Text(terminal(c)) for c in row))
    console.print(table)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } .goal { font-size: 1.1em; color: #444; }
table { border-collapse: collapse; margin: 1em 0; } th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid #eee; vertical-align: top; }
.finding { padding: 8px 12px; margin: 8px 0; border-left: 5px solid; border-radius: 3px; }
.finding.warning { border-color: #e6a100; background: #fff8e1; } .finding.info { border-color: #2b8cbe; background: #eef6fb; }
.action { margin-top: 4px; color: #333; } .figure { margin: 1.5em 0; } .footer { color: #888; font-size: 0.9em; }
code { font-size: 0.9em; }
.answer { padding: 10px 14px; margin: 1em 0; border-left: 6px solid; border-radius: 3px; }
.answer.fair { border-color: #2ca02c; background: #f0faf0; } .answer.not-fair { border-color: #e6a100; background: #fff8e1; }
.verdict { font-size: 1.1em; }
"""
