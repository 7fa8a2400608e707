"""Completed trials whose training stopped before ``max_train_steps`` without saying why.

A training function that catches ``KeyboardInterrupt`` and returns (as many real
scripts do: "Exiting from training early"), or that stops on its own, leaves a
trial whose value is that of a shorter run; compared with trials that trained to
the end, it is not the same experiment. A function that stops on purpose (early
stopping) says so with ``trial.end(reason)`` (tunebook's Lightning and Hugging
Face callbacks do it for their early-stopping callbacks): such trials are not
named here. The worker stores how a completed trial ended
(:attr:`tunebook.storage.base.TrialRecord.ended`): its last logged step, and the
reason when one was given; it ran to its end when its last logged step plus its
logging interval reaches ``max_train_steps``.
"""

from __future__ import annotations

from tunebook.analysis.data import StudyData

from .base import WARNING, Finding, Thresholds, check


@check("ended_early", family="sampling", order=125)
def check_ended_early(data: StudyData, th: Thresholds) -> list[Finding]:
    """Name the completed trials that stopped before ``max_train_steps`` without a reason."""
    completed = data.study.storage.get_trials(data.study.id, ["completed"])
    short = [t for t in completed if t.ended and not t.ended.get("reason")]
    if not short:
        return []
    short.sort(key=lambda t: t.number)
    budget = data.study.max_train_steps
    shown = ", ".join(f"#{t.number} at step {t.ended['last_step']}" for t in short[:5])  # type: ignore[index]
    more = f" and {len(short) - 5} more" if len(short) > 5 else ""
    return [Finding(
        "ended_early", WARNING,
        f"{len(short)} of {len(completed)} completed trials stopped before max_train_steps={budget} without "
        f"saying why ({shown}{more}): their values are those of shorter runs.",
        "If they stopped on purpose (early stopping), call trial.end(reason) before returning; if they were cut "
        "short (a caught KeyboardInterrupt, a loop that ends early), fix the training function and run them "
        "again in a new study.",
        {"trials": [t.number for t in short], "completed": len(completed),
         "last_steps": {t.number: t.ended["last_step"] for t in short}, "max_train_steps": budget},  # type: ignore[index]
    )]
