"""A toy tracker in one file: a JSON-lines file per trial in a folder, live and after the fact.

Importing this module registers it (what a real tracker's module does); tests/integrations/test_trackers.py
uses it to show that `export`, `--write-to` and the command line read the one registry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from tunebook.errors import SpecError
from tunebook.integrations.export import replay
from tunebook.integrations.trackers import Tracker, register_tracker
from tunebook.writers import MetricWriter, TrialInfo


class ToyWriter(MetricWriter):
    def __init__(self, folder: Path, info: TrialInfo) -> None:
        self.path = folder / f"{info.study}-{info.number}.jsonl"
        self.file = self.path.open("a", encoding="utf-8")

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        self.file.write(json.dumps({"hparams": dict(hparams)}) + "\n")

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        self.file.write(json.dumps({"step": step, **scalars}) + "\n")

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        self.file.write(json.dumps({"summary": dict(summary)}) + "\n")

    def close(self) -> None:
        self.file.close()


class ToyFactory:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def __call__(self, info: TrialInfo) -> MetricWriter:
        return ToyWriter(self.folder, info)


def writer_factory(folder: str | Path) -> ToyFactory:
    return ToyFactory(folder)


def export_study(study: Any, folder: str | Path) -> Path:
    replay(study, writer_factory(folder))
    return Path(folder)


def check_target(folder: str | Path) -> None:
    if Path(folder).name.startswith("forbidden"):
        raise SpecError("target", f"{str(folder)!r} is a forbidden folder", "write elsewhere")


TOY = register_tracker(Tracker("toy", exporter=f"{__name__}:export_study", target="folder", extra="",
                               live=f"{__name__}:writer_factory", check=f"{__name__}:check_target", example="toy-runs/"))
