"""Bounded checkpoint disk: what a finished study keeps, `tunebook prune`, and disk use in `status`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import tunebook as tb
from conftest import run_cli
from tunebook.checkpoints import load, prune
from tunebook.errors import SpecError


def train(trial) -> None:
    """The objective falls, then rises (its best at step 3): a trial keeps several checkpoints, its best
    is not its latest. Each trial's level is its lr; the state is 64 KB of weights."""
    lr = trial.params["lr"]
    for step in range(1, trial.max_train_steps + 1):
        value = lr + abs(step - 3) * 0.01
        trial.log(step, loss=value)
        trial.checkpoint(step, {"w": torch.full((16384,), float(step)), "step": step})


def make(url: str, name: str = "disk", trials: int = 8, **kw) -> tb.Study:
    space = tb.SearchSpace(nuisance={"lr": tb.Float(0.1, 0.9)})
    return tb.create_study(name, space=space, objective=("loss", "min"), trials=trials, max_train_steps=6,
                           storage=url, seed=3, keep_checkpoints=2, **kw)


def manifests(study: tb.Study) -> dict[int, list]:
    return {t.number: study.storage.get_checkpoints(t.id) for t in study.trials()}


def files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*.ckpt")}


def test_a_finished_study_keeps_its_top_trials_checkpoints_and_the_others_best(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    study = make(url, keep_top_trials=3)
    tb.run(study, train, workers=0, progress=False)
    ranked = sorted(study.trials(["completed"]), key=lambda t: t.value)
    top = {t.number for t in ranked[:3]}
    kept = manifests(study)
    for number, records in kept.items():
        steps = sorted(c.step for c in records)
        if number in top:
            assert steps == [2, 3, 6], (number, steps)  # its 2 best (3, then 2 before 4) and its latest
        else:
            assert steps == [3], (number, steps)  # its best only
    folder = tmp_path / "tunebook_checkpoints" / study.storage.store_id / "disk"
    named = {Path(c.path) for records in kept.values() for c in records}
    assert files(folder) == named  # no file beyond the manifests
    best = ranked[0]
    (record,) = [c for c in kept[best.number] if c.step == 3]
    assert load(record.path)["step"] == 3  # the best checkpoint survives and loads


def test_keep_top_trials_all_prunes_nothing_and_a_bad_value_is_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    study = make(url, name="everything", trials=3, keep_top_trials="all")
    tb.run(study, train, workers=0, progress=False)
    assert all(sorted(c.step for c in records) == [2, 3, 6] for records in manifests(study).values())
    with pytest.raises(SpecError) as info:
        make(url, name="bad", keep_top_trials=-1)
    assert info.value.field == "keep_top_trials" and "\n" not in str(info.value)
    assert tb.load_study("everything", url).keep_top_trials is None


def test_the_default_policy_leaves_older_studies_hash_alone(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    plain, explicit = make(url, name="p"), make(url, name="q", keep_top_trials=5)
    assert "keep_top_trials" not in plain.spec.to_mapping() and "keep_top_trials" not in explicit.spec.to_mapping()
    assert make(url, name="r", keep_top_trials=2).spec.to_mapping()["keep_top_trials"] == 2


def test_prune_is_a_dry_run_until_apply_and_removes_orphans_but_never_a_resumable_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    study = make(url, keep_top_trials="all")
    tb.run(study, train, workers=0, progress=False)
    folder = tmp_path / "tunebook_checkpoints" / study.storage.store_id / "disk"
    orphan = folder / "trial-00000" / "step-000000099.ckpt"
    orphan.write_bytes(b"left by a killed writer")
    # trial #1 as if interrupted: pending again, its checkpoints needed to resume it
    (one,) = [t for t in study.trials() if t.number == 1]
    with study.storage._write() as conn:  # noqa: SLF001 - a state no public call makes for a finished trial
        conn.exec_driver_sql("UPDATE tb_trials SET state = 'pending' WHERE id = ?", (one.id,))
    before_files, before_manifests = files(folder), manifests(study)

    dry = run_cli("prune", "disk", "--storage", url, "--keep-top", "2", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "would delete" in dry.stdout and "1 files no trial names" in dry.stdout
    assert files(folder) == before_files and manifests(study) == before_manifests  # nothing changed

    done = run_cli("prune", "disk", "--storage", url, "--keep-top", "2", "--apply", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "freed" in done.stdout
    after = manifests(study)
    assert not orphan.exists()
    assert after[1] == before_manifests[1]  # the pending trial keeps everything
    ranked = sorted(study.trials(["completed"]), key=lambda t: t.value)
    for t in ranked[2:]:
        assert [c.step for c in after[t.number]] == [3]
    assert files(folder) == {Path(c.path) for records in after.values() for c in records}

    again = run_cli("prune", "disk", "--storage", url, "--keep-top", "2", cwd=tmp_path)
    assert "nothing to delete" in again.stdout

    bad = run_cli("prune", "disk", "--storage", url, "--keep-top", "-3", cwd=tmp_path)
    assert bad.returncode == 2 and "--keep-top" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_status_shows_the_checkpoint_disk(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    study = make(url, trials=2, keep_top_trials="all")
    tb.run(study, train, workers=0, progress=False)
    used = prune.usage(tmp_path / "tunebook_checkpoints" / study.storage.store_id / "disk")
    assert used.files == 6 and used.trials == 2 and used.bytes > 6 * 16384 * 4
    out = run_cli("status", "disk", "--storage", url, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"checkpoints: {prune.human(used.bytes)} in 6 files of 2 trials" in out.stdout


def test_a_worker_prunes_as_trials_finish(tmp_path):
    """The policy runs in the worker loop (a real `tunebook worker` process), not only in `prune`."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    study = make(url, name="w", keep_top_trials=1, train=f"{Path(__file__).resolve()}:train")
    proc = run_cli("worker", "--storage", url, cwd=tmp_path,
                   env={"PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")])})
    assert proc.returncode == 0, proc.stderr
    kept = manifests(study)
    (best,) = sorted(study.trials(["completed"]), key=lambda t: t.value)[:1]
    assert sorted(c.step for c in kept[best.number]) == [2, 3, 6]
    assert all([c.step for c in kept[n]] == [3] for n in kept if n != best.number)


def negative_checkpoint(trial) -> None:
    trial.log(1, loss=0.5)
    trial.checkpoint(-1, {"w": torch.zeros(2)})


def test_a_negative_checkpoint_step_is_one_line_and_writes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    study = make(url, name="neg", trials=1, replicates=0)
    tb.run(study, negative_checkpoint, workers=0, progress=False)
    (trial,) = study.trials()
    assert trial.state == "failed"
    line = trial.error.strip().splitlines()[-1]
    assert "step" in line and "-1" in line
    assert not list((tmp_path / "tunebook_checkpoints").rglob("*.ckpt")) and not study.storage.get_checkpoints(trial.id)
