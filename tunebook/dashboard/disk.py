"""A study's checkpoint disk use on the dashboard, as ``tunebook status`` shows it: the bytes, files and
trial folders under ``<root>/<store id>/<study>`` (:func:`tunebook.checkpoints.prune.usage`), where root is
the app's ``checkpoint_dir`` or the runner's default (beside the SQLite file; the working directory for a
server store). Walked at most once per ``ttl`` seconds a study, however many pages poll it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tunebook.checkpoints import checkpoint_dir, prune
from tunebook.storage.base import Storage


@dataclass
class Disk:
    """One line per study: ``84.3 MB in 12 files of 4 trials`` (or ``none``)."""

    store: Storage
    root: Path | None = None  # None: where the runner puts them by default
    ttl: float = 1.0
    _seen: dict[str, tuple[float, str]] = field(default_factory=dict)

    def folder(self, study: str) -> Path:
        if self.root is None:
            from tunebook.execution.loop import default_checkpoint_root

            self.root = default_checkpoint_root(self.store)
        return checkpoint_dir(self.root, self.store.store_id, study, 0).parent

    def line(self, study: str) -> str:
        now = time.monotonic()
        hit = self._seen.get(study)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        used = prune.usage(self.folder(study))
        text = used.summary() if used.files else "none"
        self._seen[study] = (now, text)
        return text

    def lines(self, studies: list[str]) -> dict[str, str]:
        return {name: self.line(name) for name in studies}
