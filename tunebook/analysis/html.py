"""HTML shared by the report and the dashboard: the headline, findings as markup, figures, the trials' CSV.

The report (:func:`report_html`) is one self-contained file: Plotly's JavaScript
once (no CDN), the figures as JSON drawn by ``plots.js``, a table of contents
with anchors, a data download (every trial as CSV, inside the file), dark mode
following the system setting, and a viewport tag for phones. The dashboard's
templates use :func:`headline`, :func:`finding_html` and :func:`trials_csv`,
so both say the same things in the same number format (:data:`NUMBER_FORMAT`).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
import time
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

from tunebook.analysis.checks.base import FIGURE_OF_CHECK  # which figure a finding is about: its @check(figure=)
from tunebook.analysis.figures import PLOTLY_CONFIG, Figure, render, spec, varying
from tunebook.analysis.notebook import fmt
from tunebook.display import inline_markdown

HERE = Path(__file__).parent
STATES = ("completed", "infeasible", "failed", "running", "pending")


def num(value: Any) -> str:
    """The one number format of every page: ``fmt`` at 4 significant digits, '-' when missing."""
    return fmt(value, 4)


# headline --------------------------------------------------------------------
@dataclass
class HeadlineGroup:
    group: str
    best_value: float | None
    best_trial: int | None
    best_step: int | None
    n_trials: int
    limited_by: list[str] = field(default_factory=list)
    mean: float | None = None  # over the re-runs of the group's best (replicates, else retrains)
    sd: float | None = None
    n_runs: int = 0


@dataclass
class Headline:
    """What a study page and a report say first: the goal, its answer, the best trial, the state counts."""

    goal: str
    metric: str
    mode: str
    verdict: str | None  # from the checks' GoalAnswer when there is one
    fair: bool | None
    reasons: list[str]
    groups: list[HeadlineGroup]
    best_number: int | None
    best_value: float | None
    best_step: int | None
    best_params: list[tuple[str, str]]  # only the hyperparameters that vary, formatted
    counts: dict[str, int]  # every trial by state, the replicates included
    replicates: int = 0  # of them, the replicates (re-runs of each group's best)
    probes: int = 0  # and the length probes (the best trained longer)


def headline(report: Any) -> Headline:
    """The headline of an analysed study: ``report.answer`` when the checks filled it, else the best per scientific value."""
    data = report.data
    counts = {s: 0 for s in STATES}
    for t in [*data.trials, *data.replicates, *data.probes]:
        counts[t.state] = counts.get(t.state, 0) + 1
    best = data.best()
    names = varying(data)
    best_params = [(k, num(best.params[k])) for k in names if k in best.params] if best is not None else []
    answer = getattr(report, "answer", None)
    if answer is not None:
        groups = [HeadlineGroup(g.group, g.best_value, g.best_trial, g.best_step, g.n_trials, list(g.limited_by),
                                g.mean, g.sd, g.n_runs) for g in answer.groups]
        verdict, fair, reasons = answer.verdict, answer.fair, list(answer.reasons)
    else:
        scientific = [k for k, r in data.roles.items() if r == "scientific"]
        groups = []
        if scientific:
            finished: dict[tuple[Any, ...], int] = {}
            for t in data.trials:
                if t.state in ("completed", "infeasible") and all(k in t.params for k in scientific):
                    key = tuple(t.params[k] for k in scientific)
                    finished[key] = finished.get(key, 0) + 1
            try:
                per_value = data.best_by_scientific()
            except KeyError:  # a scientific hyperparameter absent from some trial
                per_value = {}
            for key, t in sorted(per_value.items(), key=lambda kv: (data.sign() * kv[1].value, kv[1].number)):
                label = ", ".join(f"{k}={num(v)}" for k, v in zip(scientific, key))
                groups.append(HeadlineGroup(label, t.value, t.number, t.best_step, finished.get(key, 0)))
        verdict, fair, reasons = None, None, []
    return Headline(
        goal=report.study.goal, metric=data.metric, mode=data.mode, verdict=verdict, fair=fair, reasons=reasons,
        groups=groups, best_number=None if best is None else best.number, best_value=None if best is None else best.value,
        best_step=None if best is None else best.best_step, best_params=best_params, counts=counts,
        replicates=len(data.replicates), probes=len(data.probes),
    )


# findings --------------------------------------------------------------------
_TRIAL = re.compile(r"trial #(\d+)")


def rich_text(text: str, trial_href: Callable[[int], str | None] | None = None) -> str:
    """Escaped text with its markdown (`code`, **bold**) rendered and "trial #N" linked to the trial (safe HTML)."""
    out = inline_markdown(html.escape(text, quote=True))
    if trial_href is not None:
        def link(m: re.Match[str]) -> str:
            href = trial_href(int(m.group(1)))
            return m.group(0) if href is None else f"<a class='trial-ref' href='{html.escape(href)}'>{m.group(0)}</a>"

        out = _TRIAL.sub(link, out)
    return out


def figure_index(finding: Any, figures: list[Figure]) -> int | None:
    """The figure a finding is about, as an index into ``figures``, or None."""
    kind = FIGURE_OF_CHECK.get(finding.check)
    if kind is None:
        return None
    param = (finding.evidence or {}).get("param")
    if kind == "axis" and param is not None:
        for i, f in enumerate(figures):
            if f.kind == "axis" and getattr(f.data, "param", None) == param:
                return i
    return next((i for i, f in enumerate(figures) if f.kind == kind), None)


def figure_id(figure: Figure, index: int = 0) -> str:
    """The figure's element id on a page: ``figure-`` and its key, stable while the study runs (a live page
    updates the figure of the same id); the index only for a figure without a key."""
    return dom_id(figure.key or f"{figure.kind}-{index}")


def dom_id(key: str, prefix: str = "figure-") -> str:
    """``key`` as an element id (letters, digits, ``-``, ``_``); keys that differ only in other characters
    (``val/error``, ``val_error``) keep distinct ids."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", key).strip("-")
    if slug != key:
        slug += "-" + format(zlib.crc32(key.encode()), "08x")
    return prefix + slug


