"""Ghost batch normalization and cross-process batch-norm statistics.

The playbook ("Batch normalization implementation details"): the batch-norm
batch size is a hyperparameter of its own and should be decoupled from the
(per-device) batch size; ghost batch norm normalizes each *virtual* batch of
``virtual_batch_size`` examples with its own statistics. Running statistics
are updated once per forward pass, with the average of the virtual batches'
means and (unbiased) variances.

In multi-process training, each process keeps its own running statistics;
:func:`sync_batchnorm_stats` averages them across processes before evaluation
or checkpointing so that every host evaluates the same model.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class GhostBatchNorm(nn.Module):
    """Batch norm over virtual batches of ``virtual_batch_size`` examples (inputs ``(N, C, ...)``)."""

    def __init__(
        self, num_features: int, virtual_batch_size: int = 64, momentum: float = 0.1, eps: float = 1e-5, affine: bool = True
    ) -> None:
        super().__init__()
        if virtual_batch_size < 2:
            raise ValueError("virtual_batch_size must be at least 2")
        self.num_features = num_features
        self.virtual_batch_size = virtual_batch_size
        self.momentum = momentum
        self.eps = eps
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def _shape(self, x: torch.Tensor) -> list[int]:
        return [1, self.num_features] + [1] * (x.dim() - 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        reduce_dims = [0] + list(range(2, x.dim()))
        chunks = x.split(self.virtual_batch_size, dim=0)
        outs, means, variances = [], [], []
        for chunk in chunks:
            mean = chunk.mean(dim=reduce_dims)
            var = chunk.var(dim=reduce_dims, unbiased=False)
            shape = self._shape(chunk)
            outs.append((chunk - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps))
            n = chunk.numel() / chunk.shape[1]
            means.append(mean)
            variances.append(var * n / max(n - 1, 1))  # unbiased, as nn.BatchNorm keeps it
        out = torch.cat(outs, dim=0)
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(torch.stack(means).mean(0), alpha=m)
            self.running_var.mul_(1 - m).add_(torch.stack(variances).mean(0), alpha=m)
            self.num_batches_tracked.add_(1)
        if self.weight is not None:
            shape = self._shape(x)
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out

    def extra_repr(self) -> str:
        return f"{self.num_features}, virtual_batch_size={self.virtual_batch_size}, momentum={self.momentum}, eps={self.eps}"


def _has_running_stats(module: Any) -> bool:
    return isinstance(getattr(module, "running_mean", None), torch.Tensor) and isinstance(
        getattr(module, "running_var", None), torch.Tensor
    )


def sync_batchnorm_stats(model: nn.Module) -> int:
    """Average every batch-norm running mean and variance across processes (no-op without ``torch.distributed``).

    Returns the number of layers synchronized.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return 0
    world = dist.get_world_size()
    layers = [m for m in model.modules() if _has_running_stats(m)]
    if not layers:
        return 0
    flat = torch.cat([torch.cat([m.running_mean.flatten(), m.running_var.flatten()]) for m in layers])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world
    offset = 0
    for m in layers:
        for buf in (m.running_mean, m.running_var):
            n = buf.numel()
            buf.copy_(flat[offset:offset + n].view_as(buf))
            offset += n
    return len(layers)
