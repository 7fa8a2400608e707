"""Learning-rate schedules as small composable callables ``step -> lr``.

Steps count from 0 (the first update uses ``schedule(0)``), as in Optax. Every
schedule is a plain frozen dataclass: no hidden state, picklable, comparable.
Combine them with :func:`warmup` and :class:`Piecewise`; hand one to PyTorch
with :func:`lambda_lr`.

>>> s = warmup(cosine_decay(0.1, decay_steps=900), warmup_steps=100)
>>> s(0), s(50), round(s(100), 6), round(s(1000), 6)
(0.0, 0.05, 0.1, 0.0)

The playbook's round-2 rules ("Deciding how long to train when training is
compute-bound"): :func:`extend` lengthens a schedule to a new number of steps.
A linear decay keeps its decay length and extends its constant phase; a cosine
keeps its base rate and stretches over the new steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

Schedule = Callable[[int], float]


@dataclass(frozen=True)
class Constant:
    """``lr`` at every step."""

    lr: float

    def __call__(self, step: int) -> float:
        return float(self.lr)


@dataclass(frozen=True)
class LinearDecay:
    """Constant ``lr`` for ``constant_steps``, then linear to ``end_lr`` over ``decay_steps``."""

    lr: float
    decay_steps: int
    end_lr: float = 0.0
    constant_steps: int = 0

    def __call__(self, step: int) -> float:
        t = min(max(step - self.constant_steps, 0), self.decay_steps) / max(self.decay_steps, 1)
        return float(self.lr + (self.end_lr - self.lr) * t)


@dataclass(frozen=True)
class CosineDecay:
    """``end_lr + (lr - end_lr) * (1 + cos(pi * t / decay_steps)) / 2``, flat at ``end_lr`` after."""

    lr: float
    decay_steps: int
    end_lr: float = 0.0

    def __call__(self, step: int) -> float:
        t = min(max(step, 0), self.decay_steps) / max(self.decay_steps, 1)
        return float(self.end_lr + (self.lr - self.end_lr) * 0.5 * (1.0 + math.cos(math.pi * t)))


@dataclass(frozen=True)
class Rsqrt:
    """Inverse square root: ``lr * sqrt(timescale / max(step, timescale))`` (flat for the first ``timescale`` steps)."""

    lr: float
    timescale: int = 1

    def __call__(self, step: int) -> float:
        return float(self.lr * math.sqrt(self.timescale / max(step, self.timescale)))


@dataclass(frozen=True)
class Piecewise:
    """``values[i]`` from ``boundaries[i-1]`` (inclusive) to ``boundaries[i]``; ``len(values) == len(boundaries) + 1``.

    With schedules as values, each piece runs its schedule from its own start
    (step - boundary), which is how warmup composes.
    """

    boundaries: tuple[int, ...]
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError("piecewise: give one more value than boundaries")
        if list(self.boundaries) != sorted(self.boundaries):
            raise ValueError("piecewise: boundaries must increase")

    def __call__(self, step: int) -> float:
        start = 0
        for boundary, value in zip(self.boundaries, self.values):
            if step < boundary:
                return _value(value, step - start)
            start = boundary
        return _value(self.values[-1], step - start)


def _value(value: Any, step: int) -> float:
    return float(value(step)) if callable(value) else float(value)


@dataclass(frozen=True)
class Warmup:
    """Linear ramp from 0 to ``schedule(0)`` over ``warmup_steps``, then ``schedule(step - warmup_steps)``."""

    schedule: Any
    warmup_steps: int

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return float(self.schedule(0)) * step / self.warmup_steps
        return float(self.schedule(step - self.warmup_steps))


def constant(lr: float) -> Constant:
    return Constant(lr)


def linear_decay(lr: float, decay_steps: int, end_lr: float = 0.0, constant_steps: int = 0) -> LinearDecay:
    return LinearDecay(lr, decay_steps, end_lr, constant_steps)


def cosine_decay(lr: float, decay_steps: int, end_lr: float = 0.0) -> CosineDecay:
    return CosineDecay(lr, decay_steps, end_lr)


def rsqrt(lr: float, timescale: int = 1) -> Rsqrt:
    return Rsqrt(lr, timescale)


def piecewise(boundaries: Sequence[int], values: Sequence[Any]) -> Piecewise:
    return Piecewise(tuple(boundaries), tuple(values))


def warmup(schedule: Any, warmup_steps: int) -> Schedule:
    """Prepend a linear warmup from 0 (the playbook's default warmup)."""
    if warmup_steps <= 0:
        return schedule
    return Warmup(schedule, warmup_steps)


def extend(schedule: Any, old_steps: int, new_steps: int) -> Schedule:
    """The round-2 extension of a schedule that covered ``old_steps`` to ``new_steps``.

    - linear decay: keep the decay length, extend the constant phase;
    - cosine decay: keep the base rate, stretch the decay to the new length;
    - warmup: keep the warmup, extend what follows;
    - constant and rsqrt: unchanged.
    """
    extra = new_steps - old_steps
    if extra < 0:
        raise ValueError("extend: new_steps must be at least old_steps")
    if isinstance(schedule, Warmup):
        return Warmup(extend(schedule.schedule, old_steps - schedule.warmup_steps, new_steps - schedule.warmup_steps), schedule.warmup_steps)
    if isinstance(schedule, LinearDecay):
        return replace(schedule, constant_steps=schedule.constant_steps + extra)
    if isinstance(schedule, CosineDecay):
        return replace(schedule, decay_steps=schedule.decay_steps + extra)
    if isinstance(schedule, (Constant, Rsqrt)):
        return schedule
    raise TypeError(f"extend: no round-2 rule for {type(schedule).__name__}")


def lambda_lr(optimizer: Any, schedule: Schedule) -> Any:
    """A ``torch.optim.lr_scheduler.LambdaLR`` that sets each group's rate to ``schedule(step)``.

    LambdaLR multiplies the optimizer's initial rate by the lambda; the factor is
    therefore ``schedule(step) / initial_lr``, so the group's rate is exactly the
    schedule's. Call ``scheduler.step()`` after each ``optimizer.step()``.
    """
    from torch.optim.lr_scheduler import LambdaLR

    factors = []
    for group in optimizer.param_groups:
        base = group.get("initial_lr", group["lr"])
        if base == 0:
            raise ValueError("lambda_lr: create the optimizer with a non-zero lr (e.g. schedule's peak)")
        factors.append(lambda step, base=base: schedule(step) / base)
    return LambdaLR(optimizer, factors)


def from_params(params: dict[str, Any], max_train_steps: int, lr_key: str = "learning_rate",
                lr: float | None = None) -> Schedule:
    """A schedule from trial hyperparameters: ``schedule`` (constant|linear|cosine|rsqrt), ``warmup_steps``,
    ``end_lr`` and, for a linear decay extended by a later round, ``constant_steps``; the peak rate is
    ``params[lr_key]`` unless ``lr`` is given. ``params`` is read by key (``trial.params`` notes what is read)."""
    lr = float(params[lr_key] if lr is None else lr)
    kind = params.get("schedule", "constant")
    warm = int(params.get("warmup_steps", 0))
    end_lr = float(params.get("end_lr", 0.0))
    constant_steps = int(params.get("constant_steps", 0))
    decay = max(max_train_steps - warm, 1)
    if kind == "constant":
        base: Any = Constant(lr)
    elif kind == "linear":
        base = LinearDecay(lr, max(decay - constant_steps, 1), end_lr, constant_steps)
    elif kind == "cosine":
        base = CosineDecay(lr, decay, end_lr)
    elif kind == "rsqrt":
        base = Rsqrt(lr, int(params.get("rsqrt_timescale", max(warm, 1))))
    else:
        raise ValueError(f"schedule: unknown {kind!r}; use constant, linear, cosine or rsqrt")
    return warmup(base, warm)
