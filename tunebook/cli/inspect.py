"""Looking at stored studies: `status`, `ls`, `report`, `dashboard`.

Stored text (goals, names, metric names, errors) is printed through
:func:`printable`: a terminal escape sequence in a goal never reaches the terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tunebook.cli._base import command, output_file, port, printable
from tunebook.errors import SpecError, failure_line


# status ----------------------------------------------------------------------

def _split(r: dict) -> str:
    """``"12 search + 3 replicates"`` (and ``" + 3 length probes"``) of a notebook row."""
    probes = r.get("probes", 0)
    return (f"{r['total'] - r['replicates'] - probes} search + {r['replicates']} replicates"
            + (f" + {probes} length probes" if probes else ""))

def _status_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", nargs="?")
    p.add_argument("--checkpoint-dir", help="where the checkpoints are, for their disk use (default: beside the "
                   "SQLite file)")


@command("status", "trial states of the stored studies, or of one study (running, stale, re-queued)",
         "tunebook status digits-weight-decay", arguments=_status_arguments)
def cmd_status(args: argparse.Namespace) -> int:
    from tunebook.analysis.notebook import ago, fmt, notebook_rows
    from tunebook.execution import DEFAULT_STALE_AFTER
    from tunebook.storage import open_storage
    from tunebook.study import load_study

    from tunebook.columns import width as columns, wrap

    def say(line: str) -> None:  # wrapped at spaces to the terminal, continuation lines indented
        line = printable(line)
        lead = " " * (len(line) - len(line.lstrip(" ")))
        for part in wrap(line.strip(), columns(), indent=lead + "  ", first=lead):
            print(part)

    storage = open_storage(args.storage)
    if not args.study:
        rows = notebook_rows(storage)
        if not rows:
            say("no studies yet")
        for r in rows:
            say(f"{r['study']}: {r['completed']} completed, {r['infeasible']} infeasible, {r['failed']} failed, "
                f"{r['running']} running, {r['pending']} pending of {r['total']}"
                + (f" ({_split(r)})" if r["replicates"] else "")
                + f"; best {fmt(r['best_value'])}")
        return 0
    study = load_study(args.study, storage)
    now = time.time()
    trials = study.trials()
    counts = study.counts()
    say(f"study {study.name} ({study.experiment}): {study.goal}")
    say("  " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" of {len(trials)}")
    phases = study.phase_line()
    if phases:
        say(f"  {phases}")
    for t in trials:
        if t.state == "running":
            stale = t.heartbeat_at is not None and now - t.heartbeat_at > DEFAULT_STALE_AFTER
            say(f"  running #{t.number} on {t.worker_id}, heartbeat {ago(t.heartbeat_at, now)}"
                + ("  STALE: its worker looks dead; it is re-queued on the next claim" if stale else ""))
        elif t.state == "pending" and (t.attempts or t.error):
            cause = failure_line(t.error)  # an infrastructure fault or a lost worker
            say(f"  re-queued #{t.number} (attempts {t.attempts}, lost workers {t.lost_workers})"
                + (f": {cause}" if cause else ""))
    best = study.best_trial()
    if best is not None:
        from tunebook.columns import pairs

        say(f"  best {study.objective[0]} = {best.value:.6g} at step {best.best_step}, trial #{best.number}:")
        shown = [(k, f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in best.params.items()]
        for line in pairs(shown, columns(), "    "):  # a pair per column, never split: full values in `tunebook show`
            say(line)
    for t in trials:
        if t.state == "infeasible":
            say(f"  infeasible #{t.number}: {t.infeasible_reason}")
        elif t.state == "failed":
            say(f"  failed #{t.number}: {failure_line(t.error)}")  # a traceback's exception line, else the first
    from tunebook.cli.disk import disk_line

    disk = disk_line(study, args.checkpoint_dir)
    if disk is not None:
        say("  " + disk)
    return 0


# ls --------------------------------------------------------------------------
def _ls_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("table", "json"), default="table")


@command("ls", "the experiment notebook: every study, its goal, config, trials, best value, reproduction",
         "tunebook ls --format json", arguments=_ls_arguments)
def cmd_ls(args: argparse.Namespace) -> int:
    from tunebook.analysis.notebook import notebook_rows
    from tunebook.storage import open_storage

    storage = open_storage(args.storage)
    rows = notebook_rows(storage)
    for r in rows:  # how the budget split, as status says it (and why a study has no replicates)
        r["phases"] = _phases(storage, r["study"])
    if args.format == "json":
        print(json.dumps(rows, indent=2))  # JSON escapes control characters itself
        return 0
    if not rows:
        print("no studies yet: `tunebook init` writes an example, `tunebook demo` runs one")
        return 0
    from tunebook.columns import width

    columns = width()  # unwrapped into a pipe: the table
    if columns < 140:  # seven columns do not fit: one block per study, wrapped at spaces
        for line in _ls_blocks(rows, columns):
            print(printable(line))
        return 0
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="tunebook experiment notebook", show_lines=True)
    for column in ("experiment / study", "goal", "config", "trials c/i/f/total", "best", "reproduce", "created"):
        table.add_column(column, overflow="fold")
    for r in rows:
        best = "-" if r["best_value"] is None else f"{r['objective']} = {r['best_value']:.4g}\n@ step {r['best_step']} (#{r['best_trial']})"
        marker = "  * baseline" if r["baseline"] else ""
        goal = r["goal"] + "".join(f"\n- {n}" for n in r["notes"][-2:])
        cells = (
            f"{r['experiment']}\n{r['study']} (round {r['round']}){marker}" + (f"\n<- {r['lineage']}" if r.get("lineage") else ""),
            goal,
            r["config"],
            f"{r['completed']}/{r['infeasible']}/{r['failed']}/{r['total']}" + (f"\n{r['phases']}" if r["phases"] else ""),
            best,
            r["reproduce"],
            r["created"],
        )
        table.add_row(*(Text(printable(c)) for c in cells))  # user text is never read as rich markup, nor as escapes
    # Wide enough not to fold the reproduction command when piped to a file.
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0


def _phases(storage: Any, name: str) -> str:
    """A study's split of its budget (:meth:`~tunebook.study.Study.phase_line`), "" for one it cannot say."""
    from tunebook.study import load_study

    try:
        return load_study(name, storage).phase_line()
    except Exception:  # noqa: BLE001 - a study of a design or space this install cannot read: ls still lists it
        return ""


