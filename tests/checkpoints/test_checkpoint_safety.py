"""Checkpoint files never run code, and a copied store never shares checkpoints with its original.

The attack: a pickle whose ``__reduce__`` runs a command, placed as a trial's latest ``.ckpt`` in a shared
checkpoint folder (claiming another store, claiming this one, or with no header at all), then the trial is
resumed by a real worker process. Each payload would create a marker file if it ever ran.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tunebook as tb
from conftest import ROOT
from tunebook.checkpoints import (
    MAGIC,
    CheckpointManager,
    CheckpointMismatch,
    CheckpointUnsafe,
    atomic_save,
    read,
)

FAULTY = f"{ROOT / 'tests' / '_faulty.py'}"


class Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Custom:
    """A user's own object in a checkpoint (legitimate: loads when the store signed the file)."""

    def __init__(self, x: int) -> None:
        self.x = x


def env() -> dict[str, str]:
    tests = str(ROOT / "tests")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), tests, os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1"}


def worker(url: str, ckpt: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunebook", "worker", "--storage", url, "--checkpoint-dir", str(ckpt)],
                          env={**env(), **extra}, capture_output=True, text=True, timeout=300)


def tagged_study(url: str, tag: float, steps: int = 6) -> tb.Study:
    space = tb.SearchSpace(nuisance={"lr": tb.Float(0.1, 0.2)}, fixed={"tag": tag})
    return tb.create_study("same", space=space, objective=("val/error", "min"), trials=1, max_train_steps=steps,
                           storage=url, seed=1, train=f"{FAULTY}:tagged")


def v2_file(state_bytes: bytes, header: dict) -> bytes:
    head = json.dumps({"format": 2, "size": len(state_bytes), **header}).encode()
    return MAGIC + len(head).to_bytes(4, "big") + head + state_bytes


