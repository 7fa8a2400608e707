"""`tunebook pursue`: the loop run to an answer within a budget, resumed from the store, on the rings workload.

The right answer (seeded grid pilot, see _cases.py): Adam beats SGD at 200 steps (0.132 against 0.158, about 2.5
pooled seed sd); SGD's optimum lies in 0.5..1.0, above the first study's shared range (1e-3..0.3), Adam's
(0.02..0.05) inside it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import yaml
from _next_cases import SGD_OPTIMUM, optimizers

import tunebook as tb
from conftest import TUNEBOOK, run_cli
from tunebook.procedures.next import chain

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("next-loop")]

ADAM_RANGE = {"min": 1e-3, "max": 0.3, "scale": "log"}


def test_pursue_stops_at_its_budget_then_resumes_to_a_fair_answer_naming_the_pilots_winner(tmp_path):
    spec = tmp_path / "rings-opt.yaml"
    spec.write_text(yaml.safe_dump(optimizers("rings-opt", steps=200)))
    url = f"sqlite:///{tmp_path / 'p.db'}"

    lines: list[str] = []
    short = tb.pursue(str(spec), budget=16, storage=url, workers=0, log=lines.append)
    assert not short.answered and short.spent == 16
    assert [r.action for r in short.rounds] == ["widen"]  # decided, but not taken: nothing left
    assert "not taken: it needs 16 trial(s), 0 left of 16" in lines[0]
    assert "--budget 38" in short.missing and short.needed == 22  # the round and the 6 retrains after it
    first = tb.load_study("rings-opt", url)
    finished = {t.number: t.finished_at for t in first.trials()}

    lines.clear()
    result = tb.pursue(str(spec), budget=100, storage=url, workers=0, log=lines.append)
    # it went on from the stored round: the first study was not run again
    assert {t.number: t.finished_at for t in tb.load_study("rings-opt", url).trials()} == finished
    assert result.answered, "\n".join(lines)
    assert result.rounds[0].action == "widen" and result.spent <= 100
    answer = result.answer
    assert answer.fair and answer.best_group == "optimizer=adam", answer.verdict  # the pilot's winner
    final = tb.load_study(result.study, url)
    cond = final.space.to_spec()["conditional"]
    assert cond["optimizer=adam"]["learning_rate"] == ADAM_RANGE  # Adam's range was never touched
    sgd = cond["optimizer=sgd"]["learning_rate"]
    assert sgd["min"] <= SGD_OPTIMUM[0] and sgd["max"] >= SGD_OPTIMUM[1]  # SGD's covers its pilot optimum
    assert [s.name for s in chain(final)][0] == "rings-opt"
    # every round is printed with its decision, and the end gives the evidence
    assert any(line.startswith("round 1: rings-opt: New study rings-opt-n2") for line in lines)
    assert any(line.startswith("answered after") for line in lines)
    assert any("evidence: optimizer=adam: best val/loss" in line for line in lines)
    notes = final.storage.get_notes(kind="pursue")
    assert notes and notes[-1]["evidence"]["budget"] == 100 and notes[-1]["evidence"]["spent"] == result.spent
    # the measured answer: trial variance from retrains, and the two best groups separated by it
    assert "retrain" in answer.trial_sd_source and answer.difference > 2 * answer.trial_sd


def test_a_killed_pursue_resumes_where_it_stopped(tmp_path):
    """A real `tunebook pursue` killed with SIGKILL during its second round; the same command finishes it."""
    spec = tmp_path / "rings-kill.yaml"
    spec.write_text(yaml.safe_dump(optimizers("rings-kill", trials=8, steps=40)))
    url = f"sqlite:///{tmp_path / 'k.db'}"
    args = ["pursue", str(spec), "--budget", "24", "--storage", url, "--workers", "0", "--quiet"]
    proc = subprocess.Popen([*TUNEBOOK, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    store = tb.open_storage(url)
    deadline = time.monotonic() + 240
    second = None
    while time.monotonic() < deadline and proc.poll() is None:  # wait for a trial of round 2 to finish
        second = store.get_study("rings-kill-n2")
        if second is not None and tb.load_study("rings-kill-n2", url).counts()["completed"]:
            break
        time.sleep(0.2)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert second is not None, proc.stdout.read() if proc.stdout else ""
    first_runs = {t.number: t.finished_at for t in tb.load_study("rings-kill", url).trials()}
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode in (0, 1), again.stderr  # answered or not within 24 trials: both are an ending
    assert "resuming at rings-kill-n2" in again.stdout or "rings-kill-n2" in again.stdout
    assert {t.number: t.finished_at for t in tb.load_study("rings-kill", url).trials()} == first_runs
    names = [s.name for s in tb.open_storage(url).list_studies()]
    assert names.count("rings-kill-n2") == 1 and "rings-kill-n2-2" not in names  # the round was resumed, not made again
    assert tb.load_study("rings-kill-n2", url).counts()["pending"] == 0


def test_a_budget_below_the_first_study_is_refused_in_one_line_and_stores_nothing(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(optimizers("rings-small", trials=16)))
    url = f"sqlite:///{tmp_path / 's.db'}"
    out = run_cli("pursue", str(spec), "--budget", "8", "--storage", url, cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "--budget" in out.stderr
    bad = run_cli("pursue", str(spec), "--budget", "0", "--storage", url, cwd=tmp_path)
    assert bad.returncode == 2 and "--budget" in bad.stderr
    assert not (tmp_path / "s.db").exists() or tb.open_storage(url).list_studies() == []
