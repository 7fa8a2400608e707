"""`tunebook next` and `tunebook pursue` on a study in which no trial learned (the `nothing_learned` warning).

The truth, measured first (seeded grid pilot of the rings workload, ``_tiny.pilot``; see _next_cases.py): Adam
learns from about 3e-3 (best val/loss 0.44 at 100 steps, 0.14 at 2e-2, against 0.69 untrained); a range of
1e-7..1e-6 is four decades too low. Before the check existed, every trial's flat curve drifting down by a few
millionths read as "still improving" and "train longer", and the loop doubled max_train_steps.
"""

from __future__ import annotations

import pytest
import yaml
from _next_cases import TRAIN, build, lr

import _tiny
import tunebook as tb
from tunebook.procedures.next import MOVE_UP_DECADES, next_study

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("next-loop")]

TOO_LOW = (1e-7, 1e-6)


def too_low(name: str, trials: int = 6) -> dict:
    return {"study": name, "goal": "Adam on the rings", "train": TRAIN, "objective": {"metric": "val/loss", "mode": "min"},
            "trials": trials, "max_train_steps": 100, "replicates": 0,
            "search_space": {"nuisance": lr(*TOO_LOW), "fixed": {"optimizer": "adam", "eval_every": 10}}}


def test_the_pilot_says_the_range_is_far_too_low():
    got = _tiny.pilot("adam", [0.0, TOO_LOW[1], 3e-3], steps=100, seeds=(0, 1))
    untrained, top, learning = (sum(got[r]) / 2 for r in (0.0, TOO_LOW[1], 3e-3))
    assert untrained - learning > 0.2  # Adam learns at 3e-3...
    assert abs(untrained - top) < 0.01 * (untrained - learning)  # ...and the range's top rate learns < 1% of that


def test_next_moves_the_rate_up_instead_of_training_longer(tmp_path):
    study = build(too_low("rings-flat"), f"sqlite:///{tmp_path / 'n.db'}")
    report = tb.analyze(study)
    assert report.warnings()[0].check == "nothing_learned", [f.check for f in report.warnings()]
    assert not [f for f in report.warnings() if f.check in ("still_improving", "max_train_steps")]
    assert not report.answer.fair and "learned" in report.answer.reasons[0]

    proposal = next_study(study)
    assert proposal.action == "widen" and proposal.findings == ["nothing_learned"], proposal.lines()
    assert proposal.spec["max_train_steps"] == 100  # not longer
    (change,) = proposal.changes
    assert change.field == "search_space.nuisance.learning_rate"
    new = proposal.spec["search_space"]["nuisance"]["learning_rate"]
    assert new["min"] == pytest.approx(TOO_LOW[1]) and new["max"] == pytest.approx(TOO_LOW[1] * 10 ** MOVE_UP_DECADES)
    assert "No trial learned" in change.reason and "moved up" in change.reason


def test_next_without_a_rate_to_move_says_what_to_check_and_proposes_nothing(tmp_path):
    spec = too_low("rings-fixed-rate", trials=6)
    spec["search_space"] = {"scientific": {"optimizer": {"choice": ["adam", "sgd"]}},
                            "fixed": {"learning_rate": 1e-7, "eval_every": 10}}
    study = build(spec, f"sqlite:///{tmp_path / 'f.db'}")
    flat = [f for f in tb.analyze(study).warnings() if f.check == "nothing_learned"]
    assert {f.evidence["group"] for f in flat} == {"optimizer=adam", "optimizer=sgd"}
    proposal = next_study(study)
    assert proposal.action == "fix" and proposal.spec is None, proposal.lines()
    assert "no learning-rate range" in proposal.decision and "pipeline" in proposal.decision
    assert "No longer round" in proposal.decision


def test_pursue_runs_the_moved_range_and_never_lengthens(tmp_path):
    path = tmp_path / "rings-flat.yaml"
    path.write_text(yaml.safe_dump(too_low("rings-flat")))
    url = f"sqlite:///{tmp_path / 'p.db'}"
    lines: list[str] = []
    result = tb.pursue(str(path), budget=12, storage=url, workers=0, log=lines.append)
    first = result.rounds[0]
    assert first.action == "widen" and "no trial learned" in first.decision, "\n".join(lines)
    assert any("[nothing_learned]" in c for c in first.changes)
    assert all(r.action != "budget" for r in result.rounds), [r.decision for r in result.rounds]
    moved = tb.load_study("rings-flat-n2", url)
    assert moved.max_train_steps == 100 and moved.counts()["completed"] == 6
    assert moved.space.nuisance["learning_rate"].low == pytest.approx(TOO_LOW[1])
    assert any(line.startswith("round 1: rings-flat: New study rings-flat-n2: no trial learned") for line in lines)
    # the moved range learned: the second round is not "nothing learned" again
    assert not [f for f in tb.analyze(moved).warnings() if f.check == "nothing_learned"]


