"""The playbook's optimizers, with its update rules exactly as written.

From "What are the update rules for all the popular optimization algorithms?"
(``g = ∇l(θ_t)``, ``η`` the learning rate):

- SGD:       ``θ ← θ - η g``
- Momentum:  ``v ← γ v + g``;  ``θ ← θ - η v``            (v₀ = 0)
- Nesterov:  ``v ← γ v + g``;  ``θ ← θ - η (γ v + g)``     (v₀ = 0)
- RMSProp:   ``v ← ρ v + (1-ρ) g²``;  ``m ← γ m + η g / sqrt(v + ε)``;  ``θ ← θ - m``   (v₀ = 1, m₀ = 0)
- Adam:      ``m ← β₁ m + (1-β₁) g``;  ``v ← β₂ v + (1-β₂) g²``;
             ``b = sqrt(1-β₂^(t+1)) / (1-β₁^(t+1))``;  ``θ ← θ - α m / (sqrt(v) + ε) · b``
- NAdam:     as Adam, with ``θ ← θ - α (β₁ m + (1-β₁) g) / (sqrt(v) + ε) · b``

Where these differ from PyTorch's built-ins:

- ``Adam``/``NAdam`` here add ε to ``sqrt(v)`` *before* the bias correction is
  applied as one factor ``b``; ``torch.optim.Adam`` divides by
  ``sqrt(v̂) + ε`` with ``v̂`` bias-corrected, i.e. an effective ε that is
  ``sqrt(1-β₂^t)`` times smaller early in training. ``torch.optim.NAdam`` also
  uses a momentum-decay schedule (``momentum_decay``), which the playbook's
  NAdam does not.
- ``RMSProp`` starts its second moment at ``v₀ = 1`` (PyTorch: 0), puts ε
  inside the square root (PyTorch: outside) and the learning rate inside the
  momentum buffer, so a learning-rate schedule changes only new contributions.
- ``Momentum``/``Nesterov`` match ``torch.optim.SGD(momentum=γ, dampening=0)``
  (and ``nesterov=True``) except that PyTorch initializes the buffer with the
  first gradient, which is the same thing as ``v₀ = 0``.

Weight decay is left out on purpose: add it to the loss (L2) or use a
decoupled form explicitly, so that the update rule stays the playbook's.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch.optim import Optimizer


class _Playbook(Optimizer):
    """Shared loop: for each parameter with a gradient, ``self._update(p, g, state, group)``."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if defaults["lr"] < 0:
            raise ValueError(f"invalid learning rate: {defaults['lr']}")
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                self._update(p, p.grad, self.state[p], group)
        return loss

    def _update(self, p: torch.Tensor, g: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError


class SGD(_Playbook):
    """``θ ← θ - η g``."""

    def __init__(self, params: Iterable[Any], lr: float) -> None:
        super().__init__(params, {"lr": lr})

    def _update(self, p, g, state, group):
        p.add_(g, alpha=-group["lr"])


class Momentum(_Playbook):
    """Heavy-ball momentum: ``v ← γ v + g``; ``θ ← θ - η v``."""

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.9) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum})

    def _update(self, p, g, state, group):
        if "v" not in state:
            state["v"] = torch.zeros_like(p)
        v = state["v"]
        v.mul_(group["momentum"]).add_(g)
        p.add_(v, alpha=-group["lr"])


class Nesterov(_Playbook):
    """``v ← γ v + g``; ``θ ← θ - η (γ v + g)``."""

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.9) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum})

    def _update(self, p, g, state, group):
        if "v" not in state:
            state["v"] = torch.zeros_like(p)
        v, gamma = state["v"], group["momentum"]
        v.mul_(gamma).add_(g)
        p.add_(v * gamma + g, alpha=-group["lr"])


class RMSProp(_Playbook):
    """``v ← ρ v + (1-ρ) g²``; ``m ← γ m + η g / sqrt(v + ε)``; ``θ ← θ - m``; ``v₀ = 1``."""

    def __init__(self, params: Iterable[Any], lr: float, rho: float = 0.9, momentum: float = 0.0, eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "rho": rho, "momentum": momentum, "eps": eps})

    def _update(self, p, g, state, group):
        if "v" not in state:
            state["v"] = torch.ones_like(p)
            state["m"] = torch.zeros_like(p)
        v, m = state["v"], state["m"]
        v.mul_(group["rho"]).addcmul_(g, g, value=1 - group["rho"])
        m.mul_(group["momentum"]).add_(g / (v + group["eps"]).sqrt(), alpha=group["lr"])
        p.sub_(m)


class Adam(_Playbook):
    """The playbook's Adam: bias correction as one factor ``b``, ε added to ``sqrt(v)``."""

    nesterov = False

    def __init__(self, params: Iterable[Any], lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps})

    def _update(self, p, g, state, group):
        if "m" not in state:
            state["t"] = 0
            state["m"] = torch.zeros_like(p)
            state["v"] = torch.zeros_like(p)
        b1, b2 = group["beta1"], group["beta2"]
        m, v = state["m"], state["v"]
        t = state["t"]
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        # b_{t+1}: a Python float, computed on the host from the step count (no device sync)
        b = (1 - b2 ** (t + 1)) ** 0.5 / (1 - b1 ** (t + 1))
        numerator = m * b1 + g * (1 - b1) if self.nesterov else m
        p.addcdiv_(numerator, v.sqrt().add_(group["eps"]), value=-group["lr"] * b)
        state["t"] = t + 1


class NAdam(Adam):
    """The playbook's NAdam: Adam with ``β₁ m + (1-β₁) g`` in the numerator."""

    nesterov = True


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "rmsprop": RMSProp, "adam": Adam, "nadam": NAdam}


def from_params(parameters: Iterable[Any], params: dict[str, Any], lr: float | None = None) -> Optimizer:
    """An optimizer from trial hyperparameters: ``optimizer`` plus its own (momentum, beta1, beta2, eps, rho)."""
    name = str(params.get("optimizer", "adam")).lower()
    lr = float(params["learning_rate"] if lr is None else lr)
    if name == "sgd":
        return SGD(parameters, lr)
    if name in ("momentum", "nesterov"):
        return OPTIMIZERS[name](parameters, lr, momentum=float(params.get("momentum", 0.9)))
    if name == "rmsprop":
        return RMSProp(parameters, lr, rho=float(params.get("rho", 0.9)), momentum=float(params.get("momentum", 0.0)),
                       eps=float(params.get("epsilon", 1e-8)))
    if name in ("adam", "nadam"):
        return OPTIMIZERS[name](parameters, lr, beta1=float(params.get("beta1", 0.9)), beta2=float(params.get("beta2", 0.999)),
                                eps=float(params.get("epsilon", 1e-8)))
    raise ValueError(f"optimizer: unknown {name!r}; use one of {', '.join(OPTIMIZERS)}")