def finding_html(finding: Any, figures: list[Figure], trial_href: Callable[[int], str | None] | None = None) -> str:
    """One finding as markup: severity, check, message and action, with links to its trial and its figure."""
    esc = html.escape
    index = figure_index(finding, figures)
    figure_link = (f" <a class='figure-ref' href='#{figure_id(figures[index], index)}'>see the figure</a>"
                   if index is not None else "")
    return (f"<div class='finding {esc(finding.severity)}' data-check='{esc(finding.check)}'>"
            f"<b>{esc(finding.severity)}</b> <code>{esc(finding.check)}</code>: {rich_text(finding.message, trial_href)}"
            f"{figure_link}<div class='action'>&rarr; {rich_text(finding.action, trial_href)}</div></div>")


# figures ----------------------------------------------------------------------
def script_safe(text: str) -> str:
    """JSON text that cannot close or open markup inside a ``<script>`` element."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def figure_json(figure: Figure) -> str:
    """A computed figure, rendered by Plotly, as script-safe JSON (``plots.js`` draws it)."""
    built = spec(figure)
    if built is not None:
        return script_safe(json.dumps(built, default=_plain))
    import plotly.io as pio

    return script_safe(pio.to_json(render(figure), validate=False))


def _plain(value: Any) -> Any:
    """NumPy scalars and other stragglers as JSON values."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


@lru_cache(maxsize=1)
def plots_js() -> str:
    """``plots.js`` with Plotly's dark template (used when the system prefers dark)."""
    import plotly.io as pio

    template = json.dumps(pio.templates["plotly_dark"].to_plotly_json())
    return (f"window.TUNEBOOK_DARK_TEMPLATE = {script_safe(template)};\n"
            f"window.TUNEBOOK_PLOTLY_CONFIG = {script_safe(json.dumps(PLOTLY_CONFIG))};\n" + (HERE / "plots.js").read_text(encoding="utf-8"))


