"""HTML for people: a study, a trial and the answer to a study's goal (Jupyter's ``_repr_html_``).

``report_html(report)`` shows the answer to the study's goal first (when the
report carries one), then the findings and the figures; ``study_html(study)``
a summary and the best trials; ``trial_html(trial)`` a trial's
hyperparameters by role and its curves. Each returns one self-contained HTML
fragment (styles scoped under ``.tunebook``): Jupyter shows it through
``_repr_html_``, nbconvert keeps it in the exported page. A report's figures
are Plotly, with Plotly's JavaScript embedded once per report (no CDN, so an
exported notebook opens offline); a trial's curves are small inline SVGs.
"""

from __future__ import annotations

import html
import json
import math
import re
from typing import Any, Iterable, Mapping, Sequence

from tunebook.errors import failure_line



def fmt(value: Any, digits: int = 4) -> str:
    """A stored value for people: '-' when missing, short floats."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.{digits}g}"
    return str(value)

_ROLES = ("scientific", "nuisance", "fixed")
# Doubled class: outranks JupyterLab's right-aligned `:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td`.
_CSS = """
.tunebook { font-family: system-ui, sans-serif; color: #222; max-width: 1000px; }
.tunebook h3 { margin: 0.4em 0 0.2em; } .tunebook h4 { margin: 0.8em 0 0.3em; }
.tunebook table { border-collapse: collapse; margin: 0.4em 0; font-size: 0.92em; }
.tunebook.tunebook table th, .tunebook.tunebook table td { text-align: left; padding: 3px 9px; border-bottom: 1px solid #eee;
  vertical-align: top; }
.tunebook .answer { padding: 8px 12px; border-left: 5px solid #2b8c4e; background: #eef8f1; margin: 6px 0; }
.tunebook .answer.unfair { border-color: #e6a100; background: #fff8e1; }
.tunebook .finding { padding: 5px 10px; margin: 4px 0; border-left: 4px solid; }
.tunebook .finding.warning { border-color: #e6a100; background: #fff8e1; }
.tunebook .finding.info { border-color: #2b8cbe; background: #eef6fb; }
.tunebook .role { font-size: 0.8em; color: #666; } .tunebook .muted { color: #888; }
.tunebook .state-infeasible { color: #c0392b; } .tunebook .state-failed { color: #8e44ad; }
"""
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def esc(value: Any) -> str:
    """``value`` as text safe inside HTML."""
    return html.escape(str(value))


def html_block(kind: str, body: Iterable[str]) -> str:
    """The HTML parts ``body`` in one styled block (``kind``: report, study, trial)."""
    return f"<div class='tunebook tunebook-{kind}'><style>{_CSS}</style>{''.join(body)}</div>"


def counts_line(counts: Mapping[str, int]) -> str:
    """Trial counts by state as one line ("3 completed, 1 failed"; "no trials")."""
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no trials"


def _params_by_role(params: Mapping[str, Any], roles: Mapping[str, str]) -> str:
    """One row per role: ``name = value`` pairs (a hyperparameter the space does not know is listed last)."""
    rows = []
    for role in (*_ROLES, "other"):
        items = [(k, v) for k, v in params.items() if roles.get(k, "other") == role]
        if items:
            cells = ", ".join(f"<code>{esc(k)}</code> = {esc(fmt(v))}" for k, v in items)
            rows.append(f"<tr><th>{role}</th><td>{cells}</td></tr>")
    return f"<table class='params'>{''.join(rows)}</table>"


# the answer to the goal ---------------------------------------------------------------------
def answer_html(answer: Any) -> str:
    """A :class:`tunebook.analysis.answer.GoalAnswer`: the verdict, fairness, and the groups' bests."""
    metric, mode = answer.objective
    fair = "fair comparison" if answer.fair else "not yet a fair comparison"
    parts = [f"<div class='answer{'' if answer.fair else ' unfair'}' data-fair='{str(answer.fair).lower()}'>",
             f"<b>{esc(answer.verdict)}</b><br><span class='muted'>{fair}"]
    if answer.difference is not None:
        parts.append(f"; best group ahead by {fmt(answer.difference)} {esc(metric)}")
    if answer.trial_sd is not None:
        parts.append(f"; trial variance sd {fmt(answer.trial_sd)} ({esc(answer.trial_sd_source)})")
    parts.append("</span>")
    if answer.reasons:
        parts.append("<ul>" + "".join(f"<li>{esc(r)}</li>" for r in answer.reasons) + "</ul>")
    parts.append("</div>")
    if answer.groups:
        parts.append(f"<table class='groups'><tr><th>group</th><th>best {esc(metric)} ({mode})</th><th>trial</th>"
                     "<th>step</th><th>finished</th><th>limited by</th></tr>")
        for g in answer.groups:
            best = fmt(g.best_value)
            if g.mean is not None and g.sd is not None:
                best += f" <span class='muted'>({esc(g.runs_source)} {fmt(g.mean)} &plusmn; {fmt(g.sd)}, n={g.n_runs})</span>"
            mark = " &#9733;" if g.group == answer.best_group else ""
            parts.append(f"<tr><td>{esc(g.group or '(all)')}{mark}</td><td>{best}</td><td>{fmt(g.best_trial)}</td>"
                         f"<td>{fmt(g.best_step)}</td><td>{g.n_completed} completed / {g.n_trials}</td>"
                         f"<td>{esc('; '.join(g.limited_by)) or '-'}</td></tr>")
        parts.append("</table>")
    return "".join(parts)


# a report ----------------------------------------------------------------------------------
def trials_table(trials: Sequence[Any], roles: Mapping[str, str], metric: str) -> str:
    """An HTML table of ``trials``: number, value, best step, seed and the varied hyperparameters by role."""
    if not trials:
        return "<p class='muted'>No completed trial yet.</p>"
    varied: list[str] = []  # the union over the rows: a conditional hyperparameter may be missing from the first
    for t in trials:
        varied.extend(k for k in t.params if roles.get(k) in ("scientific", "nuisance") and k not in varied)
    head = "".join(f"<th>{esc(k)}<br><span class='role'>{roles[k]}</span></th>" for k in varied)
    rows = [f"<table class='trials'><tr><th>#</th><th>{esc(metric)}</th><th>best step</th><th>seed</th>{head}</tr>"]
    for t in trials:
        cells = "".join(f"<td>{esc(fmt(t.params.get(k)))}</td>" for k in varied)
        rows.append(f"<tr><td>{t.number}</td><td>{fmt(t.value)}</td><td>{fmt(t.best_step)}</td><td>{t.seed}</td>{cells}</tr>")
    rows.append("</table>")
    return "".join(rows)


# a study -----------------------------------------------------------------------------------
def _ranked(study: Any) -> list[Any]:
    """Completed trials, best first (ties: lower number)."""
    sign = 1.0 if study.objective[1] == "min" else -1.0
    done = [t for t in study.trials(["completed"]) if t.value is not None and t.value == t.value]
    return sorted(done, key=lambda t: (sign * t.value, t.number))


def study_html(study: Any, top: int = 5) -> str:
    """A study's summary (goal, objective, space by role, counts) and its best trials."""
    metric, mode = study.objective
    counts = study.counts()
    space = study.space
    rows = [
        f"<tr><th>goal</th><td>{esc(study.goal) or '<i>none recorded</i>'}</td></tr>",
        f"<tr><th>experiment</th><td>{esc(study.experiment)} (round {study.record.round})</td></tr>",
        f"<tr><th>objective</th><td>{esc(metric)} ({mode})</td></tr>",
        f"<tr><th>trials</th><td>{counts_line(counts)} of {study.trials_budget}</td></tr>",
        f"<tr><th>max_train_steps</th><td>{study.max_train_steps}</td></tr>",
    ]
    rows.append(_space_rows(space))
    parts = [f"<h3>Study {esc(study.name)}</h3><table class='summary'>{''.join(rows)}</table>",
             "<h4>Best trials</h4>", trials_table(_ranked(study)[:top], study.space.roles, metric)]
    return html_block("study", parts)


# a search space ----------------------------------------------------------------------------
def _describe(p: Any) -> str:
    spec = p.to_spec() if hasattr(p, "to_spec") else p
    return json.dumps(spec, default=str)


def _space_rows(space: Any) -> str:
    """Rows per role, and one per conditional group (the nuisance hyperparameters of one scientific value)."""
    rows = []
    for role in _ROLES:
        given = getattr(space, role)
        if given:
            text = ", ".join(f"<code>{esc(k)}</code> {esc(_describe(p))}" for k, p in given.items())
            rows.append(f"<tr><th>{role}</th><td>{text}</td></tr>")
    conditional = getattr(space, "conditional", None) or {}
    on = getattr(space, "conditional_on", None)  # the scientific hyperparameter the groups hang on
    for key, sub in conditional.items():
        text = ", ".join(f"<code>{esc(k)}</code> {esc(_describe(p))}" for k, p in sub.items()) or "<i>none</i>"
        when = key if "=" in str(key) else f"{on or '?'}={key}"
        rows.append(f"<tr><th>nuisance when <code>{esc(when)}</code></th><td>{text}</td></tr>")
    return "".join(rows)


def space_html(space: Any) -> str:
    """A search space by role, conditional groups included."""
    return html_block("space", [f"<table class='summary space'>{_space_rows(space)}</table>"])


# findings ----------------------------------------------------------------------------------
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def inline_markdown(escaped: str) -> str:
    """Already-escaped text with its inline markdown rendered: `code` and **bold**."""
    return _BOLD.sub(lambda m: f"<b>{m.group(1)}</b>", _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", escaped))


def findings_html(findings: Sequence[Any]) -> str:
    """Findings as in the report: severity, check, the message and the action with their markdown rendered."""
    parts = [f"<div class='finding {esc(f.severity)}' data-check='{esc(f.check)}'><b>{esc(f.check)}</b>: "
             f"{inline_markdown(esc(f.message))}<br>&rarr; {inline_markdown(esc(f.action))}</div>" for f in findings]
    return "".join(parts) or "<p class='muted'>No findings.</p>"


def finding_html(finding: Any) -> str:
    return html_block("finding", [findings_html([finding])])


# a stored trial ----------------------------------------------------------------------------
_STUDIES: dict[int, Any] = {}  # study id -> the last Study opened with that id (a record's display finds it)


def remember(study: Any) -> None:
    if study.record.id is not None:
        _STUDIES[study.record.id] = study


def record_html(record: Any) -> str:
    """A stored trial (``study.best_trial()``, ``study.trials()[i]``): :func:`trial_html` when its study is
    open in this process (by roles, with curves), else its state, value and hyperparameters."""
    study = _STUDIES.get(getattr(record, "study_id", None))
    if study is not None:
        stored = study.storage.get_trial(record.id)
        if stored is not None and stored.number == record.number:
            return trial_html(record, study)
    parts = [f"<h3>Trial {record.number} <span class='state-{esc(record.state)}'>({esc(record.state)})</span></h3>",
             f"<p>value {fmt(record.value)} at step {fmt(record.best_step)} &middot; seed {record.seed}</p>",
             "<h4>Hyperparameters</h4>" + _params_by_role(record.params, {})]
    return html_block("trial", parts)


def register_notebook_display() -> None:
    """In IPython/Jupyter, show stored trials and findings as HTML (their classes live in layers that know
    nothing of display). Registered once, when the first study is opened; a no-op outside IPython."""
    import sys

    if "IPython" not in sys.modules or _REGISTERED:
        return
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - a partial IPython
        return
    shell = get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["text/html"]
    # by name: the classes live in layers below display (nothing here imports them)
    formatter.for_type_by_name("tunebook.storage.base", "TrialRecord", record_html)
    formatter.for_type_by_name("tunebook.analysis.checks.base", "Finding", finding_html)
    _REGISTERED.append(True)


_REGISTERED: list[bool] = []


# a trial -----------------------------------------------------------------------------------
def _sparkline(points: Sequence[tuple[int, float]], color: str, width: int = 260, height: int = 60) -> str:
    """A curve as an inline SVG polyline (non-finite points are gaps)."""
    finite = [(s, v) for s, v in points if v is not None and math.isfinite(v)]
    if not finite:
        return "<span class='muted'>no finite value</span>"
    s0, s1 = min(s for s, _ in finite), max(s for s, _ in finite)
    v0, v1 = min(v for _, v in finite), max(v for _, v in finite)
    sx = (width - 8) / (s1 - s0 or 1)
    sy = (height - 8) / (v1 - v0 or 1)
    coords = " ".join(f"{4 + (s - s0) * sx:.1f},{height - 4 - (v - v0) * sy:.1f}" for s, v in finite)
    return (f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img'>"
            f"<polyline fill='none' stroke='{color}' stroke-width='1.5' points='{coords}'/></svg>")


def trial_html(trial: Any, study: Any = None) -> str:
    """A trial: state and value, hyperparameters by role, and a small plot per metric.

    ``trial`` is a running :class:`tunebook.Trial` (it knows its study), or a
    stored trial (``study.trials()[i]``, a report's ``TrialRow``) with its ``study``.
    """
    study = study if study is not None else getattr(trial, "study", None)
    if study is None:
        raise TypeError("trial_html needs the trial's study: trial_html(trial, study)")
    record = study.storage.get_trial(trial.id)
    own = record.params if record else getattr(trial.params, "plain", lambda: trial.params)()
    params = {**study.space.fixed, **own}  # shown, not used: a live trial's params note nothing
    metric, mode = study.objective
    state = record.state if record else "?"
    parts = [f"<h3>Trial {trial.number} of {esc(study.name)} "
             f"<span class='state-{esc(state)}'>({esc(state)})</span></h3>"]
    if record is not None:
        summary = f"{esc(metric)} ({mode}) {fmt(record.value)} at step {fmt(record.best_step)} &middot; seed {record.seed}"
        if record.attempts > 1:
            summary += f" &middot; attempt {record.attempts}"
        parts.append(f"<p>{summary}</p>")
        if record.infeasible_reason:
            parts.append(f"<p class='state-infeasible'>infeasible: {esc(record.infeasible_reason)}</p>")
        if record.error:
            parts.append(f"<p class='state-failed'>error: {esc(failure_line(record.error))}</p>")
    parts.append("<h4>Hyperparameters</h4>" + _params_by_role(params, study.space.roles))
    curves = study.metrics(trial)
    if curves:
        parts.append("<h4>Curves</h4><table class='curves'>")
        ordered = sorted(curves, key=lambda name: (name != metric, name))
        for i, name in enumerate(ordered):
            points = curves[name]
            last = points[-1]
            parts.append(f"<tr><th>{esc(name)}</th><td>{_sparkline(points, _COLORS[i % len(_COLORS)])}</td>"
                         f"<td class='muted'>{len(points)} points, last {fmt(last[1])} at step {last[0]}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p class='muted'>No metric logged yet.</p>")
    return html_block("trial", parts)
