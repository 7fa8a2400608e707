"""A property-based fuzz of study specs (issue 16 item 10).

Random spec mappings, valid and not: every field given random types, nested
structures, huge/NaN/infinite numbers, unicode and control characters, values
YAML or JSON cannot hold. Whatever comes in, the validation behind
`tunebook run` either accepts the spec (and the study is stored) or raises a
:class:`SpecError` whose message is one line; never another exception, and on
error the store is unchanged.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tunebook as tb
from conftest import run_cli
from tunebook.errors import SpecError
from tunebook.study import study_from_spec_file

TABLES = ("tb_experiments", "tb_studies", "tb_trials", "tb_metrics")
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

# leaves and structures ----------------------------------------------------------------------------
special_ints = st.sampled_from([0, 1, -1, 2, 3, 7, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**12,
                                10**7, -(2**63), 10**100])
ints = st.one_of(st.integers(-5, 60), special_ints, st.integers())
floats = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1e-300, 1e-30, 1e-4, 0.5, 1.0, 1e15, 1e16, 1e30, 1e300,
                                                  1e308, -1e308, math.inf, -math.inf, math.nan, 5e-324]))
texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "a", "val/error", "x\x00y", "\x1b[2J", "line\nbreak", "tab\there", "é🙂", "\u2028",
                     "1e-4", "-1e308", "nan", "inf", "min", "max", "log", "linear", "int", "float", "m" * 201,
                     "2024-01-31"]),
)
odd = st.one_of(
    st.dates(), st.datetimes(), st.binary(max_size=6), st.frozensets(st.integers(0, 5), max_size=3).map(set),
    st.just(object()), st.just(Ellipsis), st.just(complex(1, 2)),
)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts)
values = st.recursive(
    st.one_of(scalars, odd),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(st.one_of(texts, ints), inner, max_size=3)),
    max_leaves=12,
)
names = st.one_of(st.sampled_from(["lr", "wd", "opt", "momentum", "batch_size", "n"]), texts)


def _range():
    bound = st.one_of(floats, ints, texts, values)
    return st.fixed_dictionaries(
        {"min": bound, "max": bound},
        optional={"scale": st.one_of(st.sampled_from(["linear", "log"]), values),
                  "type": st.one_of(st.sampled_from(["float", "int"]), values),
                  "extra": values},
    )


good_range = st.builds(
    lambda lo, width, log, kind: {"min": lo, "max": lo + width, "scale": "log" if log else "linear",
                                  **({"type": "int"} if kind else {})},
    st.integers(1, 100), st.integers(1, 1000), st.booleans(), st.booleans(),
)
choice = st.fixed_dictionaries({"choice": st.one_of(st.lists(scalars, max_size=4), values)})
param = st.one_of(good_range, _range(), choice, values)
roles = st.fixed_dictionaries(
    {},
    optional={
        "scientific": st.one_of(st.dictionaries(names, st.one_of(choice, good_range), max_size=2), values),
        "nuisance": st.one_of(st.dictionaries(names, st.one_of(good_range, param), min_size=1, max_size=3), values),
        "fixed": st.one_of(st.dictionaries(names, values, max_size=3), values),
        "conditional": st.one_of(st.dictionaries(st.sampled_from(["opt=a", "opt=b", "opt", "x=1"]),
                                                 st.dictionaries(names, param, max_size=2), max_size=2), values),
    },
)
search_space = st.one_of(roles, roles, roles, values)
objective = st.one_of(
    st.fixed_dictionaries({"metric": st.one_of(st.just("val/error"), texts, values),
                           "mode": st.one_of(st.sampled_from(["min", "max"]), values)}),
    st.tuples(texts, st.sampled_from(["min", "max"])),
    values,
)
# trials: small, or beyond the limit (refused before anything is materialized); never thousands (slow to store)
trials = st.one_of(st.integers(1, 48), st.sampled_from([0, -1, 100_001, 10**7, 10**12, 2**63]), floats, values)
TRAIN_REFS = ["train.py:train", "train.py:nope", "missing.py:train", "syntax.py:train", "raises.py:train",
              "exits.py:train", "folder.py:train", "a:b:c", "", "json:dumps", "json:nope", "..:f", "x\x00.py:train", "a b:c"]
FIELD_JUNK = {
    "study": st.one_of(texts, values),
    "train": st.one_of(st.sampled_from(TRAIN_REFS), values),
    "objective": objective,
    "trials": trials,
    "max_train_steps": st.one_of(special_ints, floats, values),
    "search_space": search_space,
    "goal": st.one_of(texts, values),
    "experiment": st.one_of(texts, values),
    "design": st.one_of(st.sampled_from(["quasi_random", "random", "grid", "replicates", "bayesian"]), values),
    "scientific_design": st.one_of(st.sampled_from(["crossed", "joint"]), values),
    "seed": st.one_of(special_ints, ints, values),
    "infeasible_if": st.one_of(st.dictionaries(texts, st.dictionaries(st.sampled_from(["above", "below"]), floats,
                                                                      max_size=2), max_size=2), values),
    "keep_checkpoints": st.one_of(ints, values),
    "grid_force": st.one_of(st.booleans(), values),
    "storage": st.one_of(st.integers(), st.lists(st.integers(), max_size=2), st.none()),
    "sampler": st.one_of(st.sampled_from(["gp", "tpe"]), values),
    "parent": st.one_of(texts, values),
    "unknown_field": values,
}
REQUIRED = ("study", "train", "objective", "trials", "max_train_steps", "search_space")
printable = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, blacklist_categories=("Cs", "Cc", "Zl", "Zp")),
                    max_size=20)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(-1e6, 1e6), printable)


@st.composite
def valid_spec(draw):
    """A spec `tunebook run` accepts (with fresh names, so that most examples create a study)."""
    nuisance = draw(st.dictionaries(st.sampled_from(["lr", "wd", "momentum", "warmup", "n"]), good_range,
                                    min_size=1, max_size=3))
    space: dict = {"nuisance": nuisance}
    scientific = draw(st.booleans())
    if scientific:
        space["scientific"] = {"opt": {"choice": draw(st.lists(printable, min_size=2, max_size=2, unique=True))}}
    if draw(st.booleans()):
        space["fixed"] = draw(st.dictionaries(st.sampled_from(["batch_size", "clip", "tag", "layers"]),
                                              st.one_of(json_scalars, st.lists(json_scalars, max_size=3)), max_size=3))
    spec = {
        "study": draw(st.from_regex(r"[a-z][a-z0-9_.-]{2,12}", fullmatch=True)),
        "train": "train.py:train",
        "objective": {"metric": draw(st.sampled_from(["val/error", "loss", "acc"])), "mode": draw(st.sampled_from(["min", "max"]))},
        "trials": draw(st.integers(1, 12)) * 2,
        "max_train_steps": draw(st.integers(1, 10**6)),
        "search_space": space,
    }
    if draw(st.booleans()):
        spec["goal"] = draw(printable)
    if draw(st.booleans()):
        spec["seed"] = draw(st.integers(0, 2**63 - 1))
    if draw(st.booleans()):
        spec["design"] = draw(st.sampled_from(["quasi_random", "random"]))
    if draw(st.booleans()):
        spec["infeasible_if"] = {"loss": {"above": draw(st.floats(-1e6, 1e6))}}
    return spec


@st.composite
def spec_mutant(draw):
    """A valid spec with 0 to 3 random changes: a field replaced or removed, or a value deep in the space."""
    spec = draw(valid_spec())
    for _ in range(draw(st.integers(0, 3))):
        what = draw(st.sampled_from(["field", "field", "remove", "param", "bound", "fixed", "choice"]))
        space = spec.get("search_space")
        if what == "field":
            key = draw(st.sampled_from(sorted(FIELD_JUNK)))
            spec[key] = draw(FIELD_JUNK[key])
        elif what == "remove":
            spec.pop(draw(st.sampled_from(REQUIRED)), None)
        elif not isinstance(space, dict):
            continue
        elif what == "param":
            space.setdefault("nuisance", {})
            if isinstance(space["nuisance"], dict):
                space["nuisance"][draw(names)] = draw(param)
        elif what == "bound":
            nuisance = space.get("nuisance")
            if isinstance(nuisance, dict) and nuisance:
                target = nuisance[draw(st.sampled_from(sorted(nuisance, key=str)))]
                if isinstance(target, dict):
                    target[draw(st.sampled_from(["min", "max", "scale", "type"]))] = draw(
                        st.one_of(floats, special_ints, values))
        elif what == "fixed":
            space["fixed"] = {**(space.get("fixed") if isinstance(space.get("fixed"), dict) else {}),
                              draw(names): draw(values)}
        else:
            space["scientific"] = {draw(names): {"choice": draw(st.one_of(st.lists(values, max_size=4), values))}}
    return spec


spec_fields = spec_mutant()


# the fixture: one folder of training files and one store for all examples --------------------
class Workspace:
    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="tb-fuzz-")
        self.root = Path(self._tmp.name)
        (self.root / "train.py").write_text("def train(trial):\n    pass\n")
        (self.root / "syntax.py").write_text("def train(trial)\n    pass\n")
        (self.root / "raises.py").write_text("raise RuntimeError('at import\\nsecond line')\n")
        (self.root / "exits.py").write_text("import sys\nsys.exit(3)\n")
        (self.root / "folder.py").mkdir()
        self.url = f"sqlite:///{self.root / 'store.db'}"
        tb.create_study("keep", space={"nuisance": {"lr": {"min": 0.1, "max": 1.0}}}, objective=("val/error", "min"),
                        trials=3, max_train_steps=5, storage=self.url)
        self.engine = sa.create_engine(self.url)
        self.accepted = 0
        self.refused = 0

    def snapshot(self) -> dict:
        with self.engine.connect() as conn:
            return {t: conn.execute(sa.text(f"SELECT * FROM {t} ORDER BY 1")).all() for t in TABLES}

    def close(self) -> None:
        self.engine.dispose()
        self._tmp.cleanup()


@pytest.fixture(scope="module")
def workspace():
    ws = Workspace()
    yield ws
    print(f"\nfuzz: {ws.accepted} accepted, {ws.refused} refused with one line")
    ws.close()


def dump(spec: dict) -> str | None:
    """The spec as YAML text, or None when PyYAML cannot write it (then the Python API is fuzzed instead)."""
    try:
        return yaml.dump(spec, sort_keys=False, allow_unicode=False)
    except Exception:  # noqa: BLE001 - e.g. an object PyYAML cannot represent
        return None


def check_outcome(ws: Workspace, attempt) -> None:
    before = ws.snapshot()
    try:
        study = attempt()
    except SpecError as exc:
        message = str(exc)
        assert message and len(message.splitlines()) == 1 and "\n" not in message, repr(message)
        assert exc.field, repr(message)
        assert ws.snapshot() == before, message
        ws.refused += 1
        return
    ws.accepted += 1
    stored = tb.load_study(study.name, ws.url)
    assert stored.record.spec == study.record.spec
    # the search trials are stored at creation; a bayesian study proposes them, the replicates come after the search
    assert stored.design == "bayesian" or len(stored.trials()) == stored.replicate_plan.search


@FUZZ
@given(spec=spec_fields)
def test_fuzz_spec_files(workspace, spec):
    """Random spec mappings written as YAML and read the way `tunebook run` reads them."""
    text = dump(spec)
    path = workspace.root / "fuzz.yaml"
    path.write_text(text if text is not None else "study: [unclosed\n")
    check_outcome(workspace, lambda: study_from_spec_file(path, storage=workspace.url)[0])


@st.composite
def python_values(draw):
    """Values only the Python API can be given: containing themselves, shared and expanding."""
    kind = draw(st.sampled_from(["loop_list", "loop_dict", "shared", "plain"]))
    if kind == "loop_list":
        loop: list = [draw(scalars)]
        loop.append(loop)
        return loop
    if kind == "loop_dict":
        cycle: dict = {"a": draw(scalars)}
        cycle["me"] = [cycle]
        return cycle
    if kind == "shared":
        value: list = [draw(scalars)] * 10
        for _ in range(draw(st.integers(1, 8))):
            value = [value] * 10
        return value
    return draw(values)


@FUZZ
@given(spec=spec_fields, where=st.sampled_from(["fixed", "choice", "goal", "trials", "objective", "study", "storage",
                                                "seed", "infeasible_if", "design", "train", "experiment", "parent",
                                                "sampler", "space", "max_train_steps", "keep_checkpoints",
                                                "grid_force", "none"]),
       weird=python_values())
def test_fuzz_create_study(workspace, spec, where, weird):
    """The Python API (what build_spec checks for every caller), with values no YAML file can hold."""
    space = spec.get("search_space")
    kwargs = {"space": space, "objective": spec.get("objective"), "trials": spec.get("trials"),
              "max_train_steps": spec.get("max_train_steps"), "storage": workspace.url}
    for key in ("goal", "experiment", "design", "scientific_design", "seed", "infeasible_if", "keep_checkpoints",
                "grid_force", "sampler", "parent", "train"):
        if key in spec:
            kwargs[key] = spec[key]
    name = spec.get("study")
    if where == "fixed":
        kwargs["space"] = {"nuisance": {"lr": {"min": 0.1, "max": 1.0}}, "fixed": {"w": weird}}
    elif where == "choice":
        kwargs["space"] = {"scientific": {"c": {"choice": [weird, 1]}}, "nuisance": {"lr": {"min": 0.1, "max": 1.0}}}
    elif where == "study":
        name = weird
    elif where != "none":
        kwargs[where] = weird
    check_outcome(workspace, lambda: tb.create_study(name, **kwargs))


CLI_CASES = st.one_of(
    spec_fields,
    st.builds(lambda s, t: {**s, "trials": t}, spec_fields, st.sampled_from([10**7, 10**12, 2**63])),
)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(spec=CLI_CASES)
def test_fuzz_through_the_cli(workspace, spec):
    """A handful through the real command: exit 0 or exit 2 with one line, the store unchanged on exit 2."""
    text = dump(spec)
    path = workspace.root / "cli.yaml"
    path.write_text(text if text is not None else "study: [unclosed\n")
    before = workspace.snapshot()
    result = run_cli("run", str(path), "--storage", workspace.url, "--quiet", "--create-only", timeout=120)
    assert result.returncode in (0, 2), result.stderr
    if result.returncode == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tunebook: error: "), result.stderr
        assert workspace.snapshot() == before



# the YAML reader itself: tags, anchors and repeated keys anywhere (issue 22 item 8) ---------------------------------
YAML_TAGS = ["!!timestamp", "!!bool", "!!int", "!!float", "!!str", "!!binary", "!!set", "!!omap", "!!pairs", "!!null",
             "!!python/name:os.system", "!!python/object/apply:os.getcwd", "!", "!foo", "!<tag:yaml.org,2002:str>"]
yaml_scalars = st.one_of(st.sampled_from(["maybe", "2024-01-31x", "1e-4", "yes", "~", "0x1F", "[]", "{}", "''", "x"]),
                         st.text(st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters="#&*!|>'\"%@`"),
                                 min_size=1, max_size=8).map(str.strip).filter(bool))


@st.composite
def yaml_mutant(draw):
    """A valid spec's YAML with one line changed: a tag or an anchor put before a value, or a key repeated."""
    lines = yaml.dump(draw(valid_spec()), sort_keys=False).splitlines()
    index = draw(st.integers(0, len(lines) - 1))
    line = lines[index]
    key, sep, value = line.partition(": ")
    what = draw(st.sampled_from(["tag", "anchor", "repeat"]))
    mark = draw(st.sampled_from(YAML_TAGS)) if what == "tag" else f"&{draw(st.sampled_from(['a', 'x1', 'anchor']))}"
    if what == "repeat":
        lines.insert(index + 1, line)  # the same key twice in a mapping (or a list item twice, which is fine)
    elif sep:
        lines[index] = f"{key}: {mark} {value if value.strip() else draw(yaml_scalars)}"
    elif line.rstrip().endswith(":"):
        lines[index] = f"{line.rstrip()} {mark}"  # a tagged or anchored mapping or list
    elif line.lstrip().startswith("- "):
        dash = line.index("- ") + 2
        lines[index] = f"{line[:dash]}{mark} {line[dash:]}"
    else:
        lines.insert(index + 1, line)
    return "\n".join(lines) + "\n"