# CSV ----------------------------------------------------------------------------
def trials_csv(trials: Iterable[Any], params: list[str], metric: str, replicate_of: dict[int, int] | None = None,
               probe_of: dict[int, tuple[int, int]] | None = None) -> str:
    """Trials as CSV: number, state, the objective, its step, one column per hyperparameter (blank when absent), the
    reason; with ``replicate_of`` (replicate number -> the trial it re-runs) a ``replicate_of`` column (blank for
    a search trial); with ``probe_of`` (length probe number -> (the trial it re-runs, its steps)) two more,
    ``length_probe_of`` and ``length_probe_steps``."""
    from tunebook.textsafe import csv_cell, csv_row

    out = io.StringIO()
    writer = csv.writer(out)
    extra = ([] if replicate_of is None else ["replicate_of"]) + ([] if not probe_of else ["length_probe_of",
                                                                                         "length_probe_steps"])
    writer.writerow(csv_row(["number", "state", metric, "best_step", *params, "infeasible_reason", *extra]))
    commas = len(params) + 4 + len(extra)
    lines = []
    for t in trials:  # text cells that a spreadsheet would run as a formula get a leading ' (tunebook.textsafe)
        row = [t.number, t.state, "" if t.value is None else repr(float(t.value)), "" if t.best_step is None else t.best_step,
               *["" if t.params.get(k) is None else csv_cell(t.params[k]) for k in params],
               csv_cell(t.infeasible_reason or ""),
               *([] if replicate_of is None else [replicate_of.get(t.number, "")]),
               *([] if not probe_of else list(probe_of.get(t.number, ("", ""))))]
        line = ",".join(map(str, row))
        # what csv writes for a row that needs no quoting; the writer itself for one that does
        if line.count(",") == commas and '"' not in line and "\n" not in line and "\r" not in line:
            lines.append(line + "\r\n")
        else:
            out.write("".join(lines))
            lines.clear()
            writer.writerow(row)
    out.write("".join(lines))
    return out.getvalue()


# the report --------------------------------------------------------------------
CSS = """
:root { color-scheme: light dark; --fg: #222; --bg: #fff; --muted: #666; --line: #e5e5e5; --head: #f6f8fa;
  --warn-bg: #fff8e1; --info-bg: #eef6fb; --best: #fff3d6; --link: #0b62c4; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e3e6ea; --bg: #16191d; --muted: #9aa3ad; --line: #2d333b; --head: #1f242b;
    --warn-bg: #2f2710; --info-bg: #11263a; --best: #3a3015; --link: #6cb6ff; }
}
body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 1em; max-width: 1100px; color: var(--fg); background: var(--bg); }
a { color: var(--link); }
h1 { margin-bottom: 0.2em; } .goal { font-size: 1.15em; }
.headline { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; margin: 12px 0; }
.headline .verdict { font-size: 1.05em; margin: 4px 0 8px; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--head); } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: var(--best); }
.finding { padding: 8px 12px; margin: 8px 0; border-left: 5px solid; border-radius: 3px; }
.finding.warning { border-color: #e6a100; background: var(--warn-bg); } .finding.info { border-color: #2b8cbe; background: var(--info-bg); }
.action { margin-top: 4px; } .figure { margin: 1.5em 0; min-height: 300px; } .footer, .muted { color: var(--muted); font-size: 0.9em; }
.curve-controls { font-size: 0.85em; color: var(--muted); margin-top: 8px; } .figure-box { min-width: 0; }
code { font-size: 0.9em; word-break: break-word; }
nav.toc ul { padding-left: 1.2em; } nav.toc li { margin: 2px 0; }
"""


def headline_html(h: Headline, trial_href: Callable[[int], str | None]) -> str:
    esc = html.escape

    def trial(n: int | None) -> str:
        if n is None:
            return "-"
        href = trial_href(n)
        return f"<a href='{esc(href)}'>#{n}</a>" if href else f"#{n}"

    parts = ["<section class='headline' id='headline'>"]
    parts.append(f"<p class='goal'><b>Goal:</b> {rich_text(h.goal, trial_href) if h.goal else '<i>no goal recorded</i>'}</p>")
    if h.verdict:
        parts.append(f"<p class='verdict'><b>Answer:</b> {rich_text(h.verdict, trial_href)}</p>")
        if h.reasons:
            parts.append("<p class='muted'>Not yet a fair comparison: " + "; ".join(esc(r) for r in h.reasons) + "</p>")
    if h.best_number is not None:
        params = ", ".join(f"{esc(k)}={esc(v)}" for k, v in h.best_params)
        parts.append(f"<p class='best'><b>Best trial:</b> {trial(h.best_number)}: {esc(h.metric)} = {num(h.best_value)}"
                     f" at step {num(h.best_step)}{' · ' + params if params else ''}</p>")
    else:
        parts.append("<p class='best'>No trial has completed yet.</p>")
    if h.groups:
        parts += _groups_html(h, trial)
    total = sum(h.counts.values())
    probes = f" + {h.probes} length probes" if h.probes else ""
    split = f" ({total - h.replicates - h.probes} search + {h.replicates} replicates{probes})" if h.replicates else ""
    parts.append(f"<p class='counts muted'>{total} trials{split}: "
                 + ", ".join(f"{s} {n}" for s, n in h.counts.items()) + "</p></section>")
    return "".join(parts)


