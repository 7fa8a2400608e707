"""A trial: ``/study/{name}/trial/{number}`` (parameters by role, curves with the objective first and its
best step marked, checkpoints, the reproduction command, the reason or traceback) and
``/api/study/{name}/trial/{number}/state``, which the page polls until the trial has finished."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from markupsafe import Markup

from tunebook.analysis.data import probe_of, replicate_of
from tunebook.analysis.figures import PALETTE
from tunebook.analysis.html import dom_id, rich_text
from tunebook.dashboard.context import FINISHED, ctx, trial_href, trial_url
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
    probe = probe_of(study).get(number)  # (the trial it trains longer, its steps), or None
    figures = [(dom_id("metric:" + metric), metric,
                lines_figure(metric, [{"name": metric, "points": curves[metric], "color": PALETTE[0]}],
                             probe[1] if probe else study.max_train_steps, best if metric == objective else None))
               for metric in metric_order(list(curves), objective)]
    kind = _kind_text(study, trial, replicate_of(study).get(number), probe)
    roles = study.space.roles
    params = {role: {k: v for k, v in {**study.space.fixed, **trial.params}.items() if roles.get(k) == role}
              for role in ("scientific", "nuisance", "fixed")}
    return c.page(request, "trial.html", {
        "study": study, "trial": trial, "params": params, "figures": figures, "checkpoints": c.store.get_checkpoints(trial.id),
        "trial_url": trial_url(study), "reason": Markup(rich_text(trial.infeasible_reason or "", trial_href(study))),
        "kind": kind, "kind_html": Markup(rich_text(kind, trial_href(study))),
        "signature": _signature(trial), "done": trial.state in FINISHED, "live_plots": trial.state not in FINISHED,
    })


def _kind_text(study: Any, trial: TrialRecord, replicate_of: int | None, probe: tuple[int, int] | None) -> str:
    """What a trial that is not a search trial is for ("" for a search trial): a replicate of trial
    ``replicate_of``, or a length probe ``probe`` (the trial it trains longer, its steps)."""
    if replicate_of is not None:
        return (f"A replicate of trial #{replicate_of}: the same configuration with a new seed, run to measure the "
                "trial variance. Not a search trial: never the best, in the answer as one of its group's runs.")
    if probe is None:
        return ""
    twin = [t.number for t in study.trials() if t.seed == trial.seed and t.number != trial.number]
    seed = f"the seed of its replicate trial #{twin[0]}, to be compared in pairs" if twin else "a new seed"
    return (f"A length probe of trial #{probe[0]}, {probe[1]} steps ({study.max_train_steps} for the search trials): "
            f"the same configuration with {seed}, run longer to measure whether training longer is better. Not a "
            "search trial: never the best, not in the answer.")


@router.get("/api/study/{name}/trial/{number}/state")
def trial_state(request: Request, name: str, number: int) -> Any:
    c = ctx(request)
    trial = c.trial(c.study(name), number)
    return JSONResponse({"state": trial.state, "signature": _signature(trial), "done": trial.state in FINISHED})
