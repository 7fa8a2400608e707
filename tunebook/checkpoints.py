"""Checkpoints: keep the N best by the objective plus the latest, written atomically.

The playbook ("Saving checkpoints and retrospectively selecting the best
checkpoint"): train for a fixed number of steps and pick the best checkpoint
afterwards. :class:`CheckpointManager` keeps the ``keep_best`` checkpoints with
the best objective and the latest one (for resuming), deleting the others.
``Trial.checkpoint``/``Trial.restore`` use it, recording the manifest in the
store; it also works on its own. It is part of the core (every trial uses
it); PyTorch's exact-resume helpers (``training_state``,
``restore_training_state``) live in :mod:`tunebook.training.checkpoints`.

Checkpoints belong to their store: they live under
``<root>/<store id>/<study>/trial-NNNNN`` (:func:`checkpoint_dir`) and every
file starts with a JSON header (store id, trial id, step, payload size, and an
HMAC-SHA256 of the payload keyed by a secret the store keeps) that is read and
checked before a single object of the payload is built. A file from another
store or trial, or one whose signature does not match, is refused with one line
(:class:`CheckpointMismatch`), never unpickled. A file without a valid signature
(an older tunebook's, or one written without a store) is loaded only through a
restricted unpickler that builds tensors, NumPy arrays and plain containers and
refuses everything else (:class:`CheckpointUnsafe`), so no file placed in a
checkpoint folder can run code. A truncated or corrupt latest checkpoint is skipped (and removed):
the previous intact one is restored instead. A disk that is full or failing
while a checkpoint is written or read is an infrastructure fault
(:class:`CheckpointIOError`, a :class:`~tunebook.errors.StorageUnavailable`):
the trial is retried, never failed for it.

This module imports torch only when a checkpoint holds tensors.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import io
import json
import logging
import math
import os
import pickle
import struct
import sys
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from tunebook.errors import StorageError, StorageUnavailable
from tunebook.storage.base import CheckpointRecord

log = logging.getLogger("tunebook")

#: Key of the envelope an older tunebook pickled around the state: {MARK: 1, "store_id", "trial_id", "step", "state"}.
MARK = "__tunebook_checkpoint__"

#: The first bytes of a checkpoint file: magic, then a 4-byte big-endian header length, the JSON header, the payload.
MAGIC = b"TBCKPT\x02\n"
_HEADER_LEN = struct.Struct(">I")
#: A header larger than this is not tunebook's (a file is refused before reading more of it).
MAX_HEADER = 64 * 1024

#: OSError numbers that mean the disk, not the training code, failed: retried as infrastructure faults.
DISK_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EIO", "EROFS", "EFBIG") if hasattr(errno, name)
)


class CheckpointMismatch(StorageError):
    """The checkpoint file belongs to another store or trial: refused, never loaded."""


class CheckpointUnsafe(CheckpointMismatch):
    """An unsigned checkpoint file holds objects other than tensors, arrays and plain containers: refused."""


class CheckpointIOError(StorageUnavailable):
    """The disk failed while a checkpoint was written or read (full, read-only, I/O error): retried."""


def is_disk_fault(exc: BaseException) -> bool:
    """Is ``exc`` the file system failing (disk full, I/O error), not the training code?"""
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


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


def _serialize(state: Any, f: Any) -> str:
    """Write ``state`` to ``f`` (torch's format when torch is loaded, else pickle); the codec's name."""
    if "torch" in sys.modules:
        import torch

        torch.save(state, f)
        return "torch"
    pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
    return "pickle"


def atomic_save(state: Any, path: Path, *, store_id: str | None = None, trial_id: int | None = None,
                step: int | None = None, key: bytes | None = None) -> None:
    """Write ``state`` as a checkpoint file: header (identity, size, signature) then payload.

    Written to a temporary file, fsynced, renamed over ``path``, the folder fsynced. With ``key``
    (the store's checkpoint key) the payload is signed, so that :func:`read` given the same key
    loads it in full; without one it is read back through the restricted unpickler only."""
    buffer = io.BytesIO()
    codec = _serialize(state, buffer)
    payload = buffer.getbuffer()
    header = {"format": 2, "codec": codec, "store_id": store_id, "trial_id": trial_id, "step": step,
              "size": len(payload),
              "mac": hmac.new(key, payload, hashlib.sha256).hexdigest() if key else None}
    head = json.dumps(header, sort_keys=True).encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + _HEADER_LEN.pack(len(head)) + head)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no half-written (or 0-byte) file left behind
        raise
    finally:
        del payload
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def snapshot(state: Any) -> Any:
    """A copy of ``state`` whose tensors are on the CPU and no longer shared with training."""
    if "torch" not in sys.modules:
        import copy

        return copy.deepcopy(state)
    import torch

    def copy_tree(obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return obj.detach().to("cpu", copy=True)
        if isinstance(obj, dict):
            return type(obj)((k, copy_tree(v)) for k, v in obj.items())
        if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
            return type(obj)(copy_tree(v) for v in obj)
        import copy

        return copy.deepcopy(obj)

    return copy_tree(state)


class _Region(io.RawIOBase):
    """The payload part of an open checkpoint file, seen as a file of its own (offsets from its start)."""

    def __init__(self, f: Any, start: int, size: int) -> None:
        self._f, self._start, self._size, self._pos = f, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, b: Any) -> int:
        n = max(0, min(len(b), self._size - self._pos))
        self._f.seek(self._start + self._pos)
        got = self._f.readinto(memoryview(b)[:n]) if n else 0
        self._pos += got
        return got


def _numpy_globals() -> list[Any]:
    """The NumPy names a pickled array, dtype or scalar needs (none of them runs code)."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core  # NumPy 2 / 1
    names = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype]
    frombuffer = getattr(getattr(core, "numeric", None), "_frombuffer", None)
    if frombuffer is not None:
        names.append(frombuffer)
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        names += [v for v in vars(dtypes).values() if isinstance(v, type) and issubclass(v, np.dtype)]
    return names


#: Globals an unsigned plain-pickle checkpoint may name (beside NumPy's): containers, nothing callable beyond them.
_SAFE_BUILTINS = {("builtins", n) for n in ("set", "frozenset", "complex", "slice", "bytearray", "range", "dict",
                                              "list", "tuple", "int", "float", "str", "bytes", "bool")}
_SAFE_BUILTINS |= {("collections", "OrderedDict"), ("_codecs", "encode")}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_BUILTINS:
            return super().find_class(module, name)
        if module.split(".")[0] == "numpy":
            found = super().find_class(module, name)
            if any(found is g for g in _numpy_globals()):
                return found
        raise CheckpointUnsafe(f"{module}.{name}")


def _safe_load(f: Any, codec: str, map_location: Any) -> Any:
    """Build the payload without running code: tensors, arrays, numbers, strings and containers only."""
    if codec == "torch":
        import torch

        with torch.serialization.safe_globals(_numpy_globals()):
            try:
                return torch.load(f, map_location=map_location, weights_only=True)
            except pickle.UnpicklingError as exc:
                if "Weights only load failed" in str(exc):
                    raise CheckpointUnsafe(str(exc).split("WeightsUnpickler error:")[-1].strip().splitlines()[0]) \
                        from None
                raise
    return _RestrictedUnpickler(f).load()


def _full_load(f: Any, codec: str, map_location: Any) -> Any:
    """Build a verified payload (signed with this store's key): any object the training code saved."""
    if codec == "torch":
        import torch

        return torch.load(f, map_location=map_location, weights_only=False)
    return pickle.load(f)


def _codec_of(f: Any) -> str:
    head = f.read(2)
    f.seek(0)
    return "torch" if head == b"PK" else "pickle"  # torch.save writes a zip archive


def _mac_of(f: Any, start: int, size: int, key: bytes) -> str:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    f.seek(start)
    left = size
    while left > 0:
        chunk = f.read(min(left, 1 << 20))
        if not chunk:
            break
        mac.update(chunk)
        left -= len(chunk)
    return mac.hexdigest()


def read_open(f: Any, name: str, *, map_location: Any = "cpu", key: bytes | None = None,
              store_id: str | None = None, trial_id: int | None = None) -> dict[str, Any]:
    """A checkpoint's envelope read from the open binary file ``f``: ``state``, ``store_id``, ``trial_id``, ``step``.

    The identity in the header is checked against ``store_id`` and ``trial_id`` (when given) before any
    object is built: another store's or trial's file raises :class:`CheckpointMismatch`. A payload signed
    with ``key`` is loaded in full; a file whose signature does not match ``key`` is refused; an unsigned
    file (or no ``key``) goes through the restricted unpickler (:class:`CheckpointUnsafe` for anything
    but tensors, arrays and plain containers). ``name`` names the file in messages."""
    f.seek(0)
    if f.read(len(MAGIC)) != MAGIC:  # an older tunebook's file: no header to check before building it
        f.seek(0)
        payload = _checked_safe_load(f, _codec_of(f), map_location, name)
        envelope = payload if isinstance(payload, dict) and payload.get(MARK) == 1 else {"state": payload}
        _check_identity(envelope, name, store_id, trial_id)
        return envelope
    (length,) = _HEADER_LEN.unpack(f.read(_HEADER_LEN.size))
    if length > MAX_HEADER:
        raise ValueError(f"header of {length} bytes")
    header = json.loads(f.read(length))
    if not isinstance(header, dict) or not isinstance(header.get("size"), int):
        raise ValueError("no header")
    _check_identity(header, name, store_id, trial_id)
    start = len(MAGIC) + _HEADER_LEN.size + length
    size = header["size"]
    if os.fstat(f.fileno()).st_size - start != size:
        raise EOFError(f"{name}: payload of {os.fstat(f.fileno()).st_size - start} bytes, header says {size}")
    codec = "torch" if header.get("codec") == "torch" else "pickle"
    region = io.BufferedReader(_Region(f, start, size))
    mac = header.get("mac")
    if key and mac:
        if not hmac.compare_digest(_mac_of(f, start, size, key), str(mac)):
            raise CheckpointMismatch(
                f"checkpoint {name} is not signed by this store (its signature does not match); refusing to load it: "
                "it was written by another store or changed since"
            )
        state = _full_load(region, codec, map_location)
    else:
        state = _checked_safe_load(region, codec, map_location, name)
    return {"state": state, "store_id": header.get("store_id"), "trial_id": header.get("trial_id"),
            "step": header.get("step"), "signed": bool(key and mac)}


def _checked_safe_load(f: Any, codec: str, map_location: Any, name: str) -> Any:
    try:
        return _safe_load(f, codec, map_location)
    except CheckpointUnsafe as exc:
        raise CheckpointUnsafe(
            f"checkpoint {name} is not signed by this store and holds {exc} (not a tensor, array or plain "
            "container); refusing to load it: load it yourself with torch.load(weights_only=False) only if you "
            "trust where it came from"
        ) from None


def _check_identity(header: dict[str, Any], name: str, store_id: str | None, trial_id: int | None) -> None:
    for key, mine in (("store_id", store_id), ("trial_id", trial_id or None)):
        theirs = header.get(key)
        if mine is not None and theirs is not None and theirs != mine:
            what = "store" if key == "store_id" else "trial"
            raise CheckpointMismatch(
                f"checkpoint {name} belongs to {what} {theirs}, not to this {what} ({mine}); "
                "refusing to load it: give each store its own checkpoint folder"
            )


def read(path: str | Path, map_location: Any = "cpu", *, key: bytes | None = None, store_id: str | None = None,
         trial_id: int | None = None) -> dict[str, Any]:
    """A checkpoint file's envelope: ``state`` and, when recorded, ``store_id``, ``trial_id``, ``step``
    (see :func:`read_open` for what is checked before anything is built)."""
    with open(path, "rb") as f:
        return read_open(f, str(path), map_location=map_location, key=key, store_id=store_id, trial_id=trial_id)


#: What reading a truncated or corrupt checkpoint file raises (pickle, torch's zip reader).
CORRUPT = (EOFError, pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, ValueError, IndexError, KeyError,
           TypeError, AttributeError, struct.error)


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
