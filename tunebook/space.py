"""Search spaces: hyperparameters with a type and a role.

The playbook sorts the hyperparameters of a round into three roles
("Identifying scientific, nuisance, and fixed hyperparameters"):

- ``scientific``: what the study measures the effect of;
- ``nuisance``: optimized away so that scientific values are compared fairly;
- ``fixed``: held constant (plain values).

Each varied hyperparameter maps the unit interval onto its values, so that a
design (quasi-random, random, grid) only ever produces points in ``[0, 1)^d``.

>>> space = SearchSpace(
...     scientific={"weight_decay": Choice([0.0, 1e-4])},
...     nuisance={"learning_rate": Float(1e-4, 1.0, scale="log")},
...     fixed={"batch_size": 128},
... )
>>> space.varied
['weight_decay', 'learning_rate']
>>> round(space.params["learning_rate"].from_unit(0.5), 6)
0.01
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Union

from tunebook._errors import SpecError

ROLES = ("scientific", "nuisance", "fixed")
SCALES = ("linear", "log")


def _number(value: Any, field: str) -> float:
    """A YAML number; PyYAML reads ``1e-4`` (no dot) as a string, so accept that too."""
    if isinstance(value, bool):
        raise SpecError(field, f"expected a number, got {value!r}", "write a number such as 0.001")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise SpecError(
                field, f"expected a number, got {value!r}", "write a number such as 0.001"
            ) from None
    else:
        raise SpecError(
            field, f"expected a number, got {type(value).__name__}", "write a number such as 0.001"
        )
    if not math.isfinite(number):
        raise SpecError(field, f"must be finite, got {value!r}", "give a finite bound")
    return number


def _check_scale(scale: Any, field: str) -> None:
    if scale not in SCALES:
        raise SpecError(f"{field}.scale", f"unknown scale {scale!r}", "use 'linear' or 'log'")


@dataclass(frozen=True)
class Float:
    """A real hyperparameter in ``[low, high]``; ``scale="log"`` samples log-uniformly."""

    low: float
    high: float
    scale: str = "linear"

    def validate(self, field: str) -> None:
        _check_scale(self.scale, field)
        low, high = _number(self.low, f"{field}.min"), _number(self.high, f"{field}.max")
        if low >= high:
            raise SpecError(
                field,
                f"min ({low:g}) must be below max ({high:g})",
                "swap them, or move the constant to fixed",
            )
        if self.scale == "log" and low <= 0:
            raise SpecError(
                f"{field}.min",
                f"a log scale needs min > 0, got {low:g}",
                "use a positive min (e.g. 1e-6) or scale: linear",
            )

    def _scaled(self) -> tuple[float, float]:
        if self.scale == "log":
            return math.log(self.low), math.log(self.high)
        return float(self.low), float(self.high)

    def from_unit(self, u: float) -> float:
        a, b = self._scaled()
        x = a + u * (b - a)
        return min(max(math.exp(x) if self.scale == "log" else x, self.low), self.high)

    def to_unit(self, value: float) -> float:
        """Position of ``value`` in scaled coordinates, 0 at ``low`` and 1 at ``high``."""
        a, b = self._scaled()
        x = math.log(value) if self.scale == "log" else float(value)
        return (x - a) / (b - a)

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"min": float(self.low), "max": float(self.high)}
        if self.scale != "linear":
            spec["scale"] = self.scale
        return spec


@dataclass(frozen=True)
class Int:
    """An integer hyperparameter in ``[low, high]`` (both included)."""

    low: int
    high: int
    scale: str = "linear"

    def validate(self, field: str) -> None:
        _check_scale(self.scale, field)
        for key, value in (("min", self.low), ("max", self.high)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecError(
                    f"{field}.{key}", f"expected an integer, got {value!r}", "write a whole number"
                )
        if self.low >= self.high:
            raise SpecError(
                field,
                f"min ({self.low}) must be below max ({self.high})",
                "swap them, or move the constant to fixed",
            )
        if self.scale == "log" and self.low <= 0:
            raise SpecError(
                f"{field}.min",
                f"a log scale needs min > 0, got {self.low}",
                "use min >= 1 or scale: linear",
            )

    def from_unit(self, u: float) -> int:
        if self.scale == "log":
            # Log-uniform over [low - 1/2, high + 1/2], rounded: each integer keeps its share.
            a, b = math.log(self.low - 0.5), math.log(self.high + 0.5)
            value = round(math.exp(a + u * (b - a)))
        else:
            # Each integer owns an equal share of the unit interval.
            value = self.low + math.floor(u * (self.high - self.low + 1))
        return int(min(max(value, self.low), self.high))

    def to_unit(self, value: float) -> float:
        if self.scale == "log":
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (float(value) - self.low) / (self.high - self.low)

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"min": self.low, "max": self.high, "type": "int"}
        if self.scale != "linear":
            spec["scale"] = self.scale
        return spec


@dataclass(frozen=True)
class Choice:
    """One of a list of values (numbers, strings, booleans)."""

    values: tuple[Any, ...]

    def __init__(self, values: Any) -> None:
        object.__setattr__(self, "values", tuple(values) if isinstance(values, (list, tuple)) else values)

    def validate(self, field: str) -> None:
        if not isinstance(self.values, tuple):
            raise SpecError(
                f"{field}.choice", f"expected a list, got {self.values!r}", "write choice: [a, b, c]"
            )
        if not self.values:
            raise SpecError(f"{field}.choice", "is empty", "list at least one value")
        seen = []
        for value in self.values:
            if value in seen:
                raise SpecError(f"{field}.choice", f"lists {value!r} twice", "list each value once")
            seen.append(value)

    def from_unit(self, u: float) -> Any:
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]

    def to_unit(self, value: Any) -> float:
        """The centre of the value's share of the unit interval."""
        return (self.values.index(value) + 0.5) / len(self.values)

    def to_spec(self) -> dict[str, Any]:
        return {"choice": list(self.values)}