def _groups_html(h: Headline, trial: Callable[[int | None], str]) -> list[str]:
    """The table of the groups: each best, and where its best was re-run, the re-runs' mean +/- sd (n)."""
    esc = html.escape
    runs = any(g.n_runs for g in h.groups)
    parts = [f"<div class='scroll'><table class='groups'><tr><th>scientific value</th><th class='num'>best {esc(h.metric)}</th>"
             "<th>trial</th><th class='num'>step</th><th class='num'>trials</th>"
             + ("<th class='num'>re-runs of the best: mean \u00b1 sd (n)</th>" if runs else "") + "<th>limited by</th></tr>"]
    for g in h.groups:
        rerun = ""
        if runs:
            sd = f" \u00b1 {num(g.sd)}" if g.sd is not None else ""
            rerun = f"<td class='num'>{num(g.mean)}{sd} ({g.n_runs})</td>" if g.n_runs else "<td class='num'>-</td>"
        parts.append(f"<tr><td>{esc(g.group) or '-'}</td><td class='num'>{num(g.best_value)}</td><td>{trial(g.best_trial)}</td>"
                     f"<td class='num'>{num(g.best_step)}</td><td class='num'>{g.n_trials}</td>{rerun}"
                     f"<td>{esc('; '.join(g.limited_by))}</td></tr>")
    parts.append("</table></div>")
    return parts


def _space_rows(study: Any) -> list[tuple[str, str, str]]:
    """``(name, role, range)`` for every hyperparameter of the study's space, fixed ones included."""
    space = study.space
    rows = []
    conditional = getattr(space, "conditional", None) or {}
    for name, p in space.params.items():
        keys = [key for key, sub in conditional.items() if name in sub]
        if keys:  # a conditional hyperparameter: its own range in each group, never the envelope of them
            rows.append((name, "nuisance (conditional)",
                         "; ".join(f"{key}: {_describe(conditional[key][name])}" for key in keys)))
        else:
            rows.append((name, space.roles.get(name, "-"), _describe(p)))
    for name, value in space.fixed.items():
        rows.append((name, "fixed", num(value)))
    return rows


def _describe(p: Any) -> str:
    values = getattr(p, "values", None)
    if values is not None:
        return "one of " + ", ".join(num(v) for v in values)
    lo, hi = getattr(p, "low", None), getattr(p, "high", None)
    scale = getattr(p, "scale", "")
    return f"[{num(lo)}, {num(hi)}] {scale}".strip()


def report_html(report: Any) -> str:
    """The report as one self-contained HTML page (see the module's docstring)."""
    from plotly.offline import get_plotlyjs

    s = report.study
    esc = html.escape
    h = headline(report)
    shown = _shown_trials(report, h)

    def trial_href(n: int) -> str | None:
        return f"#trial-{n}" if n in shown else None

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>tunebook report: {esc(s.name)}</title>",
        f"<style>{CSS}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script>",
        "</head><body>",
        f"<h1>Study {esc(s.name)}</h1>",
        headline_html(h, trial_href),
        *_contents_html(report),
        f"<h2 id='findings'>Findings ({len(report.warnings())} warnings)</h2>",
    ]
    if not report.findings:
        parts.append("<p>No findings.</p>")
    parts.extend(finding_html(f, report.figures, trial_href) for f in report.findings)
    parts += _notes_html(s, trial_href)
    parts += _study_html(s)
    parts += _trials_html(report, shown, h.best_number)
    parts.append("</table></div><h2 id='figures'>Figures</h2>")
    for i, figure in enumerate(report.figures):
        parts.append(f"<div class='figure' id='{figure_id(figure, i)}' data-kind='{figure.kind}'>"
                     f"<script type='application/json'>{figure_json(figure)}</script></div>")
    parts.append(f"<p class='footer'>tunebook report, {time.strftime('%Y-%m-%d %H:%M', time.localtime(report.created_at))}</p>")
    parts.append(f"<script>{plots_js()}</script>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _shown_trials(report: Any, h: Headline) -> set[int]:
    """The trials the page lists (and links to): the best few, those a finding names, each group's best."""
    shown = {t.number for t in report.top_trials}
    for f in report.findings:
        shown.update(int(n) for n in _TRIAL.findall(f.message))
    if h.best_number is not None:
        shown.add(h.best_number)
    shown.update(g.best_trial for g in h.groups if g.best_trial is not None)
    return shown


def _contents_html(report: Any) -> list[str]:
    esc = html.escape
    return [
        "<nav class='toc'><b>Contents</b><ul>",
        "<li><a href='#headline'>Goal and answer</a></li>",
        f"<li><a href='#findings'>Findings ({len(report.warnings())} warnings)</a></li>",
        "<li><a href='#study'>The study</a></li>",
        "<li><a href='#trials'>Best trials</a></li>",
        "<li><a href='#figures'>Figures</a><ul>",
        *(f"<li><a href='#{figure_id(f, i)}'>{esc(f.title)}</a></li>" for i, f in enumerate(report.figures)),
        "</ul></li></ul></nav>",
    ]


def _notes_html(s: Any, trial_href: Callable[[int], str | None]) -> list[str]:
    """The study's notebook entries (the procedures' conclusions), or nothing."""
    esc = html.escape
    notes = s.storage.get_notes(study=s.name)
    if not notes:
        return []
    parts = ["<h2 id='notebook'>Notebook</h2><ul class='notes'>"]
    for n in notes:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(n["created_at"]))
        parts.append(f"<li data-kind='{esc(n['kind'])}'><b>{esc(n['kind'])}</b> ({when}): {rich_text(n['conclusion'], trial_href)}</li>")
    parts.append("</ul>")
    return parts


