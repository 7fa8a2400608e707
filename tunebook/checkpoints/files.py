"""The checkpoint file: its format, how it is written atomically, and how it is read without running code.

A file is ``MAGIC``, a 4-byte big-endian header length, a JSON header (``format``, ``codec``, ``store_id``,
``trial_id``, ``step``, ``size`` of the payload, ``mac``: the HMAC-SHA256 of the payload under the store's
checkpoint key, or null), then the payload (``torch.save`` when torch is loaded, else pickle). The header is
read and the identity checked before a single object of the payload is built; only a payload whose signature
matches the key is loaded in full. Anything else (unsigned, an older tunebook's file) goes through a
restricted unpickler that builds tensors, NumPy arrays and plain containers and refuses everything else.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import io
import json
import os
import pickle
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any

from tunebook.errors import StorageError, StorageUnavailable

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


def load(path: str | Path, map_location: Any = "cpu", *, key: bytes | None = None) -> Any:
    """Read the state of a checkpoint written by :func:`atomic_save` or a :class:`CheckpointManager`
    (unsigned, or without ``key``: tensors, arrays and plain containers only)."""
    return read(path, map_location, key=key)["state"]


#: What reading a truncated or corrupt checkpoint file raises (pickle, torch's zip reader).
CORRUPT = (EOFError, pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, ValueError, IndexError, KeyError,
           TypeError, AttributeError, struct.error)


