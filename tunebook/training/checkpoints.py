"""Exact resume for PyTorch training (keep-N-best checkpoints live in :mod:`tunebook.checkpoints`).

:func:`training_state` and :func:`restore_training_state` capture and restore
everything a resumed run needs to continue exactly: model, optimizer,
scheduler, the step, and the random states of Python, NumPy and PyTorch (CPU
and every CUDA device). :class:`~tunebook.checkpoints.CheckpointManager` and
:class:`~tunebook.checkpoints.Checkpoint` live in the core, :mod:`tunebook.checkpoints`.

This module imports torch only inside the functions that need it.
"""

from __future__ import annotations

import random
from typing import Any


def _rng_states() -> dict[str, Any]:
    import numpy as np
    import torch

    states: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def training_state(step: int, model: Any, optimizer: Any = None, scheduler: Any = None, **extra: Any) -> dict[str, Any]:
    """Everything needed to resume exactly: weights, optimizer, scheduler, step, RNG states."""
    state = {"step": step, "model": model.state_dict(), "rng": _rng_states(), "extra": extra}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    return state


def restore_training_state(state: dict[str, Any], model: Any, optimizer: Any = None, scheduler: Any = None) -> int:
    """Load a :func:`training_state` back; returns the step it was taken at."""
    import numpy as np
    import torch

    model.load_state_dict(state["model"])
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    rng = state.get("rng", {})
    if "python" in rng:
        random.setstate(rng["python"])
    if "numpy" in rng:
        np.random.set_state(rng["numpy"])
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return int(state["step"])
