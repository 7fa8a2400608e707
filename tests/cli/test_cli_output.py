"""What the CLI prints: quiet on a closed pipe, stored control characters never reach the terminal."""

from __future__ import annotations

import os
import subprocess

import pytest

import tunebook as tb
from conftest import ROOT, TUNEBOOK

WORKLOADS = ROOT / "tests" / "_workloads.py"
ESCAPES = "\x1b[2J\x1b[31mred\x1b[0m \x1b]0;pwned\x07title \x9b31m\x07bell\x08"


@pytest.fixture
def store(tmp_path) -> str:
    """Study 'esc' whose goal carries terminal escape sequences, and a failed trial whose error does too."""
    url = f"sqlite:///{tmp_path / 'tunebook.db'}"
    study = tb.create_study(
        "esc", space={"nuisance": {"lr": {"min": 1e-4, "max": 1.0, "scale": "log"}}}, objective=("val/error", "min"),
        trials=2, max_train_steps=10, goal=f"does it help? {ESCAPES}", storage=url, train=f"{WORKLOADS}:quadratic",
    )
    tb.run(study, workers=0, progress=False)
    return url


def cli(*args: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    # a wide terminal: lines are wrapped at spaces to COLUMNS, and these tests look for whole values
    return subprocess.run([*TUNEBOOK, *args], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.mark.parametrize("args", [["status", "esc"], ["status"], ["ls"], ["ls", "--format", "json"]])
def test_escape_sequences_in_stored_text_are_not_printed(store, args):
    proc = cli(*args, "--storage", store)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert not any(ch in out for ch in "\x1b\x07\x08\x9b"), repr(out)
    if args[0] == "status" and len(args) == 2:
        assert "does it help? red title bell" in out  # the text stays, the sequences go
    if args == ["ls"]:
        assert "does it help?" in out and "pwned" not in out


@pytest.mark.parametrize("args", [["status", "esc"], ["status"], ["ls"], ["ls", "--format", "json"], ["report", "esc", "--format", "terminal"]])
def test_a_closed_pipe_ends_the_command_quietly(store, args):
    """`tunebook status esc | head -0`: the reader is gone before the first write (a real pipe)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = cli(*args, "--storage", store, stdout=write_end)
    finally:
        os.close(write_end)
    assert proc.stderr == "", proc.stderr  # no BrokenPipeError traceback, no "Exception ignored"
    assert proc.returncode == 1  # nothing more was said: the reader left


def test_head_in_a_shell_pipeline_gets_its_lines_and_no_traceback(store):
    command = " ".join(TUNEBOOK) + f" status esc --storage {store} | head -1"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith("study esc (") and len(proc.stdout.splitlines()) == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_retrain_prints_the_configuration_it_retrained(store):
    proc = cli("retrain", "esc", "--n", "2", "--workers", "0", "--quiet", "--storage", store)
    assert proc.returncode == 0, proc.stderr
    best = tb.load_study("esc", storage=store).best_trial()
    assert "esc-retrain-" in proc.stdout and "2 retrains, val/error mean" in proc.stdout
    assert f"{{'lr': {best.params['lr']!r}}}" in proc.stdout and ": {}" not in proc.stdout