@FUZZ
@given(text=yaml_mutant())
def test_fuzz_yaml_tags_anchors_and_repeated_keys(workspace, text):
    """A tagged value, a lone anchor or a repeated key anywhere: one line naming the line, nothing stored; never a
    parser traceback (PyYAML's constructors raised KeyError and AttributeError on `!!bool maybe`, `!!timestamp x`)."""
    path = workspace.root / "mutant.yaml"
    path.write_text(text)
    check_outcome(workspace, lambda: study_from_spec_file(path, storage=workspace.url)[0])


# trial.log: whatever the training function logs, the store keeps only names and steps every backend can hold --------
log_names = st.one_of(st.sampled_from(["loss", "val/error", "acc", "a.b-c_d", "é", "loss\n", "\x1b[2Jx", "x\x9b",
                                       "x\u202e", "tab\tname", "", " "]),
                      st.text(max_size=12))
log_values = st.one_of(st.floats(), st.integers(-10**6, 10**6), st.sampled_from([math.nan, math.inf, 0.0, -1.0]))
log_calls = st.lists(st.tuples(st.integers(-3, 2**31 - 1) | st.integers(0, 50),
                               st.dictionaries(log_names, log_values, min_size=1, max_size=3)), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(calls=log_calls)
def test_fuzz_trial_log(workspace, calls):
    """Random names, steps and values through `trial.log` in a real run: the trial ends completed, infeasible, or
    failed with one line saying which name or step was refused; every stored name is printable and every stored
    step is 0 or more."""
    from tunebook.errors import failure_line
    from tunebook.specio import name_chars_problem

    workspace.logs = getattr(workspace, "logs", 0) + 1
    study = tb.create_study(f"log-{workspace.logs}", space={"nuisance": {"lr": {"min": 0.1, "max": 1.0}}},
                            objective=("loss", "min"), trials=1, max_train_steps=2**31 - 1, storage=workspace.url)

    def train(trial):
        for step, metrics in calls:
            trial.log(step, **metrics)

    tb.run(study, train, workers=0, progress=False)
    trial = study.trials()[0]
    assert trial.state in ("completed", "infeasible", "failed"), trial.state
    if trial.state == "failed":
        line = failure_line(trial.error)
        assert line and "\n" not in line, trial.error
        assert "SpecError" in line or "never logged" in line, line
    for name, points in study.metrics(trial).items():
        assert name_chars_problem(name) is None, repr(name)
        assert all(step >= 0 for step, _ in points), (name, points)
