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

A scientific ``Choice`` can give each of its values its own nuisance
subspace (the playbook's *conditional hyperparameters*: "the learning rate of
Adam and the learning rate of SGD are different hyperparameters"), keyed
``name=value``, beside the nuisance hyperparameters shared by every value:

>>> space = SearchSpace(
...     scientific={"optimizer": Choice(["adam", "momentum"])},
...     nuisance={"weight_decay": Float(1e-6, 1e-2, scale="log")},
...     conditional={
...         "optimizer=adam": {"learning_rate": Float(1e-5, 1e-2, scale="log"), "beta1": Float(0.8, 0.99)},
...         "optimizer=momentum": {"learning_rate": Float(1e-3, 10.0, scale="log"), "momentum": Float(0.8, 0.99)},
...     },
... )
>>> list(space.nuisance_for({"optimizer": "momentum"}))
['weight_decay', 'learning_rate', 'momentum']
>>> space.params["learning_rate"]  # the envelope of both ranges (figures, axes)
Float(low=1e-05, high=10.0, scale='log')

A value without an entry gets only the shared nuisance hyperparameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Union

from tunebook.errors import SpecError
from tunebook.specio import check_bounds, check_json

ROLES = ("scientific", "nuisance", "fixed")
#: The keys of a search space's spec: the roles, and the per-value nuisance subspaces.
SPACE_KEYS = (*ROLES, "conditional")
SCALES = ("linear", "log")


def spec_number(value: Any, field: str) -> float:
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


def _check_order(low: Any, high: Any, scale: str, field: str, shown: Callable[[Any], str], log_fix: str) -> None:
    """min below max, and min > 0 on a log scale; ``shown`` writes a bound in the message."""
    if low >= high:
        raise SpecError(field, f"min ({shown(low)}) must be below max ({shown(high)})", "swap them, or move the constant to fixed")
    if scale == "log" and low <= 0:
        raise SpecError(f"{field}.min", f"a log scale needs min > 0, got {shown(low)}", log_fix)


@dataclass(frozen=True)
class Float:
    """A real hyperparameter in ``[low, high]``; ``scale="log"`` samples log-uniformly."""

    low: float
    high: float
    scale: str = "linear"

    def validate(self, field: str) -> None:
        _check_scale(self.scale, field)
        low, high = spec_number(self.low, f"{field}.min"), spec_number(self.high, f"{field}.max")
        _check_order(low, high, self.scale, field, "{:g}".format, "use a positive min (e.g. 1e-6) or scale: linear")
        check_bounds(low, high, self.scale, field)

    def scaled_bounds(self) -> tuple[float, float]:
        """``(low, high)`` in the coordinates the range is uniform in (their logs on a log scale)."""
        if self.scale == "log":
            return math.log(self.low), math.log(self.high)
        return float(self.low), float(self.high)

    def from_unit(self, u: float) -> float:
        a, b = self.scaled_bounds()
        x = a + u * (b - a)
        return min(max(math.exp(x) if self.scale == "log" else x, self.low), self.high)

    def to_unit(self, value: float) -> float:
        """Position of ``value`` in scaled coordinates, 0 at ``low`` and 1 at ``high``."""
        a, b = self.scaled_bounds()
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
        _check_order(self.low, self.high, self.scale, field, str, "use min >= 1 or scale: linear")
        check_bounds(self.low, self.high, "linear", field)  # integers: ±1e15 whatever the scale

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
        check_json(list(self.values), f"{field}.choice")  # plain JSON values, none containing itself
        seen: set[Any] = set()  # hashable values by ==, as `in` on a list would (1, 1.0 and True are one value)
        for value in self.values:
            key = value if not isinstance(value, (list, dict)) else ("json", _canonical(value))
            if key in seen:
                raise SpecError(f"{field}.choice", f"lists {value!r:.60} twice", "list each value once")
            seen.add(key)

    def from_unit(self, u: float) -> Any:
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]

    def to_unit(self, value: Any) -> float:
        """The centre of the value's share of the unit interval."""
        return (self.values.index(value) + 0.5) / len(self.values)

    def to_spec(self) -> dict[str, Any]:
        return {"choice": list(self.values)}


