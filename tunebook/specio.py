"""Reading specs safely: the limits every study spec is checked against.

A spec is small and written by hand, so a few hundred bytes must never turn
into gigabytes, hours or a traceback. Everything here raises
:class:`~tunebook.errors.SpecError` (one line naming the field and the fix)
before anything is stored:

- YAML is read without aliases (``&anchor``/``*alias``): a 480-byte file of
  nested aliases expands to gigabytes ("billion laughs"), and an alias can
  make a value contain itself.
- Every value is plain JSON (text, finite numbers, booleans, null, lists,
  mappings with text keys): no dates, bytes, sets, objects, NaN or infinity,
  no value that contains itself, at most :data:`MAX_DEPTH` levels deep and
  :data:`MAX_SPEC_ITEMS` values / :data:`MAX_SPEC_CHARS` characters in all.
- Counts within the store's columns: ``trials`` at most :data:`MAX_TRIALS`,
  ``max_train_steps`` at most :data:`MAX_TRAIN_STEPS` (a step is a 32-bit
  integer on PostgreSQL), ``seed`` below 2**63.
- Range bounds finite and sane for their scale: linear bounds within
  ±:data:`MAX_LINEAR_BOUND`, log bounds within [:data:`MIN_LOG_BOUND`,
  :data:`MAX_LOG_BOUND`].
- Names (objective and rule metrics) at most :data:`MAX_NAME_CHARS`
  characters with no control characters; the goal without NUL (PostgreSQL
  text refuses it) and at most :data:`MAX_GOAL_CHARS` characters.

It also turns the two ways a training file fails to import (syntax error,
exception or ``sys.exit`` at import, a folder named ``x.py``) and a corrupted
SQLite store into one line each.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

from tunebook.errors import ConfigurationError, SpecError

#: Most trials one study may have (they are all materialized when it is created).
MAX_TRIALS = 100_000
#: Largest ``max_train_steps`` (steps are stored as 32-bit integers on PostgreSQL).
MAX_TRAIN_STEPS = 2**31 - 1
#: Largest ``seed`` (a signed 64-bit column).
MAX_SEED = 2**63 - 1
#: Largest ``keep_checkpoints``.
MAX_KEEP_CHECKPOINTS = 1_000_000
#: Largest magnitude of a linear range bound (float or int).
MAX_LINEAR_BOUND = 1e15
#: Log range bounds lie in [MIN_LOG_BOUND, MAX_LOG_BOUND].
MIN_LOG_BOUND = 1e-30
MAX_LOG_BOUND = 1e30
#: Longest objective or metric name (the store's name columns hold 200 characters).
MAX_NAME_CHARS = 200
#: Longest goal.
MAX_GOAL_CHARS = 10_000
#: Largest spec file, in bytes.
MAX_SPEC_BYTES = 1_000_000
#: Largest token file (``tunebook dashboard --token-file``), in bytes: a token is one line.
MAX_TOKEN_BYTES = 64 * 1024
#: Deepest nesting of lists and mappings in a spec.
MAX_DEPTH = 32
#: Most values (scalars, lists and mappings counted once each) in a spec.
MAX_SPEC_ITEMS = 100_000
#: Most characters of text (keys and values) in a spec.
MAX_SPEC_CHARS = 1_000_000

#: Characters no name may hold: C0 and C1 controls (newline, tab and ESC among them), DEL, the Unicode line
#: and paragraph separators, and the bidirectional overrides that make text display in another order.
_CONTROL = frozenset(chr(c) for c in (*range(32), *range(127, 160), 0x2028, 0x2029, *range(0x202A, 0x202F),
                                      *range(0x2066, 0x206A)))


# YAML -------------------------------------------------------------------------
def _loader() -> type:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """PyYAML's safe loader, refusing what a hand-written spec never needs where it is met: anchors
        and aliases (``&name``/``*name``), explicit tags (``!!timestamp``, ``!!bool``, ``!foo``) and a
        key given twice in one mapping (the later value would silently win)."""

        def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
            event = self.peek_event()
            line = event.start_mark.line + 1
            if isinstance(event, yaml.AliasEvent):
                raise SpecError("spec", f"YAML alias *{event.anchor} at line {line} (aliases and anchors are not allowed)",
                                "write the value out in full")
            if getattr(event, "anchor", None) is not None:
                raise SpecError("spec", f"YAML anchor &{one_line(event.anchor, 40)} at line {line} (anchors and aliases "
                                "are not allowed)", "remove the anchor and write every value out in full")
            tag = getattr(event, "tag", None)
            if tag is not None:
                shown = tag.replace("tag:yaml.org,2002:", "!!")
                raise SpecError("spec", f"YAML tag {one_line(shown, 60)} at line {line} (tags are not allowed)",
                                "remove the tag; quote the value to keep it as text")
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:  # type: ignore[override]
            seen: dict[Any, int] = {}  # key -> the line it was first given at
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue  # a list or mapping as a key: refused as a non-text key later
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise SpecError("spec", f"key {one_line(repr(key), 60)} is given twice (lines {seen[key]} and "
                                        f"{line})", "keep one of them (YAML would silently use the last)")
                    seen[key] = line
                except TypeError:  # unhashable: PyYAML's own error follows
                    continue
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def load_yaml(raw: bytes, name: str) -> Any:
    """Parse a spec file's bytes: no aliases, anchors, tags or repeated keys, at most :data:`MAX_SPEC_BYTES`,
    errors as one line."""
    import yaml

    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError("spec", f"{name} is {len(raw):,} bytes, more than {MAX_SPEC_BYTES:,}",
                        "a study spec is a few kilobytes; move data out of it")
    try:
        return yaml.load(raw, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except SpecError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError("spec", one_line(f"{name} is not valid YAML{where}: {problem}"), "fix the YAML syntax") from None
    except RecursionError:
        raise SpecError("spec", f"{name} nests too deeply", f"use at most {MAX_DEPTH} levels") from None
    except (UnicodeError, ValueError, OverflowError, TypeError) as exc:  # bad encodings, out-of-range timestamps
        raise SpecError("spec", one_line(f"{name} cannot be read: {exc}"), "write plain UTF-8 YAML") from None


def read_limited(path: str | Path, limit: int, field: str, fix: str) -> bytes:
    """The bytes of the file at ``path``, refused (one line naming ``field``) when it holds more than ``limit``:
    its size is looked at before anything is read, and at most ``limit + 1`` bytes are ever read (a file that
    grows, or one whose size the file system does not report)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size <= limit:
            with path.open("rb") as f:
                raw = f.read(limit + 1)
            size = max(size, len(raw))
    except OSError as exc:
        raise SpecError(field, f"cannot read {one_line(str(path), 120)!r} ({exc.strerror or type(exc).__name__})",
                        "give a readable file") from None
    if size > limit:
        raise SpecError(field, f"{one_line(str(path), 120)!r} is {size:,} bytes, more than {limit:,}", fix)
    return raw


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line (control characters escaped), cut at ``limit`` characters."""
    out = "".join(ch if ch not in _CONTROL else repr(ch)[1:-1] for ch in str(text).strip())
    return out if len(out) <= limit else out[: limit - 3] + "..."


# values -----------------------------------------------------------------------
_FIXES = {
    "date": "quote it to keep it as text, e.g. '2024-01-31'",
    "datetime": "quote it to keep it as text, e.g. '2024-01-31 12:00'",
    "bytes": "write it as text",
    "set": "write a list: [a, b]",
    "frozenset": "write a list: [a, b]",
}


def _what(value: Any) -> str:
    kind = type(value).__name__
    return {"date": "a date", "datetime": "a date and time", "bytes": "bytes", "set": "a set",
            "frozenset": "a set"}.get(kind, f"a {kind}")


def check_json(value: Any, field: str) -> None:
    """Refuse anything in ``value`` that is not plain JSON, naming where (``field.key[2]``)."""
    budget = [MAX_SPEC_ITEMS, MAX_SPEC_CHARS]
    _check_json(value, field, set(), 0, budget)


def _spend(budget: list[int], items: int, chars: int, field: str) -> None:
    budget[0] -= items
    budget[1] -= chars
    if budget[0] < 0 or budget[1] < 0:
        raise SpecError(field, f"the spec is too large (more than {MAX_SPEC_ITEMS:,} values or "
                               f"{MAX_SPEC_CHARS:,} characters)", "a study spec is a few kilobytes; move data out of it")


def _check_json(value: Any, field: str, active: set[int], depth: int, budget: list[int]) -> None:
    _spend(budget, 1, 0, field)
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) >= 2**63:
            raise SpecError(field, f"integer {value:.3e} is out of range", "use a magnitude below 2**63 (9.2e18)")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpecError(field, f"{value!r} is not a JSON number", "use a finite number (or text)")
        return
    if isinstance(value, str):
        _spend(budget, 0, len(value), field)
        return
    if isinstance(value, (list, tuple, Mapping)):
        if id(value) in active:
            raise SpecError(field, "the value contains itself", "write a finite value")
        if depth >= MAX_DEPTH:
            raise SpecError(field, f"nests more than {MAX_DEPTH} levels deep", "flatten the value")
        active.add(id(value))
        if isinstance(value, Mapping):
            for key, item in value.items():
                _check_key(key, field)
                _spend(budget, 0, len(key), field)
                _check_json(item, f"{field}.{key}", active, depth + 1, budget)
        else:
            for i, item in enumerate(value):
                _check_json(item, f"{field}[{i}]", active, depth + 1, budget)
        active.discard(id(value))
        return
    raise SpecError(field, f"{_what(value)} is not a spec value",
                    _FIXES.get(type(value).__name__, "use text, a number, true/false, a list or a mapping"))


def _check_key(key: Any, field: str) -> None:
    """A mapping key (a field or hyperparameter name): printable text, so that messages naming it stay one line."""
    if not isinstance(key, str):
        raise SpecError(f"{field}.{one_line(repr(key), 40)}", f"a key must be text, got {_what(key)}", "quote the key")
    if len(key) > MAX_NAME_CHARS:
        raise SpecError(f"{field}.{key[:40]}...", f"a key of {len(key):,} characters", f"use at most {MAX_NAME_CHARS}")
    if not key.isprintable():
        raise SpecError(f"{field}.{one_line(repr(key), 60)}", "a key must be printable text (no control characters)",
                        "rename it")


# numbers and text ---------------------------------------------------------------
def check_int_max(value: Any, field: str, most: int, why: str = "") -> None:
    """Refuse an integer above ``most`` (other types are left to the field's own check)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > most:
        raise SpecError(field, f"{value:,} is above the limit of {most:,}{why}", f"use at most {most:,}")


def check_counts(trials: Any, max_train_steps: Any, seed: Any, keep_checkpoints: Any) -> None:
    """The documented bounds of the integer fields."""
    check_int_max(trials, "trials", MAX_TRIALS, " (every trial is materialized when the study is created)")
    check_int_max(max_train_steps, "max_train_steps", MAX_TRAIN_STEPS, " (steps are 32-bit integers in the store)")
    check_int_max(seed, "seed", MAX_SEED, " (a 64-bit integer)")
    check_int_max(keep_checkpoints, "keep_checkpoints", MAX_KEEP_CHECKPOINTS)


def check_name_text(value: Any, field: str) -> None:
    """A metric name: at most :data:`MAX_NAME_CHARS` characters, no control characters (types checked elsewhere)."""
    if not isinstance(value, str):
        return
    if len(value) > MAX_NAME_CHARS:
        raise SpecError(field, f"is {len(value)} characters long", f"use at most {MAX_NAME_CHARS}")
    problem = name_chars_problem(value)
    if problem is not None:
        raise SpecError(field, problem, "use printable characters only")


def name_chars_problem(name: str) -> str | None:
    """What is wrong with the characters of a name (a study, experiment or metric name), or None.

    A name is shown in terminals, file names and reports: a control character
    (newline, ESC, a C1 control, a bidirectional override) would break or forge
    what is printed. For a metric name logged by ``trial.log`` this is called
    once per new name, never per step.
    """
    if _CONTROL.isdisjoint(name):
        return None
    bad = next(ch for ch in name if ch in _CONTROL)
    return f"contains the control character {bad!r} (U+{ord(bad):04X})"


def check_goal(goal: Any) -> None:
    """The goal: text without NUL, at most :data:`MAX_GOAL_CHARS` characters."""
    if not isinstance(goal, str):
        return
    if "\x00" in goal:
        raise SpecError("goal", "contains a NUL character", "remove it")
    if len(goal) > MAX_GOAL_CHARS:
        raise SpecError("goal", f"is {len(goal):,} characters long", f"use at most {MAX_GOAL_CHARS:,}")


def _metric_of(objective: Any) -> Any:
    if isinstance(objective, Mapping):
        return objective.get("metric")
    if isinstance(objective, (list, tuple)) and len(objective) == 2:
        return objective[0]
    return None


def check_inputs(args: Mapping[str, Any]) -> None:
    """Everything :func:`tunebook.study.build_spec` is given (its arguments by name), before its field checks.

    Every value must be plain JSON first, so that no later message or
    comparison meets a value that contains itself or expands without end.
    """
    for key, value in args.items():
        field = {"name": "study", "space": "search_space"}.get(key, key)
        check_json(value.to_spec() if hasattr(value, "to_spec") else value, field)  # a SearchSpace
    check_goal(args.get("goal"))
    check_train_ref(args.get("train"))
    check_name_text(_metric_of(args.get("objective")), "objective.metric")
    check_counts(args.get("trials"), args.get("max_train_steps"), args.get("seed"), args.get("keep_checkpoints"))
    infeasible_if = args.get("infeasible_if")
    if isinstance(infeasible_if, Mapping):
        for metric in infeasible_if:
            check_name_text(metric, f"infeasible_if.{one_line(str(metric), 60)}")


def check_combinations(space: Any, grid: bool = False) -> None:
    """At most :data:`MAX_TRIALS` combinations of scientific values (of every listed value, for a grid).

    The crossed design lists them all before it looks at ``trials``: six choices
    of a hundred values each must not make it enumerate 10**12 groups.
    """
    params = space.params if grid else space.scientific
    count = 1
    for name, param in params.items():
        if hasattr(param, "values"):  # a Choice (space.py imports this module, not the other way round)
            count *= len(param.values)
            if count > MAX_TRIALS:
                role = space.roles.get(name, "scientific")
                raise SpecError(f"search_space.{role}", f"more than {MAX_TRIALS:,} combinations of listed values "
                                f"(after {name})", "list fewer values; a study has at most "
                                f"{MAX_TRIALS:,} trials")


def check_spec_mapping(data: Mapping[str, Any]) -> None:
    """A parsed spec file: plain JSON throughout, and ``storage`` (when given) a URL."""
    check_counts(data.get("trials"), data.get("max_train_steps"), data.get("seed"), data.get("keep_checkpoints"))
    for key, value in data.items():
        if not isinstance(key, str):
            raise SpecError(one_line(repr(key), 40), f"a field name must be text, got {_what(key)}", "quote it")
        _check_key(key, "spec")
        check_json(value, key)
    storage = data.get("storage")
    if storage is not None and not isinstance(storage, str):
        raise SpecError("storage", f"expected a URL, got {one_line(repr(storage), 60)}",
                        "e.g. storage: sqlite:///tunebook.db (or leave it out and pass --storage)")


# range bounds -------------------------------------------------------------------
def check_bounds(low: float, high: float, scale: str, field: str) -> None:
    """A range's bounds within the documented limits for its scale (after min < max is checked)."""
    if scale == "log":
        for key, value in (("min", low), ("max", high)):
            if value > 0 and not MIN_LOG_BOUND <= value <= MAX_LOG_BOUND:
                raise SpecError(f"{field}.{key}", f"{value:g} is outside the log-scale limits "
                                f"[{MIN_LOG_BOUND:g}, {MAX_LOG_BOUND:g}]", "give a bound within them")
        return
    for key, value in (("min", low), ("max", high)):
        if abs(value) > MAX_LINEAR_BOUND:
            raise SpecError(f"{field}.{key}", f"{value:g} is outside the linear-scale limits "
                            f"±{MAX_LINEAR_BOUND:g}", "give a bound within them, or use scale: log")


# the training file ---------------------------------------------------------------
def import_error(exc: BaseException, module_name: str, path: Path | None) -> SpecError:
    """One line for a training module that fails to import (anything it raised, ``SystemExit`` included)."""
    where = path.name if path is not None else module_name
    if isinstance(exc, SyntaxError):
        at = f"{Path(exc.filename).name if exc.filename else where}, line {exc.lineno}"
        return ConfigurationError("train", one_line(f"{at}: syntax error: {exc.msg}"), "fix the training file")
    if isinstance(exc, SystemExit):
        return ConfigurationError("train", f"{where} called sys.exit({exc.code!r}) while being imported",
                                  "do the work inside the training function, or under `if __name__ == '__main__':`")
    if isinstance(exc, ImportError) and path is None:
        return ConfigurationError("train", one_line(f"cannot import {module_name!r}: {exc}"),
                                  "check the module path and the installed extras")
    line = _raising_line(exc, path)
    return ConfigurationError(
        "train", one_line(f"{where}{line} raised {type(exc).__name__} while being imported: {exc}"),
        "fix the module's top-level code",
    )


def _raising_line(exc: BaseException, path: Path | None) -> str:
    """``", line N"`` of the innermost frame of the training file itself, when there is one."""
    import traceback

    if path is None:
        return ""
    line = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        try:
            if Path(frame.filename).resolve() == path:
                line = f", line {frame.lineno}"
        except OSError:
            pass
    return line


def check_train_ref(ref: Any) -> None:
    """``module.name:function`` or ``path/to/file.py:function``: well formed before anything is imported."""
    if not isinstance(ref, str) or ref.count(":") != 1:
        return  # the caller's own check names the expected form
    module, function = ref.split(":")
    fix = "e.g. train: train.py:train or train: mypackage.module:train"
    if len(ref) > 1000 or not ref.isprintable():
        raise SpecError("train", f"{one_line(repr(ref), 80)} is not a module or file name", fix)
    if not module.endswith(".py") and not all(part.isidentifier() for part in module.split(".")):
        raise SpecError("train", f"{module!r} is not a module name (dotted Python identifiers) or a .py file", fix)
    if not function.isidentifier():
        raise SpecError("train", f"{function!r} is not a function name", fix)


def writable_folder(path: Path) -> None:
    """Make ``path`` (and its parents) if missing and write a probe file there: a folder given on the
    command line is known writable before anything runs. Raises ``OSError`` otherwise."""
    import os

    path.mkdir(parents=True, exist_ok=True)
    probe = path / f".tunebook-probe-{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()


def check_train_path(path: Path) -> None:
    """A training file that is a file (not a folder named ``x.py``) and readable."""
    if path.is_dir():
        raise ConfigurationError("train", f"{str(path)!r} is a folder, not a Python file", "name a .py file before ':'")
    if not os.access(path, os.R_OK):
        raise ConfigurationError("train", f"{str(path)!r} is not readable", "fix its permissions")


# the store named on the command line -----------------------------------------------
def check_storage_url(url: str | None, field: str = "--storage") -> None:
    """A ``--storage`` (or ``$TUNEBOOK_STORAGE``) URL that parses, e.g. a PostgreSQL port that is a number."""
    import os

    text = url if url else os.environ.get("TUNEBOOK_STORAGE")
    if not text or "://" not in text:
        return  # a bare file name, or the default: normalize_url says what is wrong with it
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(text)
    except (ValueError, TypeError, sa.exc.ArgumentError) as exc:
        port = text.partition("://")[2].partition("/")[0].rpartition("@")[2].rpartition(":")[2]
        problem = (f"the port {one_line(port, 20)!r} is not a number" if port and not port.isdigit()
                   else one_line(f"cannot parse the URL ({exc})", 200))
        raise SpecError(field, problem, "use sqlite:///path/to/file.db or "
                        "postgresql://user:password@host:5432/dbname") from None
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise SpecError(field, f"the port {parsed.port} is out of range", "give a port from 1 to 65535")


# a corrupted store ---------------------------------------------------------------
def corruption_error(exc: BaseException, path: str | os.PathLike[str] | None) -> SpecError | None:
    """One line for a SQLite store (its file: ``path``) that is damaged, or None when ``exc`` is something else."""
    text = str(getattr(exc, "orig", None) or exc)
    if "malformed" not in text and "file is not a database" not in text:
        return None
    if path is None:
        return None
    what = "is corrupted (database disk image is malformed)" if "malformed" in text else "is not a SQLite database"
    return ConfigurationError(
        "storage", f"{path} {what}",
        f"recover what is left with `sqlite3 {path} .recover | sqlite3 recovered.db` and use recovered.db",
    )


def watch_corruption(engines: list[Any], path: str | os.PathLike[str]) -> None:
    """Make every later statement on ``engines`` that meets a damaged SQLite file (``path``) raise one line."""
    import sqlalchemy as sa

    def translate(context: Any) -> None:
        error = corruption_error(context.original_exception, path)
        if error is not None:
            raise error

    for engine in engines:
        if engine is not None and not sa.event.contains(engine, "handle_error", translate):
            sa.event.listen(engine, "handle_error", translate)
