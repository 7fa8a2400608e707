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

from .files import (
    CORRUPT,
    DISK_ERRNOS,
    MAGIC,
    MARK,
    MAX_HEADER,
    CheckpointIOError,
    CheckpointMismatch,
    CheckpointUnsafe,
    atomic_save,
    is_disk_fault,
    load,
    read,
    read_open,
    snapshot,
)
from .manager import Checkpoint, CheckpointManager, checkpoint_dir, select_kept

__all__ = [
    "CORRUPT", "DISK_ERRNOS", "MAGIC", "MARK", "MAX_HEADER", "Checkpoint", "CheckpointIOError", "CheckpointManager",
    "CheckpointMismatch", "CheckpointUnsafe", "atomic_save", "checkpoint_dir", "is_disk_fault", "load", "read",
    "read_open", "select_kept", "snapshot",
]