def _study_html(s: Any) -> list[str]:
    """The study's record (experiment, objective, budget, how to reproduce it) and its search space."""
    esc = html.escape
    return [
        "<h2 id='study'>The study</h2><div class='scroll'><table class='meta'>",
        f"<tr><th>experiment</th><td>{esc(s.experiment)} (round {s.record.round})</td></tr>",
        f"<tr><th>objective</th><td>{esc(s.objective[0])} ({s.objective[1]})</td></tr>",
        f"<tr><th>max_train_steps</th><td>{s.max_train_steps}</td></tr>",
        f"<tr><th>reproduce</th><td><code>{esc(s.record.repro_command or '-')}</code>"
        f"{esc(' @ ' + s.record.git_commit[:10]) if s.record.git_commit else ''}"
        f"{' (dirty tree)' if s.record.git_dirty else ''}</td></tr>",
        "</table></div>",
        "<div class='scroll'><table class='space'><tr><th>hyperparameter</th><th>role</th><th>search space</th></tr>",
        *(f"<tr><td>{esc(n)}</td><td>{esc(r)}</td><td>{esc(d)}</td></tr>" for n, r, d in _space_rows(s)),
        "</table></div>",
    ]


def _trials_html(report: Any, shown: set[int], best_number: int | None) -> list[str]:
    """The shown trials, best first, and every trial as a CSV download (the table left open for the caller)."""
    esc = html.escape
    s, data = report.study, report.data
    names = list(data.space)
    rows = sorted((t for t in data.trials if t.number in shown),
                  key=lambda t: (t.value is None, data.sign() * (t.value if t.value is not None else 0), t.number))
    every = sorted([*data.trials, *data.replicates, *data.probes], key=lambda t: t.number)
    csv_text = trials_csv(every, names, data.metric, data.replicate_of, data.probe_of)
    csv_href = "data:text/csv;base64," + base64.b64encode(csv_text.encode()).decode()
    split = (f": {len(data.trials)} search + {len(data.replicates)} replicates"
             + (f" + {len(data.probes)} length probes" if data.probes else "")) if data.replicates else ""
    parts = [
        f"<h2 id='trials'>Best trials</h2><p><a class='download' download='{esc(s.name)}-trials.csv' href='{csv_href}'>"
        f"Download every trial ({len(every)}{split}) as CSV</a></p>",
        "<div class='scroll'><table class='trials'><tr><th class='num'>#</th>"
        f"<th class='num'>{esc(data.metric)} ({data.mode})</th><th class='num'>step</th><th>state</th>",
        *(f"<th class='num'>{esc(n)}</th>" for n in names),
        "</tr>",
    ]
    for t in rows:
        best = " class='best'" if t.number == best_number else ""
        cells = "".join(f"<td class='num'>{esc(num(t.params.get(n)))}</td>" for n in names)
        parts.append(f"<tr id='trial-{t.number}'{best}><td class='num'>{t.number}</td><td class='num'>{num(t.value)}</td>"
                     f"<td class='num'>{num(t.best_step)}</td><td>{esc(t.state)}</td>{cells}</tr>")
    return parts
