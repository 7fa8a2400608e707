"""What every page of the dashboard shares: the store, the templates, the analysis cache, the lookups that
answer 404, and the links to a trial. One :class:`Context` per app (``request.app.state.ctx``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from tunebook.analysis import analyze
from tunebook.analysis.html import figure_id, figure_json, finding_html, headline, headline_html, num
from tunebook.analysis.notebook import ago
from tunebook.dashboard.disk import Disk
from tunebook.storage import redact
from tunebook.storage.base import Storage, TrialRecord
from tunebook.study import Study

HERE = Path(__file__).parent
MAX_NUMBER = 2**31 - 1  # trial numbers and pages beyond this are 404 (PostgreSQL's INTEGER)
FINISHED = ("completed", "infeasible", "failed")


def analysis_signature(signature: dict[str, Any]) -> str:
    """What the analysis depends on: the counts by state and the latest finish (not the heartbeats, which move
    with every metric point a running trial writes: those reach the page through its running curves)."""
    return json.dumps({"counts": signature["counts"], "finished_at": signature["finished_at"]}, sort_keys=True, default=str)


def study_done(signature: dict[str, Any]) -> bool:
    """Nothing left to run: no trial running or pending (a live page stops polling)."""
    counts = signature["counts"]
    return not counts.get("running") and not counts.get("pending")


@dataclass
class Analysed:
    """A study's report in one state, its figures as ``(id, title, kind, JSON)``, and page parts made once."""

    report: Any
    figures: list[tuple[str, str, str, str]]
    parts: dict[str, Any] = field(default_factory=dict)


class AnalysisCache:
    """Each study's analysis, recomputed only when :func:`analysis_signature` changes."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[str, Analysed]] = {}

    def get(self, study: Study, key: str) -> Analysed:
        hit = self._cache.get(study.id)
        if hit is None or hit[0] != key:
            report = analyze(study)
            figures = [(figure_id(f, i), f.title, f.kind, figure_json(f)) for i, f in enumerate(report.figures)]
            hit = (key, Analysed(report, figures))
            self._cache[study.id] = hit
        return hit[1]

    def part(self, study: Study, key: str, name: str, make: Callable[[Any], Any]) -> Any:
        """``make(report)``, once per state of the study (the headline, the findings' markup)."""
        analysed = self.get(study, key)
        if name not in analysed.parts:
            analysed.parts[name] = make(analysed.report)
        return analysed.parts[name]


def trial_url(study: Study) -> str:
    """A trial's page, ``{number}`` to fill in (the figures' click-through reads it from the page)."""
    return f"/study/{quote(study.name, safe='')}/trial/{{number}}"


def trial_href(study: Study) -> Callable[[int], str]:
    template = trial_url(study)
    return lambda n: template.replace("{number}", str(n))


@dataclass
class Context:
    store: Storage
    templates: Jinja2Templates
    refresh_ms: int
    disk: Disk
    cache: AnalysisCache = field(default_factory=AnalysisCache)

    @classmethod
    def make(cls, store: Storage, refresh_seconds: float, checkpoint_dir: str | Path | None = None) -> Context:
        templates = Jinja2Templates(directory=str(HERE / "templates"))
        templates.env.filters["num"] = num
        templates.env.filters["ago"] = ago
        templates.env.globals["store_url"] = redact(store.url)
        disk = Disk(store, Path(checkpoint_dir) if checkpoint_dir else None, ttl=min(1.0, refresh_seconds / 2))
        return cls(store, templates, int(refresh_seconds * 1000), disk)

    def page(self, request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Any:
        return self.templates.TemplateResponse(request, template, {"refresh_ms": self.refresh_ms, **context},
                                               status_code=status_code)

    def study(self, name: str) -> Study:
        record = self.store.get_study(name)
        if record is None:
            raise HTTPException(404, f"no study named {name!r}")
        return Study(record, self.store)

    def trial(self, study: Study, number: int) -> TrialRecord:
        trial = self.store.get_trial_by_number(study.id, number) if 0 <= number <= MAX_NUMBER else None
        if trial is None:
            raise HTTPException(404, f"study {study.name!r} has no trial #{number}")
        return trial

    def analysed(self, study: Study) -> tuple[Analysed, str, dict[str, Any]]:
        """The study's analysis in its current state, the analysis signature, and the store's signature."""
        signature = self.store.study_signature(study.id)
        key = analysis_signature(signature)
        return self.cache.get(study, key), key, signature

    def headline(self, study: Study, key: str) -> Markup:
        href = trial_href(study)
        return self.cache.part(study, key, "headline", lambda r: Markup(headline_html(headline(r), href)))

    def findings(self, study: Study, key: str) -> list[Markup]:
        href = trial_href(study)
        return self.cache.part(study, key, "findings",
                               lambda r: [Markup(finding_html(f, r.figures, href)) for f in r.findings])


def ctx(request: Request) -> Context:
    return request.app.state.ctx
