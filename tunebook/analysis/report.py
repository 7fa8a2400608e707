"""The report: findings first, then figures; one self-contained HTML file, or the terminal.

The HTML embeds Plotly's JavaScript once (no CDN), so it opens offline.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunebook.analysis.data import StudyData, TrialRow, load
from tunebook.analysis.diagnostics import WARNING, Finding, Thresholds, run_diagnostics
from tunebook.analysis.figures import Figure, compute_figures
from tunebook.study import Study


@dataclass
class Report:
    """What :func:`analyze` returns: ``findings`` (warnings first), ``figures``, the top trials."""

    study: Study
    data: StudyData
    findings: list[Finding]
    figures: list[Figure]
    top_trials: list[TrialRow]
    created_at: float = field(default_factory=time.time)

    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    def checks(self) -> set[str]:
        return {f.check for f in self.findings}

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

        console = console or Console()
        s = self.study
        from rich.markup import escape

        console.print(f"[bold]Study {escape(s.name)}[/bold]: {escape(s.goal)}", markup=True, highlight=False)
        findings = Table(title=f"Findings ({len(self.warnings())} warnings)", show_lines=True)
        for column in ("severity", "check", "finding", "action"):
            findings.add_column(column, overflow="fold")
        from rich.text import Text

        for f in self.findings:
            style = "yellow" if f.severity == WARNING else "cyan"
            findings.add_row(Text(f.severity, style=style), f.check, Text(f.message), Text(f.action))
        console.print(findings)
        trials = Table(title="Best trials")
        for column in ("#", s.objective[0], "step", "params"):
            trials.add_column(column, overflow="fold")
        for t in self.top_trials[:top]:
            trials.add_row(str(t.number), f"{t.value:.6g}", str(t.best_step), Text(json.dumps(t.params, default=str)))
        console.print(trials)


def analyze(
    study: Study, *, thresholds: Thresholds | None = None, baseline: float | None = None, top: int = 10
) -> Report:
    """The playbook's checklist and plots for a study (see :mod:`tunebook.analysis.diagnostics`)."""
    data = load(study)
    th = thresholds or Thresholds()
    findings = run_diagnostics(data, th)
    figures = compute_figures(data, th, baseline)
    return Report(study, data, findings, figures, data.ranked()[:top])


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } .goal { font-size: 1.1em; color: #444; }
table { border-collapse: collapse; margin: 1em 0; } th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid #eee; vertical-align: top; }
.finding { padding: 8px 12px; margin: 8px 0; border-left: 5px solid; border-radius: 3px; }
.finding.warning { border-color: #e6a100; background: #fff8e1; } .finding.info { border-color: #2b8cbe; background: #eef6fb; }
.action { margin-top: 4px; color: #333; } .figure { margin: 1.5em 0; } .footer { color: #888; font-size: 0.9em; }
code { font-size: 0.9em; }
"""
