"""Bad specs, training files and stores through the real CLI: exit 2, one line naming the field, nothing stored.

Each case comes from issue 16 (items 8 and 9): tiny inputs that used to exhaust
memory or time, or end in a traceback.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import textwrap
from pathlib import Path

import pytest
import yaml

import tunebook as tb
from _store_dump import rows
from conftest import run_cli
from tunebook import specio
from tunebook.errors import SpecError

TRAIN = "def train(trial):\n    trial.log(1, **{'val/error': 0.5})\n"
TABLES = ("tb_experiments", "tb_studies", "tb_trials", "tb_metrics")


def base_spec(**fields) -> dict:
    spec = {
        "study": "limits",
        "train": "train.py:train",
        "objective": {"metric": "val/error", "mode": "min"},
        "trials": 4,
        "max_train_steps": 10,
        "search_space": {
            "scientific": {"wd": {"choice": [0.0, 0.1]}},
            "nuisance": {"lr": {"min": 1.0e-4, "max": 1.0, "scale": "log"}},
            "fixed": {"batch_size": 32},
        },
    }
    spec.update(fields)
    return spec


def with_space(role: str, name: str, value) -> dict:
    spec = base_spec()
    spec["search_space"][role][name] = value
    return spec


def snapshot(url: str) -> dict:
    return rows(url, TABLES)


def make_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "spec"
    folder.mkdir()
    (folder / "train.py").write_text(TRAIN)
    return folder


def make_store(url: str) -> None:
    """A store holding one study already, so that 'unchanged' means something."""
    tb.create_study("keep", space={"nuisance": {"lr": {"min": 0.1, "max": 1.0}}}, objective=("val/error", "min"),
                    trials=3, max_train_steps=5, storage=url)


def check_refused(spec_path: Path, url: str, expected: str, *, cwd: Path | None = None) -> str:
    before = snapshot(url)
    result = run_cli("run", str(spec_path), "--storage", url, "--quiet", "--workers", "0", cwd=cwd, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tunebook: error: "), lines[0]
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.stdout
    assert snapshot(url) == before
    return lines[0]


# spec cases: (YAML text or a spec mapping, the text the one line must contain) ---------------
LAUGHS = textwrap.dedent("""\
    study: limits
    train: train.py:train
    objective: {metric: val/error, mode: min}
    trials: 4
    max_train_steps: 10
    search_space:
      nuisance: {lr: {min: 0.0001, max: 1.0, scale: log}}
      fixed:
        a: &a [x, x, x, x, x, x, x, x, x, x]
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
        d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
        e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
        f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
        g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
    """)
SELF_REFERENCE = LAUGHS.split("  fixed:")[0] + "  fixed:\n    loop: &loop [1, *loop]\n"
SELF_REFERENCE_CHOICE = LAUGHS.split("  fixed:")[0].replace(
    "nuisance: {lr", "scientific: {opt: {choice: &c [a, *c]}}\n  nuisance: {lr") + "\n"


def _yaml(spec: dict) -> str:
    return yaml.safe_dump(spec, sort_keys=False)


def _raw(spec: dict, old: str, new: str) -> str:
    text = _yaml(spec)
    assert old in text
    return text.replace(old, new)


SPEC_CASES = {
    "nested aliases in fixed (billion laughs)": (LAUGHS, "YAML anchor &a at line"),
    "self-referencing value in fixed": (SELF_REFERENCE, "YAML anchor &loop"),
    "self-referencing choice": (SELF_REFERENCE_CHOICE, "YAML anchor &c"),
    "trials 10,000,000": (base_spec(trials=10_000_000), "trials: 10,000,000 is above the limit"),
    "trials 10**12": (base_spec(trials=10**12), "trials: 1,000,000,000,000 is above the limit"),
    "max_train_steps 2**63": (base_spec(max_train_steps=2**63), "max_train_steps: "),
    "max_train_steps 2**31": (base_spec(max_train_steps=2**31), "max_train_steps: 2,147,483,648 is above"),
    "max_train_steps 2**64": (base_spec(max_train_steps=2**64), "max_train_steps: "),
    "seed 2**63": (base_spec(seed=2**63), "seed: 9,223,372,036,854,775,808 is above"),
    "seed 2**70": (base_spec(seed=2**70), "seed: "),
    "keep_checkpoints 10**12": (base_spec(keep_checkpoints=10**12), "keep_checkpoints: "),
    "linear max 1e308": (with_space("nuisance", "x", {"min": 0.0, "max": 1e308}), "search_space.nuisance.x.max: 1e+308"),
    "linear min -1e308": (with_space("nuisance", "x", {"min": -1e308, "max": 0.0}), "search_space.nuisance.x.min: -1e+308"),
    "log max 1e300": (with_space("nuisance", "x", {"min": 1.0, "max": 1e300, "scale": "log"}), "search_space.nuisance.x.max"),
    "log min 1e-300": (with_space("nuisance", "x", {"min": 1e-300, "max": 1.0, "scale": "log"}), "search_space.nuisance.x.min"),
    "int max 10**20": (with_space("nuisance", "n", {"min": 1, "max": 10**20, "type": "int"}), "search_space.nuisance.n.max"),
    "infinite bound": (_raw(with_space("nuisance", "x", {"min": 0.0, "max": 2.5}), "max: 2.5\n", "max: .inf\n"),
                       "search_space.nuisance.x.max"),
    "date in fixed": (with_space("fixed", "day", datetime.date(2024, 1, 31)), "search_space.fixed.day: a date"),
    "date in choice": (with_space("scientific", "day", {"choice": [datetime.date(2024, 1, 31), "x"]}),
                       "search_space.scientific.day.choice[0]: a date"),
    "datetime in fixed": (with_space("fixed", "at", datetime.datetime(2024, 1, 31, 12)), "search_space.fixed.at"),
    "bytes in fixed": (with_space("fixed", "blob", b"\x00\x01"), "YAML tag !!binary at line"),  # a YAML tag, refused where it is met
    "bytes in choice": (with_space("scientific", "blob", {"choice": [b"a", b"b"]}), "YAML tag !!binary at line"),
    "set in fixed": (_raw(with_space("fixed", "tags", "SET"), "tags: SET", "tags: !!set {a, b}"), "YAML tag !!set at line"),
    "set in choice": (_raw(with_space("scientific", "tags", {"choice": ["SET", 1]}), "- SET", "- !!set {a, b}"),
                      "YAML tag !!set at line"),
    "NaN in fixed": (_raw(with_space("fixed", "clip", 1.0), "clip: 1.0", "clip: .nan"), "search_space.fixed.clip"),
    "non-text key in fixed": (with_space("fixed", "table", {1: "a"}), "search_space.fixed.table.1: a key must be text"),
    "fixed nested 40 deep": (with_space("fixed", "deep", json.loads("[" * 40 + "]" * 40)), "search_space.fixed.deep"),
    "10**12 scientific combinations": (base_spec(search_space={
        "scientific": {f"s{i}": {"choice": list(range(100))} for i in range(6)},
        "nuisance": {"lr": {"min": 0.1, "max": 1.0}}}), "search_space.scientific: more than 100,000 combinations"),
    "NUL in the train reference": (base_spec(train="train\x00.py:train"), "train: 'train\\x00.py:train' is not a module"),
    "a relative module as train": (base_spec(train="..:train"), "train: '..' is not a module name"),
    "storage: 5": (base_spec(storage=5), "storage: expected a URL"),
    "storage: a list": (base_spec(storage=["sqlite:///x.db"]), "storage: expected a URL"),
    "objective metric of 201 characters": (base_spec(objective={"metric": "m" * 201, "mode": "min"}), "objective.metric"),
    "NUL in the goal": (base_spec(goal="why\x00not"), "goal: contains a NUL"),
    "terminal escape in the metric": (base_spec(objective={"metric": "val/\x1b[2Jerror", "mode": "min"}),
                                      "objective.metric: contains the control character"),
    "NUL in an infeasible_if metric": (base_spec(infeasible_if={"loss\x00": {"above": 1}}), "infeasible_if.'loss\\x00'"),
    "goal of a megabyte": (base_spec(goal="g" * 20_000), "goal: is 20,000 characters long"),
    "non-text field name": (_raw(base_spec(), "trials: 4", "7: 1\ntrials: 4"), "7: a field name must be text"),
    "impossible date": (_raw(with_space("fixed", "day", "DAY"), "day: DAY", "day: 2024-13-45"), "month must be in 1..12"),
    "YAML nested 5000 deep": (_yaml(base_spec()) + "deep: " + "[" * 5000 + "]" * 5000 + "\n", "spec: limits.yaml"),
    "python object tag": (_raw(base_spec(), "trials: 4", "trials: !!python/object/apply:os.getcwd []"),
                          "YAML tag !!python/object/apply:os.getcwd at line"),
    "tab-indented YAML": ("study: x\n\ttrials: 4\n", "spec: limits.yaml is not valid YAML at line 2"),
    "spec over a megabyte": (_yaml(base_spec()) + "#" + " " * 1_100_000 + "\n", "limits.yaml' is 1,"),
}


def _spec_text(spec) -> str:
    return spec if isinstance(spec, str) else yaml.dump(spec, sort_keys=False, allow_unicode=False)


def write_spec(folder: Path, spec) -> Path:
    path = folder / "limits.yaml"
    path.write_text(_spec_text(spec))
    return path


@pytest.fixture
def folder_and_store(tmp_path):
    folder = make_folder(tmp_path)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    make_store(url)
    return folder, url


@pytest.mark.parametrize("case", list(SPEC_CASES))
def test_bad_spec_exits_2_with_one_line_and_stores_nothing(folder_and_store, case):
    folder, url = folder_and_store
    spec, expected = SPEC_CASES[case]
    line = check_refused(write_spec(folder, spec), url, expected)
    assert len(line) < 400


def test_the_alias_file_is_tiny_and_the_store_stays_small(folder_and_store):
    folder, url = folder_and_store
    path = write_spec(folder, LAUGHS)
    assert path.stat().st_size < 1000
    size = Path(url.split(":///")[1]).stat().st_size
    check_refused(path, url, "anchors and aliases are not allowed")
    assert Path(url.split(":///")[1]).stat().st_size == size


# training files -----------------------------------------------------------------
TRAIN_CASES = {
    "syntax error": ("bad.py", "x = 1\ndef train(trial)\n    pass\n", "bad.py, line 2: syntax error"),
    "raises at import": ("bad.py", "import math\nraise RuntimeError('no GPU here')\ndef train(trial): pass\n",
                         "bad.py, line 2 raised RuntimeError while being imported: no GPU here"),
    "raises deeper at import": ("bad.py", "def f():\n    return 1 / 0\nVALUE = f()\n",
                                "bad.py, line 2 raised ZeroDivisionError"),
    "sys.exit(1) at import": ("bad.py", "import sys\nsys.exit(1)\n", "bad.py called sys.exit(1) while being imported"),
    "sys.exit(0) at import": ("bad.py", "import sys\nsys.exit(0)\n", "bad.py called sys.exit(0)"),
    "sys.exit('message') at import": ("bad.py", "import sys\nsys.exit('boom\\nline two')\n", "bad.py called sys.exit"),
    "multi-line exception at import": ("bad.py", "raise ValueError('one\\ntwo\\nthree')\n", "ValueError"),
    "missing package imported by the file": ("bad.py", "import no_such_package_xyz\n",
                                             "bad.py, line 1 raised ModuleNotFoundError"),
    "a folder named x.py": ("x.py", None, "is a folder, not a Python file"),
    "no such function": ("ok.py", "def other(trial): pass\n", "has no function 'train'"),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_bad_training_file_exits_2_with_one_line(folder_and_store, case):
    folder, url = folder_and_store
    name, source, expected = TRAIN_CASES[case]
    if source is None:
        (folder / name).mkdir()
    else:
        (folder / name).write_text(source)
    path = write_spec(folder, base_spec(train=f"{name}:train"))
    line = check_refused(path, url, expected)
    assert line.startswith("tunebook: error: train: ")


# PostgreSQL: the same lines as SQLite (validated in the spec layer) -----------------
@pytest.mark.parametrize("case", ["objective metric of 201 characters", "NUL in the goal",
                                  "NUL in an infeasible_if metric", "seed 2**63", "max_train_steps 2**31"])
def test_postgresql_gives_the_same_one_line(tmp_path, pg_server, case):
    folder = make_folder(tmp_path)
    url = pg_server.new_database()
    make_store(url)
    spec, expected = SPEC_CASES[case]
    check_refused(write_spec(folder, spec), url, expected)


def test_postgresql_accepts_the_limits_themselves(tmp_path, pg_server):
    """The documented maxima fit the columns: a study at the limits is stored and read back."""
    url = pg_server.new_database()
    study = tb.create_study("edge", space={"nuisance": {"lr": {"min": 1e-30, "max": 1e30, "scale": "log"},
                                                        "x": {"min": -1e15, "max": 1e15}}},
                            objective=("m" * 200, "min"), trials=2, max_train_steps=specio.MAX_TRAIN_STEPS,
                            seed=specio.MAX_SEED, goal="multi\nline\tgoal", storage=url)
    again = tb.load_study("edge", url)
    assert (again.seed, again.max_train_steps, again.objective[0]) == (specio.MAX_SEED, 2**31 - 1, "m" * 200)
    assert study.trials_budget == 2


# a corrupted store ----------------------------------------------------------------------
def corrupt_interior_pages(path: Path) -> None:
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    for start in range(2 * page, len(data), page):  # keep page 1 (header, schema) and page 2
        data[start:start + page] = bytes((i * 37 + 11) % 256 for i in range(page))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("command", ["run", "status"])
def test_corrupted_store_is_one_line_naming_the_file_and_recover(tmp_path, command):
    folder = make_folder(tmp_path)
    db = tmp_path / "store.db"
    url = f"sqlite:///{db}"
    tb.create_study("limits", space={"nuisance": {"lr": {"min": 0.1, "max": 1.0}}}, objective=("val/error", "min"),
                    trials=400, max_train_steps=5, storage=url, goal="x" * 3000)
    tb.storage.open_storage(url).close()
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0
    corrupt_interior_pages(db)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    spec = write_spec(folder, base_spec(search_space={"nuisance": {"lr": {"min": 0.1, "max": 1.0}}}, trials=400,
                                        max_train_steps=5))
    args = ["run", str(spec), "--storage", url, "--quiet", "--workers", "0"] if command == "run" else \
        ["status", "limits", "--storage", url]
    result = run_cli(*args, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"storage: {db} is" in lines[0] and f"sqlite3 {db} .recover" in lines[0], lines[0]
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest


def test_a_file_that_is_not_sqlite_is_one_line(tmp_path):
    db = tmp_path / "store.db"
    db.write_bytes(b"this is not a database" * 500)
    result = run_cli("ls", "--storage", f"sqlite:///{db}", timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a SQLite database" in lines[0], result.stderr


# the Python API: values YAML cannot even write ---------------------------------------------
def _loop_list():
    loop: list = [1]
    loop.append(loop)
    return loop


def _loop_dict():
    loop: dict = {"a": 1}
    loop["self"] = loop
    return loop


def _wide():
    """Shared references (no cycle), 10**8 leaves when expanded."""
    value: list = ["x"] * 10
    for _ in range(7):
        value = [value] * 10
    return value


PY_CASES = {
    "self-referencing list in choice": ("scientific", {"choice": [_loop_list(), 2]}, "choice[0][1]: the value contains itself"),
    "self-referencing dict in fixed": ("fixed", _loop_dict(), "search_space.fixed.v.self: the value contains itself"),
    "set in fixed": ("fixed", {1, 2}, "search_space.fixed.v: a set"),
    "object in fixed": ("fixed", object(), "search_space.fixed.v: a object"),
    "bytes in choice": ("scientific", {"choice": [b"a"]}, "choice[0]: bytes"),
    "date in fixed": ("fixed", datetime.date(2024, 1, 1), "search_space.fixed.v: a date"),
    "expanding shared lists in fixed": ("fixed", _wide(), "the spec is too large"),
    "inf in choice": ("scientific", {"choice": [float("inf"), 1.0]}, "choice[0]: inf is not a JSON number"),
    "huge int in fixed": ("fixed", 10**30, "search_space.fixed.v: integer"),
}


@pytest.mark.parametrize("case", list(PY_CASES))
def test_python_api_refuses_non_json_values_with_one_line(tmp_path, case):
    role, value, expected = PY_CASES[case]
    url = f"sqlite:///{tmp_path / 'store.db'}"
    make_store(url)
    before = snapshot(url)
    space = {"nuisance": {"lr": {"min": 0.1, "max": 1.0}}, role: {"v": value}}
    with pytest.raises(SpecError) as info:
        tb.create_study("py", space=space, objective=("val/error", "min"), trials=4, max_train_steps=5, storage=url)
    assert expected in str(info.value) and "\n" not in str(info.value), str(info.value)
    assert snapshot(url) == before


@pytest.mark.parametrize("kwargs, expected", [
    ({"trials": 10**12}, "trials: 1,000,000,000,000 is above the limit"),
    ({"storage": 5}, "storage: expected a URL"),
    ({"seed": 2**63}, "seed: "),
    ({"goal": "a\x00b"}, "goal: contains a NUL"),
    ({"parent": ["round1"]}, "parent: invalid name"),
    ({"train": "x.py:train\x00"}, "train: 'x.py:train\\x00' is not a module"),
])
def test_python_api_limits(tmp_path, kwargs, expected):
    options = {"space": {"nuisance": {"lr": {"min": 0.1, "max": 1.0}}}, "objective": ("val/error", "min"),
               "trials": 4, "max_train_steps": 5, "storage": f"sqlite:///{tmp_path / 'store.db'}", **kwargs}
    with pytest.raises(SpecError, match=re.escape(expected)):
        tb.create_study("py", **options)


def test_limits_are_accepted_at_the_boundary(tmp_path):
    study = tb.create_study(
        "edge", space={"nuisance": {"lr": {"min": 1e-30, "max": 1e30, "scale": "log"}, "x": {"min": -1e15, "max": 1e15},
                                    "n": {"min": 1, "max": 10**15, "type": "int", "scale": "log"}},
                       "fixed": {"big": 2**63 - 1, "nested": [[{"a": None}]]}},
        objective=("m" * 200, "min"), trials=3, max_train_steps=2**31 - 1, seed=2**63 - 1,
        storage=f"sqlite:///{tmp_path / 'store.db'}")
    for trial in study.trials():
        assert 1e-30 <= trial.params["lr"] <= 1e30
    assert study.seed == 2**63 - 1
