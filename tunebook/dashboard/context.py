"""What every page of the dashboard shares: the store, the templates, the analysis cache, the lookups that
answer 404, and the links to a trial. One :class:`Context` per app (``request.app.state.ctx``)."""

from __future__ import annotations

import json
import logging
import threading
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
log = logging.getLogger(__name__)


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

    def part(self, name: str, make: Callable[[Any], Any]) -> Any:
        """``make(report)``, once per analysis (the headline, the findings' markup, the explore page's parts)."""
        if name not in self.parts:
            self.parts[name] = make(self.report)
        return self.parts[name]


def finished(signature: dict[str, Any]) -> int:
    """The study's finished trials (what its analysis reads)."""
    return sum(int(signature["counts"].get(s) or 0) for s in FINISHED)


class AnalysisCache:
    """Each study's analysis, recomputed only when :func:`analysis_signature` changes, once however many
    requests ask for it at the same time (a lock per study).

    A study of ``background_from`` finished trials or more (its analysis takes seconds) whose analysis moved
    keeps showing the last one while the new one is computed in a background thread (one at a time a
    study): its pages answer at once, and a live page updates when :meth:`shown` says the new one is ready.
    A study's first analysis is always computed in the request."""

    def __init__(self, background_from: int | None = 2000) -> None:
        self._cache: dict[int, tuple[str, Analysed]] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()
        self._computing: set[int] = set()
        self._failed: dict[int, str] = {}  # a study whose analysis at this key failed in the background
        self.background_from = background_from

    def _lock(self, study_id: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(study_id, threading.Lock())

    def get(self, study: Study, key: str) -> Analysed:
        """The study's analysis at ``key`` (computed here unless cached, or being computed: then waited for)."""
        hit = self._cache.get(study.id)
        if hit is not None and hit[0] == key:
            return hit[1]
        with self._lock(study.id):
            hit = self._cache.get(study.id)
            if hit is None or hit[0] != key:
                report = analyze(study)
                figures = [(figure_id(f, i), f.title, f.kind, figure_json(f)) for i, f in enumerate(report.figures)]
                hit = (key, Analysed(report, figures))
                self._cache[study.id] = hit
            return hit[1]

    def shown(self, study: Study, key: str, finished: int) -> str:
        """The key of the analysis a page of the study shows now: ``key``, or for a large study the last one
        computed while ``key``'s is computed in the background (started here)."""
        hit = self._cache.get(study.id)
        if (hit is None or hit[0] == key or self.background_from is None or finished < self.background_from
                or self._failed.get(study.id) == key):  # failed: the request computes it, and shows the error
            return key
        with self._guard:
            if study.id in self._computing:
                return hit[0]
            self._computing.add(study.id)
        threading.Thread(target=self._background, args=(study, key), daemon=True,
                         name=f"tunebook-analysis-{study.id}").start()
        return hit[0]

    def _background(self, study: Study, key: str) -> None:
        try:
            self.get(study, key)
        except Exception:  # noqa: BLE001 - the next request computes it again and shows the error
            self._failed[study.id] = key
            log.exception("analysis of study %r in the background failed", study.name)
        finally:
            with self._guard:
                self._computing.discard(study.id)

    def latest(self, study: Study, key: str, finished: int) -> tuple[str, Analysed]:
        """``(key shown, analysis)``: see :meth:`shown`."""
        shown = self.shown(study, key, finished)
        hit = self._cache.get(study.id)
        if shown != key and hit is not None and hit[0] == shown:
            return shown, hit[1]
        return key, self.get(study, key)


def trial_url(study: Study) -> str:
    """A trial's page, ``{number}`` to fill in (the figures' click-through reads it from the page)."""
    return f"/study/{quote(study.name, safe='')}/trial/{{number}}"


def trial_kinds(study: Study) -> dict[int, str]:
    """What each trial that is not a search trial is, as the pages tag it: a replicate (the search trial it
    re-runs) or a length probe (the trial it trains longer, and its steps)."""
    from tunebook.analysis.data import probe_of, replicate_of

    out = {n: f"replicate of #{of}" for n, of in replicate_of(study).items()}
    out.update({n: f"length probe of #{of}, {steps} steps" for n, (of, steps) in probe_of(study).items()})
    return out


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
    def make(cls, store: Storage, refresh_seconds: float, checkpoint_dir: str | Path | None = None,
             background_from: int | None = 2000) -> Context:
        templates = Jinja2Templates(directory=str(HERE / "templates"))
        templates.env.filters["num"] = num
        templates.env.filters["ago"] = ago
        templates.env.globals["store_url"] = redact(store.url)
        disk = Disk(store, Path(checkpoint_dir) if checkpoint_dir else None, ttl=min(1.0, refresh_seconds / 2))
        return cls(store, templates, int(refresh_seconds * 1000), disk, AnalysisCache(background_from))

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
        """The study's analysis to show now (its current state's, or a large study's last while the current
        one is computed: :class:`AnalysisCache`), that analysis's signature, and the store's signature."""
        signature = self.store.study_signature(study.id)
        shown, analysed = self.cache.latest(study, analysis_signature(signature), finished(signature))
        return analysed, shown, signature

    def headline(self, study: Study, analysed: Analysed) -> Markup:
        href = trial_href(study)
        return analysed.part("headline", lambda r: Markup(headline_html(headline(r), href)))

    def findings(self, study: Study, analysed: Analysed) -> list[Markup]:
        href = trial_href(study)
        return analysed.part("findings", lambda r: [Markup(finding_html(f, r.figures, href)) for f in r.findings])


def ctx(request: Request) -> Context:
    return request.app.state.ctx
