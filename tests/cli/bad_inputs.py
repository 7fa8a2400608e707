"""Every bad input of issue 22 (item 6) as one case: what to write, what to run, what the one line must say.

Shared by tests/cli/test_bad_inputs.py (each case through the real command: exit 2, one line, the store and
its folder unchanged) and benchmarks/bad_inputs.py (the count for the issue's note). A case is
``(id, files, argv, expected)``: ``files`` maps a file name to its text (or to an int: a sparse file of that
many bytes, which costs no disk); ``argv`` is the command after ``tunebook``, run in the case's folder, with
``STORE`` replaced by the store's URL (a SQLite file holding one study, ``keep``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from _store_dump import dump  # noqa: F401 - the tests compare a dump before and after

TRAIN = "def train(trial):\n    trial.log(1, **{'val/error': 0.5})\n"

SPEC = """\
study: limits
train: train.py:train
objective: {metric: val/error, mode: min}
trials: 4
max_train_steps: 10
search_space:
  scientific: {wd: {choice: [0.0, 0.1]}}
  nuisance: {lr: {min: 1.0e-4, max: 1.0, scale: log}}
"""


def spec(**replace: str) -> str:
    """SPEC with whole lines replaced (``key="new line"``) or, with ``extra``, lines added at the end."""
    lines = SPEC.splitlines()
    for key, new in replace.items():
        if key == "extra":
            lines.append(new)
            continue
        lines = [new if line.startswith(f"{key}:") else line for line in lines]
    return "\n".join(lines) + "\n"


RUN = ["run", "spec.yaml", "--storage", "STORE", "--quiet", "--create-only"]
GB = 1 << 30

CASES: list[tuple[str, dict, list[str], str]] = [
    # the spec file: YAML
    ("duplicate-key", {"spec.yaml": spec(extra="trials: 100000")}, RUN, "key 'trials' is given twice (lines 4 and 9)"),
    ("duplicate-nested-key", {"spec.yaml": spec(objective="objective: {metric: val/error, mode: min, mode: max}")},
     RUN, "key 'mode' is given twice"),
    ("tag-timestamp", {"spec.yaml": spec(extra="goal: !!timestamp 2024-01-31x")}, RUN, "YAML tag !!timestamp"),
    ("tag-bool", {"spec.yaml": spec(extra="grid_force: !!bool maybe")}, RUN, "YAML tag !!bool"),
    ("tag-str", {"spec.yaml": spec(extra="goal: !!str 5")}, RUN, "YAML tag !!str"),
    ("anchor-without-alias", {"spec.yaml": spec(extra="goal: &g does weight decay help?")}, RUN, "YAML anchor &g"),
    ("spec-file-1.5GB", {"spec.yaml": 3 * GB // 2}, RUN, "more than 1,000,000"),
    # names
    ("study-name-trailing-newline", {"spec.yaml": spec(study='study: "limits\\n"')}, RUN, "study: invalid name"),
    ("experiment-name-newline", {"spec.yaml": spec(extra='experiment: "wd\\nablation"')}, RUN, "experiment: invalid name"),
    ("experiment-name-esc", {"spec.yaml": spec(extra='experiment: "wd\\e[2J"')}, RUN, "experiment: invalid name"),
    ("objective-metric-esc", {"spec.yaml": spec(objective='objective: {metric: "val/error\\e[31m", mode: min}')}, RUN,
     "objective.metric: contains the control character '\\x1b'"),
    ("objective-metric-c1", {"spec.yaml": spec(objective='objective: {metric: "val/error\\x9b", mode: min}')}, RUN,
     "objective.metric: contains the control character '\\x9b'"),
    ("objective-metric-newline", {"spec.yaml": spec(objective='objective: {metric: "val/error\\n", mode: min}')},
     RUN, "objective.metric: contains the control character '\\n'"),
    ("infeasible-metric-bidi", {"spec.yaml": spec(extra='infeasible_if: {"loss\\u202e": {above: 10}}')}, RUN,
     "a key must be printable text (no control characters)"),
    # the space
    ("ambiguous-choice-key", {"spec.yaml": SPEC.replace("{wd: {choice: [0.0, 0.1]}}", "{opt: {choice: [1, '1']}}")
                              + "  conditional: {opt=1: {momentum: {min: 0.1, max: 0.9}}}\n"},
     RUN, "'1' names more than one value of scientific 'opt'"),
    ("parent-on-quasi-random", {"spec.yaml": spec(extra="parent: exploration")}, RUN,
     "parent: design quasi_random does not use a parent"),
    # command-line options
    ("devices-empty", {"spec.yaml": SPEC}, ["run", "spec.yaml", "--storage", "STORE", "--devices", ""], "--devices: '' lists no device"),
    ("devices-commas", {"spec.yaml": SPEC}, ["run", "spec.yaml", "--storage", "STORE", "--devices", " , "], "lists no device"),
    ("workers-100000-run", {"spec.yaml": SPEC}, ["run", "spec.yaml", "--storage", "STORE", "--workers", "100000"],
     "expected at most 256 worker processes"),
    ("workers-100000-worker", {}, ["worker", "--storage", "STORE", "--workers", "100000"], "expected at most 256"),
    ("workers-100000-demo", {}, ["demo", "--storage", "STORE", "--workers", "100000"], "expected at most 256"),
    ("token-file-500MB", {"token.txt": 500 * (1 << 20)},
     ["dashboard", "--storage", "STORE", "--token-file", "token.txt", "--port", "0"], "--token-file: 'token.txt' is 524,288,000 bytes"),
    ("postgresql-port-not-a-number", {}, ["ls", "--storage", "postgresql://tb@localhost:abc/tunebook"],
     "--storage: the port 'abc' is not a number"),
    ("postgresql-port-out-of-range", {}, ["status", "--storage", "postgresql://tb@localhost:99999/tunebook"],
     "--storage: the port"),
    ("report-onto-dev-full", {}, ["report", "keep", "--storage", "STORE", "-o", "/dev/full"],
     "--output: cannot write '/dev/full' (No space left on device)"),
    # read-only verbs never create a store
    ("status-mistyped-store", {}, ["status", "--storage", "sqlite:///tunebok.db"], "--storage: no store at"),
    ("status-study-mistyped-store", {}, ["status", "keep", "--storage", "tunebok.db"], "--storage: no store at"),
    ("ls-mistyped-store", {}, ["ls", "--storage", "tunebok.db"], "--storage: no store at"),
    ("report-mistyped-store", {}, ["report", "keep", "--storage", "tunebok.db"], "--storage: no store at"),
    ("export-mistyped-store", {}, ["export", "keep", "--to", "csv", "out.csv", "--storage", "tunebok.db"], "--storage: no store at"),
    ("dashboard-mistyped-store", {}, ["dashboard", "--storage", "tunebok.db", "--port", "0"], "--storage: no store at"),
    ("retrain-mistyped-store", {}, ["retrain", "keep", "--storage", "tunebok.db"], "--storage: no store at"),
    ("status-on-another-tools-db", {"other.db": "SQL:CREATE TABLE studies (id INTEGER)"},
     ["status", "--storage", "other.db"], "is not a tunebook store"),
]


def write_files(folder: Path, files: dict) -> None:
    """The case's files: text, a sparse file of N bytes, or ``SQL:...`` (a SQLite file made by that statement)."""
    for name, content in files.items():
        path = folder / name
        if isinstance(content, int):
            with path.open("wb") as f:
                f.truncate(content)
        elif content.startswith("SQL:"):
            conn = sqlite3.connect(path)
            conn.execute(content[4:])
            conn.commit()
            conn.close()
        else:
            path.write_text(content)