def crashed_trial(tmp_path: Path):
    """A study whose only trial stopped after its checkpoint at step 4 (a real worker, os._exit)."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    study = tagged_study(url, 1.0)
    ckpt = tmp_path / "ckpt"
    crash = worker(url, ckpt, TB_EXIT_AT="4")
    assert crash.returncode == 3, crash.stderr
    (trial,) = study.trials()
    latest = max(study.storage.get_checkpoints(trial.id), key=lambda c: c.step)
    assert latest.step == 4
    return study, trial, Path(latest.path), url, ckpt


@pytest.mark.parametrize("shape", ["plain pickle", "header of this store, unsigned", "header of this store, forged mac",
                                   "header of another store", "torch zip, no header"])
def test_a_crafted_checkpoint_never_runs_code_on_resume(tmp_path, shape):
    study, trial, latest, url, ckpt = crashed_trial(tmp_path)
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"tag": 1.0, "step": 4, "x": Payload(marker)})
    mine = {"store_id": study.storage.store_id, "trial_id": trial.id, "step": 4, "codec": "pickle"}
    if shape == "plain pickle":
        data = evil
    elif shape == "header of this store, unsigned":
        data = v2_file(evil, {**mine, "mac": None})
    elif shape == "header of this store, forged mac":
        data = v2_file(evil, {**mine, "mac": "00" * 32})
    elif shape == "header of another store":
        data = v2_file(evil, {**mine, "store_id": "f" * 32, "mac": "00" * 32})
    else:
        buffer = io.BytesIO()
        torch.save({"tag": 1.0, "step": 4, "x": Payload(marker)}, buffer)
        data = buffer.getvalue()
    latest.write_bytes(data)

    resume = worker(url, ckpt)
    assert not marker.exists(), "the checkpoint's payload ran"
    (trial,) = study.trials()
    assert trial.state == "failed"
    line = trial.error.strip().splitlines()[-1]
    assert "refusing to load it" in line and str(latest) in line
    assert latest.exists()  # refused, not deleted as if it were corrupt
    assert resume.returncode in (0, 1)


def test_a_file_signed_by_this_store_loads_any_object_and_an_unsigned_one_only_plain_data(tmp_path):
    study = tagged_study(f"sqlite:///{tmp_path / 'a.db'}", 1.0)
    key, store = study.storage.checkpoint_key, study.storage.store_id
    assert key and len(key) == 32
    signed, unsigned = tmp_path / "signed.ckpt", tmp_path / "unsigned.ckpt"
    atomic_save({"obj": Custom(7), "w": torch.ones(3)}, signed, store_id=store, trial_id=5, step=1, key=key)
    atomic_save({"obj": Custom(7)}, unsigned, store_id=store, trial_id=5, step=1)
    loaded = read(signed, key=key, store_id=store, trial_id=5)
    assert loaded["state"]["obj"].x == 7 and loaded["signed"] and torch.equal(loaded["state"]["w"], torch.ones(3))
    with pytest.raises(CheckpointUnsafe) as info:
        read(unsigned, key=key, store_id=store, trial_id=5)
    assert "\n" not in str(info.value) and "Custom" in str(info.value)
    # plain data (tensors, NumPy arrays and RNG states, containers) needs no signature
    import numpy as np

    atomic_save({"rng": np.random.get_state(), "w": torch.arange(4), "n": [1, (2.5, "x")]}, unsigned)
    back = read(unsigned)["state"]
    assert torch.equal(back["w"], torch.arange(4)) and back["rng"][0] == "MT19937" and back["n"] == [1, (2.5, "x")]
    # another store's key does not verify it
    with pytest.raises(CheckpointMismatch):
        read(signed, key=b"k" * 32)


def test_an_older_tunebooks_envelope_still_loads_its_tensors(tmp_path):
    path = tmp_path / "old.ckpt"
    with open(path, "wb") as f:  # how the previous version wrote its files
        torch.save({"__tunebook_checkpoint__": 1, "store_id": "s1", "trial_id": 3, "step": 2,
                    "state": {"w": torch.zeros(2), "step": 2}}, f)
    envelope = read(path, store_id="s1", trial_id=3)
    assert envelope["step"] == 2 and torch.equal(envelope["state"]["w"], torch.zeros(2))
    with pytest.raises(CheckpointMismatch):
        read(path, store_id="s2", trial_id=3)


def test_a_truncated_signed_file_is_corrupt_not_refused(tmp_path):
    """A torn write falls back to the previous checkpoint; only a complete file with a wrong signature is refused."""
    manager = CheckpointManager(tmp_path, keep_best=3, owner=1, store_id="s", key=b"k" * 32)
    manager.save(1, {"step": 1}, 0.5)
    manager.save(2, {"step": 2}, 0.4)
    newest = tmp_path / "step-000000002.ckpt"
    newest.write_bytes(newest.read_bytes()[:-5])
    assert manager.latest().state == {"step": 1}


def test_a_copied_store_gets_its_own_id_and_never_restores_the_originals_checkpoints(tmp_path):
    """`cp a.db b.db` with one --checkpoint-dir: each resumes from its own state."""
    study, trial, latest, url, ckpt = crashed_trial(tmp_path)
    original = study.storage.store_id
    study.storage.close()  # its last connection folds the WAL into a.db: a copy of a.db alone is whole
    shutil.copy(tmp_path / "a.db", tmp_path / "b.db")
    from tunebook.storage.sql import SQLStorage

    said: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("tunebook").addHandler(handler)
    try:
        copy = SQLStorage(f"sqlite:///{tmp_path / 'b.db'}")
    finally:
        logging.getLogger("tunebook").removeHandler(handler)
    assert copy.store_id != original and copy.checkpoint_key != study.storage.checkpoint_key
    assert len(said) == 1 and "is a copy of store" in said[0] and original in said[0] and "\n" not in said[0]
    again = SQLStorage(url)  # the original keeps its identity
    assert again.store_id == original
    assert SQLStorage(f"sqlite:///{tmp_path / 'b.db'}").store_id == copy.store_id  # made once, then kept
    # a moved store (same file, new path) keeps its id
    os.rename(tmp_path / "b.db", tmp_path / "c.db")
    for suffix in ("-wal", "-shm"):
        if (tmp_path / f"b.db{suffix}").exists():
            os.rename(tmp_path / f"b.db{suffix}", tmp_path / f"c.db{suffix}")
    assert SQLStorage(f"sqlite:///{tmp_path / 'c.db'}").store_id == copy.store_id

    resume = worker(url, ckpt)  # the original resumes from its own checkpoint at step 4
    assert resume.returncode == 0, resume.stderr
    (done,) = study.trials()
    restored = dict(study.metrics(done))["restored_from"]
    assert restored == [(5, 4.0)]
