"""A trial: ``/study/{name}/trial/{number}`` (parameters by role, curves with the objective first and its
best step marked, checkpoints, the reproduction command, the reason or traceback) and
``/api/study/{name}/trial/{number}/state``, which the page polls until the trial has finished."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from markupsafe import Markup

from tunebook.analysis.figures import PALETTE
from tunebook.analysis.html import dom_id, rich_text
from tunebook.dashboard.context import FINISHED, ctx, trial_href, trial_kinds, trial_url
from tunebook.dashboard.curves import lines_figure, metric_order
from tunebook.storage.base import TrialRecord

router = APIRouter()


def _signature(trial: TrialRecord) -> str:
    return json.dumps([trial.state, trial.heartbeat_at, trial.finished_at, trial.attempts, trial.value], default=str)


@router.get("/study/{name}/trial/{number}", response_class=HTMLResponse)
def trial_page(request: Request, name: str, number: int) -> Any:
    c = ctx(request)
    study = c.study(name)
    trial = c.trial(study, number)
    curves = study.metrics(trial)
    objective = study.objective[0]
    best = (trial.best_step, trial.value) if trial.best_step is not None and trial.value is not None else None
    figures = [(dom_id("metric:" + metric), metric,
                lines_figure(metric, [{"name": metric, "points": curves[metric], "color": PALETTE[0]}],
                             study.steps_of(number), best if metric == objective else None))
               for metric in metric_order(list(curves), objective)]
    kind = trial_kinds(study).get(number, "")
    roles = study.space.roles
    params = {role: {k: v for k, v in {**study.space.fixed, **trial.params}.items() if roles.get(k) == role}
              for role in ("scientific", "nuisance", "fixed")}
    return c.page(request, "trial.html", {
        "study": study, "trial": trial, "params": params, "figures": figures, "checkpoints": c.store.get_checkpoints(trial.id),
        "trial_url": trial_url(study), "reason": Markup(rich_text(trial.infeasible_reason or "", trial_href(study))),
        "kind": kind, "kind_html": Markup(rich_text(_kind_text(kind, study, trial), trial_href(study))), "signature": _signature(trial), "done": trial.state in FINISHED, "live_plots": trial.state not in FINISHED,
    })


def _kind_text(kind: str, study: Any, trial: TrialRecord) -> str:
    """What a trial that is not a search trial is for (``kind`` as :func:`trial_kinds` tags it)."""
    kind = kind.replace(" of #", " of trial #")
    if kind.startswith("replicate of"):
        return (f"A {kind}: the same configuration with a new seed, run to measure the trial variance. "
                "Not a search trial: never the best, in the answer as one of its group's runs.")
    if kind.startswith("length probe of"):
        twin = [t.number for t in study.trials() if t.seed == trial.seed and t.number != trial.number]
        seed = (f"the seed of its replicate trial #{twin[0]}, to be compared in pairs" if twin else "a new seed")
        return (f"A {kind} ({study.max_train_steps} for the search trials): the same configuration with {seed}, "
                "run longer to measure whether training longer is better. Not a search trial: never the best, "
                "not in the answer.")
    return kind


@router.get("/api/study/{name}/trial/{number}/state")
def trial_state(request: Request, name: str, number: int) -> Any:
    c = ctx(request)
    trial = c.trial(c.study(name), number)
    return JSONResponse({"state": trial.state, "signature": _signature(trial), "done": trial.state in FINISHED})
