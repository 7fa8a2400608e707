"""The one tracker registry: ``{kind: Tracker(live writer, exporter, target kind, extra, check)}``.

Read by :func:`tunebook.integrations.export.export` (``tunebook export --to
KIND``), :func:`tunebook.integrations.export.live_writers` (``tb.run`` writers
and ``--write-to KIND TARGET``) and the CLI (the choices and help of ``--to``
and ``--write-to``). This module imports nothing heavy: each function is
named ``"module:function"`` and imported when first used, so ``tunebook
--help`` stays light.

Adding a tracker is one file plus its test: the file holds the writer, the
exporter and the target check, and registers them::

    register_tracker(Tracker("mytracker", exporter=f"{__name__}:export_study", target="folder",
                             extra="mytracker", live=f"{__name__}:writer_factory"))

(tests/integrations/test_trackers.py does this with a toy tracker and runs it
through ``export``, ``--write-to`` and the command line). The built-in
trackers are registered below.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

#: What a tracker's target is: a folder (checked writable before anything runs), a URI (the tracker's own check,
#: with a timeout: a server that does not answer is one line, not a hang), or a file (checked by the exporter).
TARGET_KINDS = ("folder", "uri", "file")


@dataclass(frozen=True)
class Tracker:
    """One tracker: how to export a stored study to it, how to stream trials to it live, what its target is."""

    kind: str
    #: ``"module:function"``: ``(study, target) -> where it wrote`` (a path, a pair of paths, a run id).
    exporter: str
    #: ``"folder"``, ``"uri"`` or ``"file"`` (see :data:`TARGET_KINDS`).
    target: str
    #: The pip extra that installs the tracker's library: ``pip install tunebook[EXTRA]`` ("" when none is needed).
    extra: str
    #: ``"module:function"``: ``(target) -> WriterFactory`` for ``tb.run(writers=...)`` / ``--write-to``; None when
    #: the tracker is written after the fact only (``tunebook export``).
    live: str | None = None
    #: ``"module:function"``: ``(target) -> None``, raising :class:`~tunebook.errors.SpecError` when the target
    #: cannot be used (a server that does not answer within a few seconds, a URI the library refuses).
    check: str | None = None
    #: What to write as the target in help texts and messages.
    example: str = ""

    def __post_init__(self) -> None:
        if self.target not in TARGET_KINDS:
            raise ValueError(f"tracker {self.kind!r}: target must be one of {TARGET_KINDS}, got {self.target!r}")
        for ref in (self.exporter, self.live, self.check):
            if ref is not None and ref.count(":") != 1:
                raise ValueError(f"tracker {self.kind!r}: {ref!r} is not 'module:function'")


TRACKERS: dict[str, Tracker] = {}


def register_tracker(tracker: Tracker) -> Tracker:
    """Add (or replace) ``tracker`` under its kind; returns it."""
    TRACKERS[tracker.kind] = tracker
    return tracker


def unregister_tracker(kind: str) -> None:
    """Remove a tracker (a test's toy)."""
    TRACKERS.pop(kind, None)


def function(ref: str) -> Callable[..., Any]:
    """The function named ``"module:function"``, imported now."""
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def live_kinds() -> list[str]:
    """The kinds that can be streamed to while trials train."""
    return [kind for kind, t in TRACKERS.items() if t.live is not None]


def described(kinds: list[str] | None = None) -> str:
    """``"tensorboard DIR, mlflow URI, ..."`` for help texts."""
    words = {"folder": "DIR", "uri": "URI", "file": "FILE"}
    return ", ".join(f"{k} {words[TRACKERS[k].target]}" for k in (kinds if kinds is not None else list(TRACKERS)))


_HERE = "tunebook.integrations"
register_tracker(Tracker("tensorboard", exporter=f"{_HERE}.tensorboard:export_study", target="folder",
                         extra="tensorboard", live=f"{_HERE}.tensorboard:writer_factory", example="runs/"))
register_tracker(Tracker("mlflow", exporter=f"{_HERE}.mlflow:export_study", target="uri", extra="mlflow",
                         live=f"{_HERE}.mlflow:writer_factory", check=f"{_HERE}.mlflow:check_target",
                         example="sqlite:///mlflow.db"))
register_tracker(Tracker("wandb", exporter=f"{_HERE}.wandb:export_study", target="folder", extra="wandb",
                         live=f"{_HERE}.wandb:writer_factory", example="wandb-runs/"))
register_tracker(Tracker("csv", exporter=f"{_HERE}.tabular:export_csv", target="file", extra="", example="trials.csv"))
register_tracker(Tracker("parquet", exporter=f"{_HERE}.tabular:export_parquet", target="file", extra="parquet",
                         example="trials.parquet"))

__all__ = ["TARGET_KINDS", "TRACKERS", "Tracker", "described", "function", "live_kinds", "register_tracker",
           "unregister_tracker"]