def _ls_blocks(rows: list[dict[str, Any]], columns: int) -> list[str]:
    """The notebook for a narrow terminal: per study a heading line and its fields, wrapped at spaces."""
    from tunebook.columns import wrap

    lines = ["tunebook experiment notebook (trials: completed/infeasible/failed/total)"]
    for r in rows:
        best = "-" if r["best_value"] is None else f"{r['objective']} = {r['best_value']:.4g} @ step {r['best_step']} (#{r['best_trial']})"
        lines.append("")
        lines += wrap(f"{r['experiment']} / {r['study']} (round {r['round']})" + ("  * baseline" if r["baseline"] else ""), columns)
        fields = [("from", r.get("lineage")), ("goal", r["goal"]), *(("note", n) for n in r["notes"][-2:]),
                  ("trials", f"{r['completed']}/{r['infeasible']}/{r['failed']}/{r['total']}"
                   + (f", {r['running']} running" if r.get("running") else "")), ("", r.get("phases")),
                  ("best", best), ("config", r["config"]), ("reproduce", r["reproduce"]), ("created", r["created"])]
        for name, value in fields:
            if value not in (None, ""):
                lines += wrap(str(value), columns, indent=" " * 13, first=f"  {name:<10} ")
    return lines


# report ----------------------------------------------------------------------
def write_report(study: Any, output: str | None, top_findings: int = 5) -> Path:
    """Analyze a study, write the HTML report, print the findings summary."""
    from tunebook.analysis import analyze

    report = analyze(study)
    target = output or f"tunebook-report-{study.name}.html"
    try:
        path = report.save(target)
    except OSError as exc:  # a full disk, /dev/full, a read-only folder: one line, not a traceback
        raise SpecError("--output", f"cannot write {target!r} ({exc.strerror or type(exc).__name__})",
                        "free some space or write the report elsewhere with -o") from None
    from tunebook.columns import console as wrapping_console

    console = wrapping_console()
    answer = getattr(report, "answer", None)
    if answer is not None and answer.verdict:  # the answer to the study's goal comes first
        console.print(printable(f"Answer: {answer.verdict}"), markup=False, highlight=False)
    for f in report.findings[:top_findings]:
        console.print(printable(f"[{f.severity}] {f.check}: {f.message}\n    -> {f.action}"), markup=False, highlight=False)
    if len(report.findings) > top_findings:
        console.print(f"... and {len(report.findings) - top_findings} more findings in the report", markup=False)
    print(f"report: {path.resolve()}")
    return path


