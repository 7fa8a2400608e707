"""Import an Optuna study as a tunebook study, so the playbook's checklist and figures run on it.

>>> from tunebook.integrations.optuna_import import import_study
>>> study = import_study("sqlite:///optuna.db", "resnet-lr", scientific=["optimizer"])   # doctest: +SKIP
>>> tb.analyze(study).save("report.html")                                                # doctest: +SKIP

What becomes what:

- **parameters**: each Optuna distribution becomes a tunebook hyperparameter
  (``FloatDistribution`` -> ``Float``, ``IntDistribution`` -> ``Int``, with
  ``log=True`` -> ``scale="log"``; ``CategoricalDistribution`` -> ``Choice``);
  a parameter whose range changed between trials gets the union of its ranges;
  Optuna's ``step`` is not kept. Roles come from ``scientific`` and ``fixed``;
  every other parameter is nuisance. A fixed parameter must have taken one
  value (its constant).
- **objective**: the study's metric name (``set_metric_names``) or ``value``,
  with its direction. Multi-objective studies are refused.
- **curves**: the intermediate values (``trial.report(value, step)``) under the
  objective's name; ``max_train_steps`` is the largest reported step (at least 1).
- **states**: ``COMPLETE`` -> completed, with Optuna's value and, as best step,
  the first step that reported that value (else the last reported step); a
  trial that reported nothing gets one curve point, its value at
  ``max_train_steps``. ``PRUNED`` -> completed with its best reported value and
  its step (tunebook's trial value is the best over evaluations; a pruned
  trial was stopped early, not broken), or failed when it reported nothing.
  ``FAIL`` -> infeasible when its last reported value is NaN/Inf (or, with
  Optuna versions that kept a reason, the reason is a NaN/Inf value): in
  tunebook a diverged trial is data; else failed (Optuna 4+ keeps no reason,
  so a NaN returned without any report is indistinguishable from a crash). ``RUNNING`` and
  ``WAITING`` trials are skipped.
- **numbers and seeds**: trials are renumbered 0..n-1 in Optuna's order; each
  one's seed is its Optuna trial number (Optuna stores no seed), which links
  the two. The study's notebook gets an ``import`` note with the source and
  the counts.

Everything is validated before the first write; the study and its trials are
created in one transaction, then each trial is claimed, filled and finished
through the storage contract (as a worker would). Extra: ``tunebook[bo]``
(Optuna).
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from tunebook.errors import SpecError, StudyExists
from tunebook.integrations.export import require
from tunebook.space import Choice, Float, Int, Param, SearchSpace
from tunebook.storage import open_storage, redact
from tunebook.storage.base import COMPLETED, FAILED, INFEASIBLE, Storage, StudyRecord
from tunebook.study import Study, build_spec, spec_hash

_PURPOSE = "Importing an Optuna study"
_NAN_REASON = re.compile(r"\b(nan|inf|-inf|infinity)\b", re.IGNORECASE)


@dataclass
class ImportedTrial:
    """One Optuna trial as tunebook will store it."""

    number: int
    optuna_number: int
    params: dict[str, Any]
    state: str
    value: float | None
    best_step: int | None
    curve: list[tuple[int, float]]
    infeasible_reason: str | None = None
    error: str | None = None
    pruned: bool = False


@dataclass
class ImportPlan:
    """What :func:`import_study` will write: validated, nothing stored yet."""

    name: str
    space: SearchSpace
    objective: tuple[str, str]
    max_train_steps: int
    trials: list[ImportedTrial]
    skipped: dict[str, int] = field(default_factory=dict)
    source: str = ""


def _load_optuna(storage: str, name: str) -> Any:
    optuna = require("optuna", "bo", _PURPOSE)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not isinstance(storage, str) or not storage:
        raise SpecError("storage", f"expected an Optuna storage URL, got {storage!r}", "e.g. --storage sqlite:///optuna.db")
    source = read_only_storage(optuna, storage)
    try:
        known = optuna.study.get_all_study_names(source)  # not the summaries: they rank trials, which may be damaged
    except Exception as exc:  # noqa: BLE001 - any driver error means the URL does not lead to an Optuna store
        raise SpecError("storage", f"cannot read Optuna storage {redact(storage)!r}: {str(exc).splitlines()[0]}",
                        "give the RDB URL the Optuna study was created with, e.g. sqlite:///optuna.db") from None
    if name not in known:
        hint = f"known studies: {', '.join(known[:8])}" if known else "that storage holds no study"
        raise SpecError("study", f"no Optuna study named {name!r} in {redact(storage)}", hint)
    return optuna.load_study(study_name=name, storage=source)


def read_only_storage(optuna: Any, url: str) -> Any:
    """Optuna's RDB storage at ``url``, opened so that importing never writes to it: no tables created (a
    tunebook store or another database named by mistake stays as it was), a SQLite file that must exist and
    is opened read-only, a PostgreSQL session in read-only transactions."""
    from pathlib import Path

    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except Exception:  # noqa: BLE001 - any parse error
        raise SpecError("storage", f"{url!r} is not a storage URL", "e.g. --storage sqlite:///optuna.db") from None
    engine_kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not parsed.database or parsed.database == ":memory:" or not path.is_file():
            raise SpecError("storage", f"no SQLite file at {str(path)!r}",
                            "give the file the Optuna study was stored in, e.g. --storage sqlite:///optuna.db")
        if "studies" not in _sqlite_tables(path):
            raise SpecError("storage", f"{str(path)!r} is not an Optuna storage (it holds no Optuna tables)",
                            "give the file the Optuna study was stored in, e.g. --storage sqlite:///optuna.db")
        url = f"sqlite:///file:{path.resolve()}?mode=ro&uri=true"
    elif parsed.get_backend_name() == "postgresql":
        engine_kwargs = {"connect_args": {"options": "-c default_transaction_read_only=on"}}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, skip_compatibility_check=True,
                                          skip_table_creation=True)
    except Exception as exc:  # noqa: BLE001 - a driver's error about the URL
        raise SpecError("storage", f"cannot open Optuna storage {redact(str(parsed))!r}: {str(exc).splitlines()[0]}",
                        "give the RDB URL the Optuna study was created with, e.g. sqlite:///optuna.db") from None


def _sqlite_tables(path: Any) -> set[str]:
    """The table names of the SQLite file at ``path``, read without writing (empty when it cannot be read)."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error:
        return set()


