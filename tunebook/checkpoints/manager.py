"""Keep-N-best-plus-latest checkpoints of one trial (:class:`CheckpointManager`) and where they live."""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from tunebook.storage.base import CheckpointRecord

from .files import CORRUPT, CheckpointIOError, CheckpointMismatch, atomic_save, is_disk_fault, read, snapshot

log = logging.getLogger("tunebook")


def checkpoint_dir(root: str | os.PathLike[str], store_id: str | None, study: str, number: int) -> Path:
    """Where a trial's checkpoints go: ``<root>/<store id>/<study>/trial-NNNNN``."""
    base = Path(root) / store_id if store_id else Path(root)
    return base / study / f"trial-{number:05d}"


@dataclass(frozen=True)
class Checkpoint:
    """A saved state: its step, the state itself, the objective at that step, the file."""

    step: int
    state: Any
    value: float | None
    path: str


def select_kept(records: Sequence[CheckpointRecord], keep_best: int, mode: str) -> list[CheckpointRecord]:
    """The ``keep_best`` records with the best value (ties: earlier step), plus the latest, in step order."""
    scored = [c for c in records if c.value is not None and not math.isnan(c.value)]
    sign = 1.0 if mode == "min" else -1.0
    best = sorted(scored, key=lambda c: (sign * c.value, c.step))[:keep_best]  # type: ignore[operator]
    kept = {c.step: c for c in best}
    if records:
        latest = max(records, key=lambda c: c.step)
        kept[latest.step] = latest
    return [kept[s] for s in sorted(kept)]


class CheckpointManager:
    """Keep-N-best-plus-latest checkpoints in one folder.

    Args:
        directory: where the files go (created on the first save).
        keep_best: how many of the best checkpoints (by ``value``) to keep.
        mode: ``"min"`` or ``"max"``: which values are better.
        records: the manifest to start from (e.g. from the store, when resuming).
        on_change: called with the new manifest after every save (e.g. to store it).
        owner: the trial id (recorded in every file and checked on load; 0: not checked).
        background: write files in a background thread. ``save`` then only copies
            the state (to the CPU) and returns; at most one write is in flight, and
            :meth:`wait` (called by ``latest``, ``best`` and ``close``) waits for it.
        store_id: the store's id (recorded in every file and checked on load; None: not checked).
        key: the store's checkpoint key (signs every file; a file signed with it is loaded in full,
            any other only through the restricted unpickler; None: files are not signed).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        keep_best: int = 3,
        mode: str = "min",
        records: Sequence[CheckpointRecord] = (),
        on_change: Callable[[list[CheckpointRecord]], None] | None = None,
        owner: int = 0,
        background: bool = False,
        store_id: str | None = None,
        key: bytes | None = None,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError("mode: use 'min' or 'max'")
        self.directory = Path(directory)
        self.keep_best = keep_best
        self.mode = mode
        self.kept: list[CheckpointRecord] = list(records)
        self.on_change = on_change
        self.owner = owner
        self.background = background
        self.store_id = store_id
        self.key = key
        self._writer: threading.Thread | None = None
        self._error: BaseException | None = None
        self._swept = False

    def save(self, step: int, state: Any, value: float | None = None) -> str:
        """Write ``state`` at ``step`` (ranked by ``value``), then drop what is no longer kept."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self._swept:  # temporary files of a writer killed mid-write (this trial is ours now)
            self._swept = True
            for stale in self.directory.glob(".step-*.ckpt.*.tmp"):
                stale.unlink(missing_ok=True)
        path = self.directory / f"step-{step:09d}.ckpt"
        if not self.background:
            self._write(step, state, value, path)
            return str(path)
        self.wait()
        copied = snapshot(state)  # training may change the live tensors from the next step on

        def write() -> None:
            try:
                self._write(step, copied, value, path)
            except BaseException as exc:  # surfaced by the next wait()
                self._error = exc

        self._writer = threading.Thread(target=write, name=f"tunebook-checkpoint-{step}", daemon=True)
        self._writer.start()
        return str(path)

    def wait(self) -> None:
        """Block until the write in flight (if any) is on disk; re-raise its error."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        self.wait()

    def _write(self, step: int, state: Any, value: float | None, path: Path) -> None:
        try:
            atomic_save(state, path, store_id=self.store_id, trial_id=self.owner, step=step, key=self.key)
        except OSError as exc:
            if is_disk_fault(exc):
                raise CheckpointIOError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from exc
            raise
        records = [c for c in self.kept if c.step != step] + [CheckpointRecord(self.owner, step, str(path), value)]
        keep = select_kept(records, self.keep_best, self.mode)
        if self.on_change is not None:
            self.on_change(keep)  # record the manifest before deleting files it no longer names
        for old in records:
            if old not in keep:
                Path(old.path).unlink(missing_ok=True)
        self.kept = keep

    def _open(self, record: CheckpointRecord) -> Checkpoint | None:
        """The checkpoint of ``record``; None when its file is missing or corrupt (it is then dropped).

        Raises :class:`CheckpointMismatch` for another store's or trial's file and
        :class:`CheckpointIOError` when the disk fails."""
        path = Path(record.path)
        try:
            payload = read(path, key=self.key, store_id=self.store_id, trial_id=self.owner or None)
        except FileNotFoundError:
            log.warning("tunebook: checkpoint %s is missing; using an earlier one", path)
            return None
        except OSError as exc:
            raise CheckpointIOError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from exc
        except CheckpointMismatch:
            raise  # refused, not corrupt: the file is left where it is
        except CORRUPT as exc:
            log.warning("tunebook: checkpoint %s is truncated or corrupt (%s); using an earlier one",
                        path, type(exc).__name__)
            self.kept = [c for c in self.kept if c.step != record.step]
            path.unlink(missing_ok=True)
            return None
        return Checkpoint(record.step, payload["state"], record.value, record.path)

    def _first_readable(self, records: Sequence[CheckpointRecord]) -> Checkpoint | None:
        for record in records:
            found = self._open(record)
            if found is not None:
                return found
        return None

    def latest(self) -> Checkpoint | None:
        """The checkpoint with the highest step (what a resumed run continues from); a missing or
        corrupt one is skipped for the previous intact one."""
        self.wait()
        return self._first_readable(sorted(self.kept, key=lambda c: -c.step))

    def best(self) -> Checkpoint | None:
        """The kept checkpoint with the best value (retrospective selection); a corrupt one is skipped."""
        self.wait()
        scored = [c for c in self.kept if c.value is not None and not math.isnan(c.value)]
        sign = 1.0 if self.mode == "min" else -1.0
        return self._first_readable(sorted(scored, key=lambda c: (sign * c.value, c.step)))  # type: ignore[operator]
