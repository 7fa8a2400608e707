"""PyTorch helpers for the playbook's training pipeline (needs ``tunebook[torch]``).

Submodules: :mod:`.schedules` (learning-rate schedules), :mod:`.optimizers`
(the playbook's update rules), :mod:`.clipping` (gradient norms and clipping),
:mod:`.checkpoints` (exact resume; keep-N-best checkpoints are :mod:`tunebook.checkpoints`), :mod:`.evaluation`
(periodic, correctly weighted evaluation), :mod:`.batchnorm` (ghost batch norm,
cross-process statistics), :mod:`.seeds` (per-host seeds), :mod:`.pipeline`
(input-pipeline timing).

Names are imported lazily, so ``import tunebook`` never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "schedules": None, "optimizers": None, "clipping": None, "checkpoints": None,
    "evaluation": None, "batchnorm": None, "seeds": None, "pipeline": None,
    "CheckpointManager": "tunebook.checkpoints", "training_state": "checkpoints", "restore_training_state": "checkpoints",
    "clip_and_log": "clipping", "clip_by_global_norm": "clipping", "global_norm": "clipping",
    "PeriodicAction": "evaluation", "evaluate_classifier": "evaluation", "padded_batches": "evaluation",
    "GhostBatchNorm": "batchnorm", "sync_batchnorm_stats": "batchnorm",
    "host_seeds": "seeds", "seed_everything": "seeds",
    "TimedIterator": "pipeline",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tunebook.training' has no attribute {name!r}")
    module_name = _EXPORTS[name] or name
    path = module_name if module_name.startswith("tunebook.") else f"tunebook.training.{module_name}"
    try:
        module = importlib.import_module(path)
    except ImportError as exc:
        if "torch" in str(exc):
            from tunebook.errors import MissingExtraError

            raise MissingExtraError("torch", "torch", path) from exc
        raise
    return module if _EXPORTS[name] is None else getattr(module, name)


__all__ = list(_EXPORTS)