def _merge(name: str, a: Any, b: Any) -> Any:
    """The union of two distributions of one parameter (a dynamic search space widened or moved)."""
    from optuna.distributions import CategoricalDistribution

    if type(a) is not type(b):
        raise SpecError(f"param.{name}", f"changed type between trials ({type(a).__name__}, {type(b).__name__})",
                        "import the trials of one type into separate studies")
    if isinstance(a, CategoricalDistribution):
        return CategoricalDistribution(list(a.choices) + [c for c in b.choices if c not in a.choices])
    return type(a)(min(a.low, b.low), max(a.high, b.high), log=a.log or b.log)


def _param(distribution: Any) -> Param | None:
    """The tunebook hyperparameter for an Optuna distribution (None: a single value, i.e. a constant)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return Choice(list(distribution.choices)) if len(distribution.choices) > 1 else None
    if distribution.low == distribution.high:
        return None
    scale = "log" if distribution.log else "linear"
    if isinstance(distribution, IntDistribution):
        return Int(int(distribution.low), int(distribution.high), scale)
    if isinstance(distribution, FloatDistribution):
        return Float(float(distribution.low), float(distribution.high), scale)
    raise SpecError("param", f"unsupported Optuna distribution {type(distribution).__name__}",
                    "tunebook imports float, int and categorical parameters")


def _names(value: Iterable[str] | str | None, option: str) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [n.strip() for n in items if n and n.strip()]
    if len(set(names)) != len(names):
        raise SpecError(option, f"lists a parameter twice: {','.join(names)}", "list each parameter once")
    return names


def plan_import(
    storage: str,
    study: str,
    *,
    name: str | None = None,
    scientific: Iterable[str] | str | None = None,
    fixed: Iterable[str] | str | None = None,
    metric: str | None = None,
) -> ImportPlan:
    """Read and validate the Optuna study ``study`` in ``storage``; write nothing."""
    source = _load_optuna(storage, study)
    from optuna.trial import TrialState

    if len(source.directions) != 1:
        raise SpecError("study", f"Optuna study {study!r} has {len(source.directions)} objectives",
                        "tunebook studies have one objective: import a single-objective study")
    mode = "max" if source.direction.name == "MAXIMIZE" else "min"
    names = getattr(source, "metric_names", None)
    metric = metric or (names[0] if names else None) or "value"
    try:
        trials = sorted(source.get_trials(deepcopy=False), key=lambda t: t.number)
    except Exception as exc:  # noqa: BLE001 - Optuna's own reader failing on a damaged row (a NULL value)
        raise SpecError("storage", f"Optuna cannot read the trials of {study!r} ({type(exc).__name__}"
                        f"{': ' + str(exc).splitlines()[0] if str(exc) else ''}): a stored row is damaged",
                        "repair or delete the damaged trial in the Optuna storage, then import again") from None
    skipped: dict[str, int] = {}
    kept = []
    for t in trials:
        if t.state in (TrialState.RUNNING, TrialState.WAITING):
            skipped[t.state.name.lower()] = skipped.get(t.state.name.lower(), 0) + 1
        else:
            kept.append(t)
    if not kept:
        raise SpecError("study", f"Optuna study {study!r} has no finished trial", "import it once trials have finished")

    distributions: dict[str, Any] = {}
    for t in kept:
        for pname, dist in t.distributions.items():
            distributions[pname] = _merge(pname, distributions[pname], dist) if pname in distributions else dist
    scientific_names, fixed_names = _names(scientific, "scientific"), _names(fixed, "fixed")
    for option, listed in (("scientific", scientific_names), ("fixed", fixed_names)):
        for pname in listed:
            if pname not in distributions:
                raise SpecError(option, f"Optuna study {study!r} has no parameter {pname!r}",
                                f"its parameters are: {', '.join(distributions) or '(none)'}")
    both = set(scientific_names) & set(fixed_names)
    if both:
        raise SpecError("fixed", f"{sorted(both)[0]!r} is also scientific", "give each parameter one role")

    space_args: dict[str, dict[str, Any]] = {"scientific": {}, "nuisance": {}, "fixed": {}}
    for pname, dist in distributions.items():
        values = {repr(t.params[pname]) for t in kept if pname in t.params}
        param = _param(dist)
        if pname in fixed_names or param is None:
            if len(values) != 1:
                raise SpecError("fixed", f"{pname!r} took {len(values)} values in the Optuna study",
                                "a fixed hyperparameter is a constant: make it scientific or nuisance")
            if any(pname not in t.params for t in kept):
                raise SpecError("fixed", f"{pname!r} is missing from some trials", "make it nuisance")
            space_args["fixed"][pname] = next(t.params[pname] for t in kept if pname in t.params)
        elif pname in scientific_names:
            missing = [t.number for t in kept if pname not in t.params]
            if missing:
                raise SpecError("scientific", f"{pname!r} is missing from Optuna trial {missing[0]}",
                                "a scientific hyperparameter must be set in every trial")
            space_args["scientific"][pname] = param
        else:
            space_args["nuisance"][pname] = param
    space = SearchSpace(**space_args, field="search_space")

    steps = [s for t in kept for s in t.intermediate_values]
    max_train_steps = max(1, int(max(steps))) if steps else 1
    imported = [_trial(i, t, metric, mode, max_train_steps, set(space.fixed)) for i, t in enumerate(kept)]
    target = name if name is not None else study
    build_spec(target, space=space, objective=(metric, mode), trials=len(imported), max_train_steps=max_train_steps)
    return ImportPlan(target, space, (metric, mode), max_train_steps, imported, skipped,
                      f"optuna:{redact(storage)}#{study}")


def _best(curve: Sequence[tuple[int, float]], mode: str) -> tuple[float, int] | None:
    finite = [(v, s) for s, v in curve if math.isfinite(v)]
    if not finite:
        return None
    sign = 1.0 if mode == "min" else -1.0
    value, step = min(finite, key=lambda p: (sign * p[0], p[1]))
    return value, step


def _trial(number: int, t: Any, metric: str, mode: str, max_train_steps: int, fixed: set[str]) -> ImportedTrial:
    from optuna.trial import TrialState

    curve = sorted((int(s), float(v)) for s, v in t.intermediate_values.items())
    params = {k: v for k, v in t.params.items() if k not in fixed}
    out = ImportedTrial(number, t.number, params, COMPLETED, None, None, curve)
    values = t.values  # a COMPLETE trial whose value row is missing or NULL has none (t.value would raise)
    if t.state == TrialState.COMPLETE and (not values or values[0] is None):
        out.state, out.error = FAILED, "COMPLETE in Optuna but no objective value is stored"
    elif t.state == TrialState.COMPLETE:
        value = float(values[0])
        if not math.isfinite(value):
            out.state, out.infeasible_reason = INFEASIBLE, f"objective returned {value}"
        elif curve:
            out.value = value
            out.best_step = next((s for s, v in curve if v == value), curve[-1][0])
        else:
            out.value, out.best_step, out.curve = value, max_train_steps, [(max_train_steps, value)]
    elif t.state == TrialState.PRUNED:
        out.pruned = True
        best = _best(curve, mode)
        if best is None:
            out.state, out.error = FAILED, "pruned by Optuna before it reported a finite value"
        else:
            out.value, out.best_step = best
    else:  # FAIL: Optuna 4+ keeps no reason; older versions kept one in system_attrs
        reason = str(t.system_attrs.get("fail_reason") or "")
        if curve and not math.isfinite(curve[-1][1]):
            out.state, out.infeasible_reason = INFEASIBLE, f"{metric} was {curve[-1][1]} at step {curve[-1][0]}"
        elif _NAN_REASON.search(reason):
            out.state, out.infeasible_reason = INFEASIBLE, reason[:500]
        else:
            out.state, out.error = FAILED, (reason or "failed in Optuna (no reason recorded)")[:2000]
    return out


def import_study(
    storage: str,
    study: str,
    *,
    to: str | Storage | None = None,
    name: str | None = None,
    scientific: Iterable[str] | str | None = None,
    fixed: Iterable[str] | str | None = None,
    metric: str | None = None,
    goal: str = "",
) -> Study:
    """Import Optuna study ``study`` from ``storage`` into the tunebook store ``to`` (default ``./tunebook.db``).

    ``name`` is the tunebook study's name (default: the Optuna study's);
    ``scientific`` and ``fixed`` name parameters by role (the rest are
    nuisance); ``metric`` names the objective (default: Optuna's metric name,
    else ``value``). Refuses a name already stored. Returns the new study.
    """
    plan = plan_import(storage, study, name=name, scientific=scientific, fixed=fixed, metric=metric)
    if not isinstance(goal, str):
        raise SpecError("goal", f"expected text, got {goal!r}", "write the question the study answered")
    store = to if isinstance(to, Storage) else open_storage(to)
    if store.get_study(plan.name) is not None:
        raise SpecError("name", f"a study named {plan.name!r} is already stored in {redact(store.url)}",
                        "import under another name (--name)")
    spec = build_spec(plan.name, space=plan.space, objective=plan.objective, trials=len(plan.trials),
                      max_train_steps=plan.max_train_steps, goal=goal)
    record = StudyRecord(
        name=plan.name, spec=spec, spec_hash=spec_hash(spec), objective_metric=plan.objective[0],
        objective_mode=plan.objective[1], max_train_steps=plan.max_train_steps, trials_budget=len(plan.trials),
        seed=spec["seed"], generator_version="optuna-import", experiment=spec["experiment"], goal=goal,
        config_path=plan.source, repro_command=f"tunebook import optuna --storage {redact(storage)} --study {study}",
    )
    try:
        study_id = store.create_study(record, [{"number": t.number, "params": t.params, "seed": t.optuna_number}
                                               for t in plan.trials])
    except StudyExists:
        raise SpecError("name", f"a study named {plan.name!r} was stored meanwhile", "import under another name") from None
    worker = f"optuna-import-{uuid.uuid4().hex[:8]}"
    for t in plan.trials:
        claimed = store.claim_trial(worker, study_id)
        assert claimed is not None and claimed.number == t.number, "imported trials are claimed in order"
        if t.curve:
            store.write_metrics(claimed.id, worker, [(s, plan.objective[0], v) for s, v in t.curve])
        store.finish_trial(claimed.id, worker, t.state, value=t.value, best_step=t.best_step,
                           infeasible_reason=t.infeasible_reason, error=t.error)
    counts: dict[str, int] = {}
    for t in plan.trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    pruned = sum(t.pruned for t in plan.trials)
    store.add_note(
        "import",
        f"imported {len(plan.trials)} trials from Optuna study {study!r} ({pruned} pruned, counted as completed "
        f"with their best reported value)",
        {"source": plan.source, "counts": counts, "pruned": pruned, "skipped": plan.skipped,
         "optuna_numbers": [t.optuna_number for t in plan.trials]},
        experiment=spec["experiment"], study=plan.name,
    )
    stored = store.get_study(plan.name)
    assert stored is not None
    return Study(stored, store)