def test_pursue_stops_with_the_reason_when_no_rate_can_move(tmp_path):
    spec = too_low("rings-stuck")
    spec["search_space"] = {"scientific": {"optimizer": {"choice": ["adam", "sgd"]}},
                            "fixed": {"learning_rate": 1e-7, "eval_every": 10}}
    path = tmp_path / "rings-stuck.yaml"
    path.write_text(yaml.safe_dump(spec))
    lines: list[str] = []
    result = tb.pursue(str(path), budget=30, storage=f"sqlite:///{tmp_path / 's.db'}", workers=0, log=lines.append)
    assert [r.action for r in result.rounds] == ["fix"] and result.spent == 6
    assert not result.answered and "needs a person" in result.missing and "pipeline" in result.missing
    assert any("No trial learned" in line for line in lines)


def test_only_the_group_that_learned_nothing_gets_its_rate_moved(tmp_path):
    """A shared range of 3e-4..3e-3: Adam learns in it, plain SGD does not (pilot below); SGD's range alone moves
    (the shared range becomes one per optimizer), Adam keeps the old one."""
    adam = _tiny.pilot("adam", [0.0, 3e-3], steps=100, seeds=(0, 1))
    sgd = _tiny.pilot("sgd", [0.0, 3e-3], steps=100, seeds=(0, 1))
    assert sum(adam[0.0]) / 2 - sum(adam[3e-3]) / 2 > 0.1  # Adam learns at the top of the range...
    assert abs(sum(sgd[0.0]) - sum(sgd[3e-3])) / 2 < 0.005  # ...SGD does not move
    spec = too_low("rings-half", trials=12)
    spec["search_space"] = {"scientific": {"optimizer": {"choice": ["adam", "sgd"]}}, "nuisance": lr(3e-4, 3e-3),
                            "fixed": {"eval_every": 10}}
    study = build(spec, f"sqlite:///{tmp_path / 'h.db'}")
    flat = [f for f in tb.analyze(study).warnings() if f.check == "nothing_learned"]
    assert [f.evidence["group"] for f in flat] == ["optimizer=sgd"]
    proposal = next_study(study)
    assert proposal.action == "widen" and proposal.findings == ["nothing_learned"], proposal.lines()
    cond = proposal.spec["search_space"]["conditional"]
    assert cond["optimizer=adam"]["learning_rate"] == {"min": 3e-4, "max": 3e-3, "scale": "log"}
    assert cond["optimizer=sgd"]["learning_rate"]["min"] == pytest.approx(3e-3)
    assert cond["optimizer=sgd"]["learning_rate"]["max"] == pytest.approx(3.0)


def test_pursue_moves_the_rate_up_twice_at_most_then_stops_for_the_pipeline(tmp_path):
    """From 1e-12..1e-11: moved to 1e-11..1e-8, then 1e-8..1e-5, where Adam still learns nothing in 100 steps (the
    pilot below); a third move is not made: two rounds in a row that moved the rate and still nothing learned
    point at the pipeline."""
    got = _tiny.pilot("adam", [0.0, 1e-5, 3e-3], steps=100, seeds=(0, 1))
    untrained, top, learning = (sum(got[r]) / 2 for r in (0.0, 1e-5, 3e-3))
    assert abs(untrained - top) < 0.02 * (untrained - learning)
    spec = too_low("rings-deep")
    spec["search_space"]["nuisance"] = lr(1e-12, 1e-11)
    path = tmp_path / "rings-deep.yaml"
    path.write_text(yaml.safe_dump(spec))
    lines: list[str] = []
    result = tb.pursue(str(path), budget=40, storage=f"sqlite:///{tmp_path / 'd.db'}", workers=0, log=lines.append)
    assert [r.action for r in result.rounds] == ["widen", "widen", "fix"], "\n".join(lines)
    assert result.spent == 18 and not result.answered
    assert "2 round(s) in a row already moved the learning rate up" in result.rounds[-1].decision
    assert "pipeline" in result.missing
