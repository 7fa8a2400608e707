"""Logged values to host floats (in the writer thread), and the rules that make a value infeasible.

:func:`to_floats` converts a batch of logged values with one transfer per device and dtype
(PyTorch), one ``jax.device_get`` per batch (JAX); a value that is no number becomes a
:class:`BadValue` and the others are still converted. :func:`check_rules` says why a value makes
a trial infeasible (NaN/Inf, an ``infeasible_if`` bound).
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any, Mapping, Sequence


_NUMBER, _TORCH, _JAX, _NUMPY_ARRAY, _BAD = range(5)
_KINDS: dict[type, int] = {float: _NUMBER, int: _NUMBER}  # resolved once per type


def _kind(cls: type) -> int:
    kind = _KINDS.get(cls)
    if kind is None:
        kind = _resolve_kind(cls)
        _KINDS[cls] = kind
    return kind


def _resolve_kind(cls: type) -> int:
    if issubclass(cls, (str, bytes)):
        return _BAD
    if issubclass(cls, numbers.Real):  # NumPy scalars register as numbers.Real / Integral
        return _NUMBER
    torch = sys.modules.get("torch")  # no tensor can exist before torch is imported
    if torch is not None and issubclass(cls, torch.Tensor):
        return _TORCH
    jax = sys.modules.get("jax")
    if jax is not None and (issubclass(cls, jax.Array) or issubclass(cls, jax.core.Tracer)):
        return _JAX
    numpy = sys.modules.get("numpy")
    if numpy is not None and issubclass(cls, numpy.ndarray):
        return _NUMPY_ARRAY
    return _BAD


class BadValue:
    """Why one logged value could not become a float (the rest of its batch is still written)."""

    __slots__ = ("problem", "fix")

    def __init__(self, problem: str, fix: str = "log a Python or NumPy number, or a 0-d tensor/array") -> None:
        self.problem, self.fix = problem, fix

    def __repr__(self) -> str:
        return f"BadValue({self.problem!r})"


def _not_scalar(shape: tuple[int, ...]) -> BadValue:
    return BadValue(f"log a scalar, got a tensor of shape {tuple(shape)}", "reduce it first (e.g. loss.mean())")


def _plain(value: Any) -> float | BadValue:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return BadValue(f"{value!r:.60} is not a number".replace("\n", " "))


def to_floats(values: Sequence[Any]) -> list[float | BadValue]:
    """Host floats for a batch of logged values: one transfer per device and dtype (PyTorch; a CPU
    tensor is read with ``item()``, nothing to wait for) and
    one ``jax.device_get`` for every JAX array of the batch; a value that is no number becomes a
    :class:`BadValue` and the others are still converted."""
    out: list[float | BadValue] = [0.0] * len(values)
    tensors: dict[Any, list[int]] = {}
    arrays: list[int] = []
    for i, value in enumerate(values):
        kind = _kind(type(value))
        if kind == _NUMBER:
            out[i] = float(value)
        elif kind == _TORCH:
            if value.is_cpu:  # no device to wait for: item() is the cheapest read
                try:
                    x = value.item()
                except RuntimeError:  # more than one element
                    out[i] = _not_scalar(value.shape)
                else:
                    out[i] = x if type(x) is float else _plain(x)
            elif value.numel() != 1:
                out[i] = _not_scalar(value.shape)
            else:
                tensors.setdefault((value.device, value.dtype), []).append(i)
        elif kind == _JAX:
            if _is_tracer(value):
                out[i] = BadValue("a JAX tracer (logged inside jax.jit)", "return the value from the jitted step and log it outside")
            elif value.size != 1:
                out[i] = _not_scalar(value.shape)
            else:
                arrays.append(i)
        elif kind == _NUMPY_ARRAY:
            out[i] = _plain(value) if value.size == 1 else _not_scalar(value.shape)
        else:
            out[i] = BadValue(f"{value!r:.60} is not a number") if isinstance(value, (str, bytes)) else _plain(value)
    if tensors:
        _torch_floats(values, tensors, out)
    if arrays:
        _jax_floats(values, arrays, out)
    return out


def _torch_floats(values: Sequence[Any], groups: dict[Any, list[int]], out: list[float | BadValue]) -> None:
    import torch

    with torch.no_grad():
        for indices in groups.values():
            try:
                stacked = torch.stack([values[i] if values[i].dim() == 0 else values[i].reshape(()) for i in indices])
                stacked = stacked.to(torch.float64)
                for i, x in zip(indices, stacked.cpu().tolist()):  # the one transfer of this device and dtype
                    out[i] = x
            except (RuntimeError, TypeError) as exc:  # e.g. a complex dtype: find the culprit value by value
                for i in indices:
                    try:
                        out[i] = float(values[i].reshape(()).to(torch.float64).item())
                    except (RuntimeError, TypeError):
                        out[i] = BadValue(f"a {values[i].dtype} tensor cannot become a float ({exc})".splitlines()[0])


def _is_tracer(value: Any) -> bool:
    core = getattr(sys.modules.get("jax"), "core", None)
    tracer = getattr(core, "Tracer", None)
    return tracer is not None and isinstance(value, tracer)


def _jax_floats(values: Sequence[Any], indices: list[int], out: list[float | BadValue]) -> None:
    import jax

    try:
        host = jax.device_get([values[i] for i in indices])  # one transfer per flush
    except Exception as exc:  # e.g. a donated (deleted) buffer: find the culprit value by value
        for i in indices:
            try:
                out[i] = float(jax.device_get(values[i]).reshape(()))
            except Exception:
                out[i] = BadValue(f"a JAX array that cannot be read ({exc})".splitlines()[0])
        return
    for i, x in zip(indices, host):
        out[i] = _plain(x.reshape(()))


def check_rules(rules: Mapping[str, Mapping[str, float]], name: str, value: float) -> str | None:
    """The reason ``value`` of metric ``name`` makes a trial infeasible, or None."""
    if not math.isfinite(value):
        return f"{name} was {value}"
    rule = rules.get(name)
    if rule:
        if "above" in rule and value > rule["above"]:
            return f"{name} = {value:.6g} above {rule['above']:g} (infeasible_if)"
        if "below" in rule and value < rule["below"]:
            return f"{name} = {value:.6g} below {rule['below']:g} (infeasible_if)"
    return None


__all__ = ["BadValue", "check_rules", "to_floats"]