def _canonical(value: Any) -> str:
    """A list or mapping choice value as text, equal for equal values (numbers as floats, keys sorted)."""
    import json

    def plain(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return {str(k): plain(x) for k, x in v.items()}

    return json.dumps(plain(value), sort_keys=True)


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
            param = Float(spec_number(spec["min"], f"{field}.min"), spec_number(spec["max"], f"{field}.max"), scale)
        else:
            raise SpecError(f"{field}.type", f"unknown type {kind!r}", "use 'float' or 'int'")
    param.validate(field)
    return param


_MISSING = object()
_KIND = {Float: "a float range", Int: "an int range", Choice: "a choice"}


def _same_value(text: str, value: Any) -> bool:
    """Whether the ``value`` part of a ``name=value`` key names this choice value."""
    if isinstance(value, bool):
        return text.lower() == str(value).lower()
    if isinstance(value, (int, float)):
        try:
            return float(text) == float(value)
        except ValueError:
            return False
    return text == str(value)


def _envelope(a: Param, b: Param) -> Param:
    """One range covering two groups' ranges of the same name (for axes); same kind by validation."""
    if isinstance(a, Choice) and isinstance(b, Choice):
        return Choice([*a.values, *(v for v in b.values if v not in a.values)])
    assert isinstance(a, (Float, Int)) and isinstance(b, (Float, Int))
    scale = a.scale if a.scale == b.scale else "linear"
    return type(a)(min(a.low, b.low), max(a.high, b.high), scale)  # type: ignore[arg-type]


class SearchSpace:
    """Hyperparameters by role. ``params`` holds the varied ones, ``fixed`` the constants."""

    def __init__(
        self,
        scientific: Mapping[str, Param] | None = None,
        nuisance: Mapping[str, Param] | None = None,
        fixed: Mapping[str, Any] | None = None,
        conditional: Mapping[str, Mapping[str, Any]] | None = None,
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
        #: ``"name=value"`` (canonical) -> that value's own nuisance subspace.
        self.conditional: dict[str, dict[str, Param]] = {}
        #: The scientific hyperparameter the conditional subspaces hang on (None without any).
        self.conditional_on: str | None = None
        self._conditional_values: dict[str, Any] = {}  # canonical key -> the scientific value
        if conditional is not None:
            self._parse_conditional(conditional, field)
        if not self.scientific and not self.nuisance and not allow_fixed_only:
            raise SpecError(
                field, "nothing varies", "give at least one scientific or nuisance hyperparameter"
            )

    def _parse_conditional(self, conditional: Any, field: str) -> None:
        base = f"{field}.conditional"
        example = 'e.g. conditional: {"optimizer=adam": {learning_rate: {min: 1.0e-5, max: 1.0e-2, scale: log}}}'
        if not isinstance(conditional, Mapping):
            raise SpecError(base, f"expected a mapping of name=value to nuisance subspaces, got {type(conditional).__name__}",
                            example)
        kinds: dict[str, tuple[str, type]] = {}  # conditional name -> (first key, its Param type)
        for key, subspace in conditional.items():
            where = f"{base}.{key}"
            name, sep, text = key.partition("=") if isinstance(key, str) else ("", "", "")
            name, text = name.strip(), text.strip()
            if not sep or not name or not text:
                raise SpecError(where, "a conditional key is name=value", "e.g. optimizer=adam (a scientific choice and one of its values)")
            param = self.scientific.get(name)
            if param is None:
                role = self.roles.get(name)
                problem = f"'{name}' is {role}, not scientific" if role else f"no scientific hyperparameter '{name}'"
                fix = (f"key it by a scientific choice: {', '.join(self.scientific)}" if self.scientific
                       else "add it to scientific as a choice")
                raise SpecError(where, problem, fix)
            if not isinstance(param, Choice):
                raise SpecError(where, f"scientific '{name}' is a range, and only the values of a choice carry their own nuisance",
                                f"write scientific: {{{name}: {{choice: [...]}}}}, or move these to nuisance")
            if self.conditional_on is not None and name != self.conditional_on:
                raise SpecError(where, f"every entry keys on one scientific hyperparameter, here '{self.conditional_on}'",
                                f"key this one by {self.conditional_on}=... too")
            matches = [v for v in param.values if _same_value(text, v)]
            value = matches[0] if matches else _MISSING
            if len(matches) > 1 or (matches and sum(1 for v in param.values if str(v) == str(value)) > 1):
                same = [v for v in param.values if _same_value(text, v) or str(v) == str(value)]
                raise SpecError(where, f"'{text}' names more than one value of scientific '{name}' "
                                f"({', '.join(repr(v) for v in same)})",
                                f"give the values of '{name}' distinct spellings, e.g. make them all text")
            if value is _MISSING:
                raise SpecError(where, f"no such value of scientific '{name}'",
                                f"use one of {', '.join(str(v) for v in param.values)}")
            canonical = f"{name}={value}"
            if canonical in self.conditional:
                raise SpecError(where, f"names the same value as {canonical}", "give each value one entry")
            if not isinstance(subspace, Mapping):
                raise SpecError(where, f"expected a mapping of names to ranges, got {subspace!r}",
                                "write {learning_rate: {min: ..., max: ...}}")
            if not subspace:
                raise SpecError(where, "the subspace is empty",
                                "give it at least one nuisance hyperparameter, or remove the entry "
                                "(a value without an entry gets only the shared nuisance)")
            parsed: dict[str, Param] = {}
            for sub, spec in subspace.items():
                at = f"{where}.{sub}"
                if not isinstance(sub, str) or not sub:
                    raise SpecError(at, "a hyperparameter name must be a non-empty string", "rename it")
                if sub in self.roles:
                    role = self.roles[sub]
                    what = "a shared nuisance hyperparameter (every value has it)" if role == "nuisance" else role
                    raise SpecError(at, f"'{sub}' is already {what}",
                                    f"remove it from {role}, or give it another name")
                p = spec if isinstance(spec, _PARAM_TYPES) else param_from_spec(spec, at)
                p.validate(at)
                first = kinds.setdefault(sub, (canonical, type(p)))
                if first[1] is not type(p):
                    raise SpecError(at, f"is {_KIND[type(p)]} here but {_KIND[first[1]]} under {first[0]}",
                                    "use the same kind in every group, or give them different names")
                parsed[sub] = p
            self.conditional_on = name
            self.conditional[canonical] = parsed
            self._conditional_values[canonical] = value
        for sub in kinds:
            self.roles[sub] = "nuisance"

    # groups ------------------------------------------------------------------
    def conditional_key(self, values: Mapping[str, Any]) -> str | None:
        """The conditional key (``optimizer=adam``) of a trial's or group's scientific values, if it has one."""
        if self.conditional_on is None or self.conditional_on not in values:
            return None
        key = f"{self.conditional_on}={values[self.conditional_on]}"
        return key if key in self.conditional else None

    def subspace(self, values: Mapping[str, Any]) -> dict[str, Param]:
        """The conditional nuisance of the group with these scientific values (empty when none)."""
        key = self.conditional_key(values)
        return dict(self.conditional[key]) if key else {}

    def nuisance_for(self, values: Mapping[str, Any]) -> dict[str, Param]:
        """The nuisance hyperparameters of one group: shared first, then its own."""
        return {**self.nuisance, **self.subspace(values)}

    def params_for(self, values: Mapping[str, Any]) -> dict[str, Param]:
        """The varied hyperparameters of one group (what its trials carry)."""
        return {**self.scientific, **self.nuisance_for(values)}

    def groups_with(self, name: str) -> list[str]:
        """The conditional keys whose subspace holds ``name``."""
        return [key for key, sub in self.conditional.items() if name in sub]

    @property
    def conditional_params(self) -> dict[str, Param]:
        """Each conditional name once, by first appearance: the envelope of its ranges in every group."""
        out: dict[str, Param] = {}
        for sub in self.conditional.values():
            for name, p in sub.items():
                out[name] = _envelope(out[name], p) if name in out else p
        return out

    @property
    def params(self) -> dict[str, Param]:
        """The varied hyperparameters: scientific first, then nuisance (shared, then conditional envelopes)."""
        return {**self.scientific, **self.nuisance, **self.conditional_params}

    @property
    def varied(self) -> list[str]:
        return list(self.params)

    def to_spec(self) -> dict[str, Any]:
        """The canonical YAML form (what is stored with the study); ``conditional`` only when given."""
        spec: dict[str, Any] = {
            "scientific": {k: p.to_spec() for k, p in self.scientific.items()},
            "nuisance": {k: p.to_spec() for k, p in self.nuisance.items()},
            "fixed": dict(self.fixed),
        }
        if self.conditional:
            spec["conditional"] = {key: {k: p.to_spec() for k, p in sub.items()} for key, sub in self.conditional.items()}
        return spec

    @classmethod
    def from_spec(cls, spec: Any, field: str = "search_space", allow_fixed_only: bool = False) -> "SearchSpace":
        if not isinstance(spec, Mapping):
            raise SpecError(field, "expected a mapping with scientific, nuisance and fixed", "see `tunebook init`")
        unknown = set(spec) - set(SPACE_KEYS)
        if unknown:
            raise SpecError(
                f"{field}.{sorted(map(str, unknown))[0]}",
                "unknown role",
                "the roles are scientific, nuisance and fixed (and conditional: per-value nuisance)",
            )
        return cls(spec.get("scientific"), spec.get("nuisance"), spec.get("fixed"), spec.get("conditional"),
                   field=field, allow_fixed_only=allow_fixed_only)

    def __repr__(self) -> str:
        return f"SearchSpace({self.to_spec()!r})"

    def _repr_html_(self) -> str:
        from tunebook.display import space_html

        return space_html(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.to_spec() == other.to_spec()