Param = Union[Float, Int, Choice]
_PARAM_TYPES = (Float, Int, Choice)


def param_from_spec(spec: Any, field: str) -> Param:
    """Parse the YAML form: ``{min, max, scale?, type?}`` or ``{choice: [...]}``."""
    if not isinstance(spec, Mapping):
        raise SpecError(
            field,
            f"a varied hyperparameter needs a range or a choice, got {spec!r}",
            "write {min: ..., max: ...} or {choice: [...]}, or move the constant to fixed",
        )
    keys = set(spec)
    if "choice" in keys:
        unknown = keys - {"choice"}
        if unknown:
            raise SpecError(
                f"{field}.{sorted(unknown)[0]}", "unknown key beside choice", "a choice takes only 'choice'"
            )
        param: Param = Choice(spec["choice"])
    else:
        unknown = keys - {"min", "max", "scale", "type"}
        if unknown:
            raise SpecError(
                f"{field}.{sorted(unknown)[0]}",
                "unknown key",
                "a range takes min, max, scale (linear|log) and type (float|int)",
            )
        for key in ("min", "max"):
            if key not in spec:
                raise SpecError(f"{field}.{key}", "is missing", f"give the range's {key}")
        kind = spec.get("type", "float")
        scale = spec.get("scale", "linear")
        if kind == "int":
            param = Int(spec["min"], spec["max"], scale)
        elif kind == "float":
            param = Float(_number(spec["min"], f"{field}.min"), _number(spec["max"], f"{field}.max"), scale)
        else:
            raise SpecError(f"{field}.type", f"unknown type {kind!r}", "use 'float' or 'int'")
    param.validate(field)
    return param


class SearchSpace:
    """Hyperparameters by role. ``params`` holds the varied ones, ``fixed`` the constants."""

    def __init__(
        self,
        scientific: Mapping[str, Param] | None = None,
        nuisance: Mapping[str, Param] | None = None,
        fixed: Mapping[str, Any] | None = None,
        *,
        field: str = "search_space",
        allow_fixed_only: bool = False,
    ) -> None:
        self.scientific: dict[str, Param] = {}
        self.nuisance: dict[str, Param] = {}
        self.fixed: dict[str, Any] = {}
        self.roles: dict[str, str] = {}
        for role, given in (("scientific", scientific), ("nuisance", nuisance), ("fixed", fixed)):
            if given is None:
                continue
            if not isinstance(given, Mapping):
                raise SpecError(
                    f"{field}.{role}",
                    f"expected a mapping of names to hyperparameters, got {type(given).__name__}",
                    f"write {role}: {{name: ...}}",
                )
            for name, value in given.items():
                where = f"{field}.{role}.{name}"
                if not isinstance(name, str) or not name:
                    raise SpecError(where, "a hyperparameter name must be a non-empty string", "rename it")
                if name in self.roles:
                    raise SpecError(
                        where,
                        f"'{name}' is already {self.roles[name]}",
                        "give each hyperparameter exactly one role",
                    )
                if role == "fixed":
                    if isinstance(value, _PARAM_TYPES):
                        raise SpecError(
                            where, "a fixed hyperparameter is a constant", "move the range to nuisance or scientific"
                        )
                    self.fixed[name] = value
                else:
                    if not isinstance(value, _PARAM_TYPES):
                        value = param_from_spec(value, where)
                    value.validate(where)
                    getattr(self, role)[name] = value
                self.roles[name] = role
        if not self.scientific and not self.nuisance and not allow_fixed_only:
            raise SpecError(
                field, "nothing varies", "give at least one scientific or nuisance hyperparameter"
            )

    @property
    def params(self) -> dict[str, Param]:
        """The varied hyperparameters: scientific first, then nuisance."""
        return {**self.scientific, **self.nuisance}

    @property
    def varied(self) -> list[str]:
        return list(self.params)

    def to_spec(self) -> dict[str, Any]:
        """The canonical YAML form (what is stored with the study)."""
        return {
            "scientific": {k: p.to_spec() for k, p in self.scientific.items()},
            "nuisance": {k: p.to_spec() for k, p in self.nuisance.items()},
            "fixed": dict(self.fixed),
        }

    @classmethod
    def from_spec(cls, spec: Any, field: str = "search_space", allow_fixed_only: bool = False) -> "SearchSpace":
        if not isinstance(spec, Mapping):
            raise SpecError(field, "expected a mapping with scientific, nuisance and fixed", "see `tunebook init`")
        unknown = set(spec) - set(ROLES)
        if unknown:
            raise SpecError(
                f"{field}.{sorted(map(str, unknown))[0]}",
                "unknown role",
                "the roles are scientific, nuisance and fixed",
            )
        return cls(spec.get("scientific"), spec.get("nuisance"), spec.get("fixed"), field=field,
                   allow_fixed_only=allow_fixed_only)

    def __repr__(self) -> str:
        return f"SearchSpace({self.to_spec()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.to_spec() == other.to_spec()
