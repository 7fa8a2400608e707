"""Seeds for single- and multi-host training.

The playbook ("Considerations for multi-host pipelines"): every host must
initialize the model with the same seed, and each host must read different
data (a different data seed), or the hosts train on duplicated batches.
:func:`host_seeds` derives both from the trial seed and the host index; each
is a deterministic function of those two numbers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HostSeeds:
    init: int  # the same on every host: model initialization
    data: int  # different per host: shuffling, augmentation, dropout


def _derive(*entropy: int) -> int:
    return int(np.random.SeedSequence(list(entropy)).generate_state(1)[0] & 0x7FFFFFFF)


def host_seeds(trial_seed: int, host_index: int = 0) -> HostSeeds:
    """Initialization seed (shared) and data seed (per host) for a trial."""
    if host_index < 0:
        raise ValueError("host_index must be 0 or more")
    return HostSeeds(init=_derive(trial_seed, 0), data=_derive(trial_seed, 1, host_index))


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and PyTorch (CPU and CUDA, if imported)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is optional here
        return
    torch.manual_seed(seed)  # also seeds every CUDA device
