"""Notes beside the checkpoints: trials a worker that gave up on an infrastructure fault could not put back.

Each worker reserves its own note while there is room (:func:`reserve`: ``NOTE_SIZE`` blanks, written
and synced to ``.unreleased-after-faults/<store>.<worker>.json`` in the checkpoint folder). Giving up, it
writes the trial into that reservation in place (:meth:`Note.write`): the same bytes of the same file,
so a full disk (ext4, XFS, tmpfs: filesystems that overwrite in place) does not stop it, and no other
worker's note is read or rewritten (one file a worker: two workers giving up at once both keep theirs).
The next worker using the folder puts the noted trials back (:func:`release_noted`) and deletes each
note it settled (a delete needs no room); a note whose store is still away stays as it is.

It can still be missing: when the reservation could not be made (the folder already full, read-only
or gone when the worker started: a warning line then), on a copy-on-write filesystem (Btrfs, ZFS)
that needs room for any write, or when the next worker uses another checkpoint folder. The trial is
then reclaimed as a dead worker's (``lost_workers`` + 1).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

log = logging.getLogger("tunebook")

#: the folder of notes, in the checkpoint folder
FOLDER = ".unreleased-after-faults"
#: bytes reserved per worker (a note is a store id, a trial id, a worker id and a cause of at most 500 characters)
NOTE_SIZE = 4096


def _name(store_id: str | None, worker_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{store_id}.{worker_id}") + ".json"  # a uuid, then host-pid


@dataclass
class Note:
    """A worker's reserved note (see the module's doc)."""

    path: Path
    store_id: str | None
    worker_id: str

    def write(self, trial_id: int, cause: str) -> bool:
        """Note ``trial_id`` in place of the reservation; False (and a warning line) when that failed."""
        text = json.dumps({"store": self.store_id, "trial": trial_id, "worker": self.worker_id,
                           "cause": cause[:500]}).encode()  # ASCII: at most 6 bytes a character
        try:
            with open(self.path, "r+b") as f:
                f.write(text.ljust(NOTE_SIZE))
                f.flush()
                os.fsync(f.fileno())
            return True
        except OSError as exc:
            log.warning("tunebook: could not note trial %d for release after the fault (%s)", trial_id, exc)
            return False

    def drop_if_blank(self) -> None:
        """The worker ends without a note to leave: its reservation goes."""
        try:
            if json.loads(self.path.read_bytes()).get("trial") is None:
                self.path.unlink()
                self.path.parent.rmdir()  # the last one: no folder left behind
        except (OSError, ValueError, AttributeError):  # another worker's note is there, or this one is torn
            pass


def reserve(root: Path, store_id: str | None, worker_id: str) -> Note | None:
    """This worker's note, reserved now while there is room; None (and a warning line) when it cannot be."""
    path = root / FOLDER / _name(store_id, worker_id)
    try:
        path.parent.mkdir(exist_ok=True)
        with open(path, "wb") as f:  # a reservation names its worker: a dead worker's is removed by the next
            f.write(json.dumps({"store": store_id, "trial": None, "worker": worker_id}).encode().ljust(NOTE_SIZE))
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        log.warning("tunebook: could not reserve the note of trials left after a fault in %s (%s)", path.parent, exc)
        return None
    return Note(path, store_id, worker_id)


def noted(root: Path, store_id: str | None, reservations: bool = False) -> list[tuple[Path, dict]]:
    """The notes of ``store_id`` in ``root`` (a torn note is none); with ``reservations``, the reservations
    not written yet instead."""
    folder = root / FOLDER
    if not folder.is_dir():
        return []
    found = []
    prefix = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{store_id}.")
    for path in sorted(folder.glob(f"{prefix}*.json")):
        try:
            text = path.read_bytes().strip()
            mark = json.loads(text) if text else None
        except (OSError, ValueError):
            continue
        if isinstance(mark, dict) and mark.get("store") == store_id and (mark.get("trial") is None) == reservations:
            found.append((path, mark))
    return found


def release_noted(root: Path, store_id: str | None, release: Callable[[int, str, str], bool | None],
                  gone: Callable[[str], bool] = lambda worker: False) -> int:
    """Put back every noted trial of ``store_id``: ``release(trial, worker, cause)`` returns False when the
    store is still away (the note stays), anything else when the note is settled (it is deleted). The
    reservations of workers that are ``gone`` (killed before they could end) are deleted too."""
    for path, mark in noted(root, store_id, reservations=True):
        if gone(str(mark.get("worker"))):
            path.unlink(missing_ok=True)
    done = 0
    for path, mark in noted(root, store_id):
        if release(int(mark["trial"]), str(mark["worker"]), str(mark["cause"])) is False:
            continue
        done += 1
        try:
            path.unlink()
        except OSError:
            pass
    return done
