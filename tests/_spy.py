"""A tensor that records every torch function called on it: proof that code never reads the device."""

from __future__ import annotations

import torch

# Names of tensor methods that make the host wait for the device.
SYNCING = {"item", "cpu", "tolist", "numpy", "__float__", "__bool__", "__int__", "__index__", "__format__", "to"}


class SpyTensor(torch.Tensor):
    calls: list[str] = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        cls.calls.append(getattr(func, "__name__", str(func)))
        return super().__torch_function__(func, types, args, kwargs or {})
