"""Issue 22 item 6: every bad input gets one line and exit 2 from the real command, and nothing stored changes.

Each case of tests/cli/bad_inputs.py runs `tunebook ...` in a fresh folder holding a store with one study;
the folder's files and every SQLite file's content are compared before and after. Each command runs with
its address space limited to 1 GiB, so a file read whole (a 1.5 GB spec, a 500 MB token file) shows as a
traceback rather than passing unnoticed.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

import tunebook as tb
from bad_inputs import CASES, TRAIN, dump, write_files
from conftest import ROOT

MEMORY_LIMIT = 1 << 30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def tunebook(folder: Path, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("TUNEBOOK_STORAGE", None)
    return subprocess.run([sys.executable, "-m", "tunebook", *argv], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=_limit_memory)


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "train.py").write_text(TRAIN)
    tb.create_study("keep", space={"nuisance": {"lr": {"min": 0.1, "max": 1.0}}}, objective=("val/error", "min"),
                    trials=3, max_train_steps=5, storage=f"sqlite:///{tmp_path / 'store.db'}")
    return tmp_path


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(folder, case):
    _, files, argv, expected = case
    write_files(folder, files)
    argv = [a.replace("STORE", f"sqlite:///{folder / 'store.db'}") for a in argv]
    before = dump(folder)
    result = tunebook(folder, *argv)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith("tunebook: error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert dump(folder) == before


def test_a_large_choice_is_validated_in_near_linear_time(folder):
    """50,000 values (the duplicate check was quadratic: past 120 s); as a scientific choice, each a group."""
    values = ", ".join(str(i) for i in range(50_000))
    (folder / "spec.yaml").write_text(
        "study: wide\ntrain: train.py:train\nobjective: {metric: val/error, mode: min}\ntrials: 50000\n"
        f"max_train_steps: 10\nsearch_space:\n  scientific: {{c: {{choice: [{values}]}}}}\n"
        "  nuisance: {lr: {min: 0.1, max: 1.0}}\n")
    result = tunebook(folder, "run", "spec.yaml", "--storage", "store.db", "--create-only", timeout=600)
    assert result.returncode == 0, result.stderr
    assert tb.load_study("wide", f"sqlite:///{folder / 'store.db'}").trials_budget == 50_000
