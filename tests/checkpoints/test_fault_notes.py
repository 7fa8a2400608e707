"""The note of a trial a worker could not put back after an infrastructure fault survives a full disk.

Before, the worker wrote its note when it gave up: on the disk that was full (the default checkpoint folder
is beside the SQLite store) the write failed and the trial was later counted a lost worker; two workers
giving up at once rewrote one shared file and one note could be lost. Now each worker reserves its note
while there is room and writes it in place.
"""

from __future__ import annotations

import pytest

import tunebook as tb
from _procs import fill, small_disk
from tunebook.checkpoints import fault_notes
from tunebook.execution.loop import release_left_by_faults, worker_id_for


def _study(url: str):
    return tb.create_study("notes", space=tb.SearchSpace(nuisance={"lr": tb.Float(0.1, 0.2)}),
                           objective=("loss", "min"), trials=2, max_train_steps=3, storage=url)


def test_a_reserved_note_is_written_on_a_full_disk_and_puts_the_trial_back(tmp_path):
    with small_disk(tmp_path / "small", "1m") as disk:
        study = _study(f"sqlite:///{tmp_path / 'notes.db'}")
        gone = worker_id_for(2**22 + 4242)  # no such process on this host
        record = study.storage.claim_trial(gone, study.id)
        note = fault_notes.reserve(disk, study.storage.store_id, gone)
        filler = fill(disk, 0)
        with pytest.raises(OSError):  # the disk is full: a new file cannot be written
            (disk / "probe").write_bytes(b"x" * 8192)
        assert note.write(record.id, "infrastructure fault, retried: database or disk is full")
        filler.unlink()
        assert release_left_by_faults(study.storage, disk) == 1
        trial = study.storage.get_trial(record.id)
        assert trial.state == "pending" and trial.lost_workers == 0 and "disk is full" in trial.error
        assert fault_notes.noted(disk, study.storage.store_id) == []


def test_two_workers_giving_up_at_once_both_keep_their_note(tmp_path):
    study = _study(f"sqlite:///{tmp_path / 'notes.db'}")
    workers = [worker_id_for(2**22 + n) for n in (1, 2)]
    records = [study.storage.claim_trial(w, study.id) for w in workers]
    notes = [fault_notes.reserve(tmp_path, study.storage.store_id, w) for w in workers]
    for note, record in zip(notes, records):
        assert note.write(record.id, "infrastructure fault: the store is away")
    assert sorted(m["trial"] for _, m in fault_notes.noted(tmp_path, study.storage.store_id)) == sorted(r.id for r in records)
    assert release_left_by_faults(study.storage, tmp_path) == 2
    assert {t.state for t in study.trials()} == {"pending"}


def test_live_reservations_and_other_stores_notes_are_left_alone_a_dead_workers_reservation_goes(tmp_path):
    import os

    study = _study(f"sqlite:///{tmp_path / 'notes.db'}")
    live = fault_notes.reserve(tmp_path, study.storage.store_id, worker_id_for(os.getpid()))  # this process
    dead = fault_notes.reserve(tmp_path, study.storage.store_id, worker_id_for(2**22 + 7))  # SIGKILLed
    other = fault_notes.reserve(tmp_path, "another-store", worker_id_for(2**22 + 8))
    assert other.write(5, "infrastructure fault")
    assert release_left_by_faults(study.storage, tmp_path) == 0
    assert live.path.exists() and other.path.exists() and not dead.path.exists()
    live.drop_if_blank()
    assert not live.path.exists() and other.path.exists()
