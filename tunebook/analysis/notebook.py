"""The experiment notebook: one row per study, as the playbook's tracking spreadsheet.

The playbook ("Setting up experiment tracking") keeps, for every study: its
name, a link to its config, notes (the goal), the number of trials, the best
validation result, and what is needed to reproduce it. ``tunebook ls`` prints
these rows; the dashboard's first page shows them.
"""

from __future__ import annotations

from tunebook.display import fmt  # noqa: F401  (re-exported: the CLI and dashboard format with it)

import time
from typing import Any

from tunebook.storage.base import Storage


def ago(t: float | None, now: float | None = None) -> str:
    """How long ago epoch time ``t`` was ('-' when missing)."""
    if t is None:
        return "-"
    s = max(0.0, (time.time() if now is None else now) - t)
    return f"{s:.0f}s ago" if s < 120 else f"{s / 60:.0f}m ago" if s < 7200 else f"{s / 3600:.1f}h ago"


def lineage_text(spec: dict[str, Any]) -> str:
    """How a derived study came to be, in a few words ("next of opt: search_space_boundary"); "" otherwise."""
    derived = spec.get("derived") or {}
    if not derived.get("kind") or not derived.get("source"):
        return ""
    text = f"{derived['kind']} of {derived['source']}"
    if derived.get("trial") is not None:
        text += f" #{derived['trial']}"
    if derived.get("findings"):
        text += f": {', '.join(derived['findings'])}"
    return text


def _best_search(storage: Storage, study_id: int, name: str, mode: str) -> dict[str, Any] | None:
    """The best search trial (never a replicate) as the store's summary gives a best: number, value, step."""
    from tunebook.study import best_search_trial

    t = best_search_trial(storage, study_id, name, mode)
    return None if t is None else {"number": t.number, "value": t.value, "step": t.best_step}


def notebook_rows(storage: Storage) -> list[dict[str, Any]]:
    """One row per study: the playbook's experiment-tracking columns (aggregated by the store)."""
    rows = []
    baselines = storage.get_baselines()
    notes_by_study: dict[str, list[dict[str, Any]]] = {}
    for note in storage.get_notes():
        notes_by_study.setdefault(note["study"] or "", []).append(note)
    for item in storage.study_summaries():
        s, c, best = item["study"], item["counts"], item["best"]
        replicas = {int(n) for note in notes_by_study.get(s.name, []) if note["kind"] == "replicates"
                    for n in note["evidence"].get("trials", ())}
        probes = {int(n) for note in notes_by_study.get(s.name, []) if note["kind"] == "length_probe"
                  for n in note["evidence"].get("trials", ())}
        if best is not None and best["number"] in replicas | probes and s.id is not None:
            # a replicate or a length probe (trained longer) is not what the search found
            best = _best_search(storage, s.id, s.name, s.objective_mode)
        total = sum(c.values())
        repro = s.repro_command or ""
        if s.git_commit:
            repro += f"  @ {s.git_commit[:10]}{' (dirty tree)' if s.git_dirty else ''}"
        rows.append(
            {
                "experiment": s.experiment,
                "study": s.name,
                "round": s.round,
                "goal": s.goal,
                "config": f"{s.config_path}@{s.config_hash}" if s.config_path else "(python)",
                "objective": f"{s.objective_metric} ({s.objective_mode})",
                "completed": c.get("completed", 0),
                "infeasible": c.get("infeasible", 0),
                "failed": c.get("failed", 0),
                "pending": c.get("pending", 0),
                "running": c.get("running", 0),
                "total": total,
                "replicates": len(replicas),
                "probes": len(probes),
                "best_value": None if best is None else best["value"],
                "best_step": None if best is None else best["step"],
                "best_trial": None if best is None else best["number"],
                "reproduce": repro,
                "git_commit": s.git_commit,
                "git_dirty": s.git_dirty,
                "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(s.created_at)),
                "parent": s.parent,
                "derived": s.spec.get("derived"),
                "lineage": lineage_text(s.spec),
                "baseline": baselines.get(s.experiment) == s.name,
                "notes": [f"{n['kind']}: {n['conclusion']}" for n in notes_by_study.get(s.name, [])],
            }
        )
    return rows