def _report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study")
    p.add_argument("-o", "--output", help="HTML file (default tunebook-report-STUDY.html); its folder must exist")
    p.add_argument("--format", choices=("html", "terminal"), default="html", help="terminal: findings and top trials only")


@command("report", "the playbook's plots and checklist for a study: one offline HTML file",
         "tunebook report wd-ablation -o report.html", arguments=_report_arguments)
def cmd_report(args: argparse.Namespace) -> int:
    from tunebook.study import load_study

    output_file(args.output)
    study = load_study(args.study, args.storage)
    if args.format == "terminal":
        from tunebook.analysis import analyze

        from tunebook.columns import console

        analyze(study).print(console())  # whole lines into a pipe, wrapped at spaces on a terminal
        return 0
    write_report(study, args.output, top_findings=len(study.trials()) + 20)
    return 0


# dashboard -------------------------------------------------------------------
def check_listen(host: str, port_number: int) -> None:
    """Refuse a host that does not resolve and a port that cannot be bound, before the URL is printed."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port_number, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise SpecError("--host", f"cannot resolve {host!r} ({getattr(exc, 'strerror', None) or exc})",
                        "give an address of this machine, e.g. --host 127.0.0.1") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise SpecError("--port", f"port {port_number} on {host} is in use",
                                "pick another, e.g. --port 8081, or stop what listens there") from None
            if exc.errno == errno.EACCES:
                raise SpecError("--port", f"not allowed to listen on port {port_number}", "use a port above 1023") from None
            raise SpecError("--host", f"cannot listen on {host!r} ({exc.strerror})",
                            "give an address of this machine, e.g. --host 127.0.0.1") from None


def _dashboard_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=port, default=8080)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; anything but localhost needs --token")
    p.add_argument("--token", help="secret every request must carry (?token=, cookie, or Authorization: Bearer); "
                   "prefer --token-file or $TUNEBOOK_DASHBOARD_TOKEN, which keep it out of the process list")
    p.add_argument("--token-file", help="read the token from the first line of this file")


@command("dashboard", "the notebook, findings and figures in the browser (read-only)", "tunebook dashboard --port 8080",
         arguments=_dashboard_arguments)
def cmd_dashboard(args: argparse.Namespace) -> int:
    from tunebook.dashboard import check_bind, resolve_token, serve
    from tunebook.storage import open_storage

    if args.token is None and args.token_file is not None:
        from tunebook.specio import MAX_TOKEN_BYTES, read_limited

        read_limited(args.token_file, MAX_TOKEN_BYTES, "--token-file", "give a file holding the token on its first line")
    token = resolve_token(args.token, args.token_file)
    check_bind(args.host, token)
    check_listen(args.host, args.port)
    open_storage(args.storage)  # a bad store is a clear error before the server starts
    serve(args.storage, host=args.host, port=args.port, token=token)
    return 0


COMMANDS = [cmd_status, cmd_ls, cmd_report, cmd_dashboard]
