"""The report in a Jupyter cell: the answer to the goal, the findings, the best trials, the figures."""

from __future__ import annotations

from typing import Any

from tunebook.display import answer_html, counts_line, esc, findings_html, html_block, trials_table


def report_html(report: Any, *, figures: bool = True) -> str:
    """The report for a notebook cell: the answer to the goal, the findings, the best trials, the figures."""
    study = report.study
    metric, mode = study.objective
    counts: dict[str, int] = {}
    for t in report.data.trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    parts = [f"<h3>Study {esc(study.name)}</h3>",
             f"<p>{esc(study.goal) if study.goal else '<i>no goal recorded</i>'}</p>",
             f"<p class='muted'>objective {esc(metric)} ({mode}) &middot; {counts_line(counts)} &middot; "
             f"max_train_steps {study.max_train_steps}</p>"]
    answer = getattr(report, "answer", None)
    if answer is not None:
        parts.append("<h4>Answer</h4>" + answer_html(answer))
    warnings = [f for f in report.findings if f.severity == "warning"]
    parts.append(f"<h4>Findings ({len(warnings)} warnings)</h4>")
    if not report.findings:
        parts.append("<p class='muted'>No findings.</p>")
    if report.findings:
        parts.append(findings_html(report.findings))
    parts.append("<h4>Best trials</h4>" + trials_table(report.top_trials[:5], report.data.roles, metric))
    if figures and report.figures:
        from plotly.offline import get_plotlyjs

        from tunebook.analysis.figures import PLOTLY_CONFIG, render

        parts.append(f"<h4>Figures</h4><script type='text/javascript'>{get_plotlyjs()}</script>")
        for i, figure in enumerate(report.figures):
            div = render(figure).to_html(full_html=False, include_plotlyjs=False, config=PLOTLY_CONFIG,
                                         div_id=f"tunebook-{study.name}-{id(report)}-{i}")
            parts.append(f"<div class='figure' data-kind='{esc(figure.kind)}'>{div}</div>")
    return html_block("report", parts)
