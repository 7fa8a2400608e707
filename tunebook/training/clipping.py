"""Gradient norms and clipping, computed on the device with no host sync.

The playbook ("Gradient clipping"): clip the total gradient norm,
``g' = λ g / |g|`` when ``|g| > λ``; pick λ at about the 90th percentile of the
*unclipped* norms; clipping more than half of the updates is "extremely
aggressive" (lower the learning rate instead).

:func:`clip_and_log` returns the unclipped norm as a 0-d tensor and logs it
(``grad/norm``) and whether this step was clipped (``grad/clipped``) through
``trial.log``: the values stay on the device until the trial's buffer is
flushed. The threshold recommendation reads those logs
(:func:`tunebook.analysis.checks.recommend_clipping`).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from tunebook.analysis.checks import recommend_clipping

__all__ = ["clip_and_log", "clip_by_global_norm", "global_norm", "recommend_clipping"]


def _grads(parameters: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    return [p.grad for p in parameters if p.grad is not None]


def global_norm(parameters: Iterable[torch.Tensor]) -> torch.Tensor:
    """The total L2 norm of all gradients, as a 0-d tensor on their device (no sync)."""
    grads = _grads(parameters)
    if not grads:
        return torch.zeros(())
    norms = torch._foreach_norm(grads)  # one fused kernel per device and dtype
    return torch.linalg.vector_norm(torch.stack([n.to(torch.float32) for n in norms]))


def clip_by_global_norm(parameters: Iterable[torch.Tensor], threshold: float, norm: torch.Tensor | None = None) -> torch.Tensor:
    """Scale all gradients by ``min(1, λ / |g|)`` (``g' = λ g / |g|`` above λ); returns the unclipped norm.

    The scale is applied as a tensor, whatever its value, so no branch reads
    the norm on the host.
    """
    parameters = list(parameters)
    grads = _grads(parameters)
    total = global_norm(parameters) if norm is None else norm
    if grads:
        scale = torch.clamp(threshold / (total + 1e-12), max=1.0)
        torch._foreach_mul_(grads, scale.to(grads[0].dtype))
    return total


def clip_and_log(trial: Any, step: int, parameters: Iterable[torch.Tensor], threshold: float | None = None) -> torch.Tensor:
    """Log the unclipped norm (and, with a threshold, clip and log whether it clipped)."""
    parameters = list(parameters)
    norm = global_norm(parameters)
    if threshold is None:
        trial.log(step, **{"grad/norm": norm})
        return norm
    clip_by_global_norm(parameters, threshold, norm)
    trial.log(step, **{"grad/norm": norm, "grad/clipped": (norm > threshold).to(torch.float32)})
    return norm
