"""Multi-process trials: each trial runs as N rank processes, like ``torchrun --nproc-per-node N``.

``tunebook run --nproc-per-trial N``, ``tunebook worker --nproc-per-trial N``
and ``tb.run(study, train, nproc_per_trial=N)``: the worker claims a trial,
then starts N processes (``spawn``) that each call ``train(trial)``. The worker
itself stays the trial's owner: it heartbeats while the ranks run and records
the outcome once they have ended (:func:`run_trial_ranks`).

**The environment.** Each rank gets torch.distributed's variables, as torchrun
sets them: ``RANK``, ``LOCAL_RANK`` (the same, one host), ``WORLD_SIZE`` and
``LOCAL_WORLD_SIZE`` (N), ``GROUP_RANK``/``ROLE_RANK``..., ``MASTER_ADDR=127.0.0.1``,
``MASTER_PORT``, ``TORCHELASTIC_RUN_ID``, ``TORCHELASTIC_RESTART_COUNT``. As
with torchrun, the rendezvous store is hosted by the launching process: the
worker binds a ``TCPStore`` on port 0 (the port the kernel gives cannot be taken
by anyone else before the ranks connect: no race) and sets
``TORCHELASTIC_USE_AGENT_STORE=True``, so ``torch.distributed.init_process_group``
with ``env://`` (the default) connects every rank to it. Without torch in the
worker, a free port is chosen by binding port 0 and released (then a race with
another program is possible, if unlikely). Lightning sees a torchelastic launch
(``TorchElasticEnvironment``): it starts no processes of its own; give its
Trainer ``devices=N, num_nodes=1, strategy="ddp"``.

**Devices and threads.** Every rank sees the worker's devices
(``CUDA_VISIBLE_DEVICES``, e.g. ``devices=[0, 1, 2, 3]`` with two workers of two
ranks: worker 0 sees ``0,1``, worker 1 sees ``2,3``) and uses the one at index
``LOCAL_RANK`` (``torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))``; Lightning
does this itself), as under torchrun. The worker's CPU threads
(``OMP_NUM_THREADS``, else the core count) are divided among its ranks.

**The trial on every rank.** Every rank holds the same trial: the same
``params``, ``seed``, ``number``, ``attempt``, ``max_train_steps`` and the same
``restore()`` (the latest checkpoint when the trial was claimed; ranks other
than 0 keep its file open, so a newer checkpoint written meanwhile changes
nothing). Rank 0 holds a real :class:`~tunebook.trial.Trial`: it writes metrics,
checkpoints and the extra writers. On the other ranks (:class:`ReplicaTrial`)
``log`` and ``checkpoint`` write nothing.

**Stopping.** When rank 0's trial must stop (NaN/Inf, an ``infeasible_if`` rule,
a value that is no number, a lost claim), rank 0 raises a stop flag (a file in
the trial's rendezvous folder); the other ranks see it at their next ``log``
(which raises :class:`~tunebook.errors.TrialInfeasible`, as on rank 0), ``flush``
or ``should_stop``. Latency: rank 0 learns of a bad value at its writer's next
flush (``flush_interval``, 1 s by default); the other ranks look for the flag at
most every 50 ms, so they stop at a ``log`` call at most 50 ms after it is raised.
A rank blocked in a collective meanwhile ends when its peers go (gloo raises at
once), else it is terminated ``RANK_GRACE`` seconds after rank 0 ended. The
Lightning callback makes the ranks agree on stopping through an all-reduce.

**How a trial ends** (the worker decides, from each rank's report and exit):

- rank 0 returned: ``completed`` (or ``failed`` if the objective was never logged),
  or ``infeasible`` if its trial turned infeasible or ran out of memory; the other
  ranks get ``RANK_GRACE`` seconds to end, then are terminated;
- a rank died (killed by a signal, or exited without reporting): the other ranks are
  terminated and the trial is re-queued like a dead worker's (``lost_workers + 1``;
  resumed from its latest checkpoint; failed after ``max_lost_workers``);
- a rank raised: ``failed`` with that rank's traceback (the first rank that raised:
  its peers' errors are consequences), or ``infeasible`` for out of memory;
- Ctrl-C/SIGTERM: forwarded to the ranks; the trial goes back to ``pending``.

Hook points: :func:`tunebook.execution.loop.worker_loop` calls
:func:`run_trial_ranks` instead of :func:`~tunebook.execution.loop.run_trial` when
``nproc_per_trial > 1``. Not supported by the Ray executor.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import pickle
import shutil
import signal
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_for
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from tunebook.checkpoints import Checkpoint, checkpoint_dir, read_open, select_kept
from tunebook.errors import SpecError, TrialInfeasible, TunebookError, exception_line
from tunebook.execution.loop import end_with_parent, install_worker_signals, make_writers, trial_info
from tunebook.execution.outcome import (
    CLAIM_LOST, DIED, INFRASTRUCTURE, INTERRUPTED, STOPPED, Outcome, RankStopped, Recorded, WorkerStop, outcome_of,
    record_outcome, run_training,
)
from tunebook.storage.base import COMPLETED, FAILED, INFEASIBLE, CheckpointRecord, TrialRecord
from tunebook.trial import Heartbeat, Trial, TrialIdentity, as_step

if TYPE_CHECKING:
    from tunebook.study import Study
    from tunebook.writers import WriterFactory

log = logging.getLogger("tunebook.execution")

#: Seconds the other ranks get to end once rank 0 has ended; then they are terminated.
RANK_GRACE = 30.0
#: Seconds a terminated (or interrupted) rank gets to write its last metrics before it is killed.
STOP_GRACE = 10.0
#: Rank 0 leaves heartbeats to the worker (which lives as long as the ranks do).
_NO_HEARTBEAT = 24 * 3600.0


def check_nproc(value: Any) -> int:
    """``nproc_per_trial`` as a positive int, or a one-line :class:`SpecError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError("nproc_per_trial", f"expected a positive integer, got {value!r}",
                        "e.g. --nproc-per-trial 2 (one process per device)")
    return value


# --- the stop flag -----------------------------------------------------------------------


class StopFlag:
    """Rank 0 raises it when its trial must stop; the other ranks read it.

    A file: readers look for it at most every ``poll`` seconds (a ``stat``), so a
    ``log`` call on a rank other than 0 mostly costs one clock read.
    """

    def __init__(self, path: str | os.PathLike[str], poll: float = 0.05) -> None:
        self.path = str(path)
        self.poll = poll
        self._next = 0.0
        self._seen: tuple[str, str] | None = None

    def set(self, kind: str, reason: str) -> None:
        """``kind``: "infeasible" (data) or "stop" (rank 0 failed: a bad value, a lost claim)."""
        if os.path.exists(self.path):
            return
        _write_json(self.path, {"kind": kind, "reason": reason})

    def is_set(self) -> bool:
        if self._seen is not None:
            return True
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.poll
        return self.read() is not None

    def read(self) -> tuple[str, str] | None:
        if self._seen is None and os.path.exists(self.path):
            data = json.loads(Path(self.path).read_text())
            self._seen = (data["kind"], data["reason"])
        return self._seen


def _write_json(path: str | os.PathLike[str], data: Any) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


# --- the trial on each rank --------------------------------------------------------------


class WritingRankTrial(Trial):
    """Rank 0's trial: a :class:`~tunebook.trial.Trial` that also raises the stop flag for the other ranks."""

    def __init__(self, *args: Any, flag: StopFlag, world_size: int, **kwargs: Any) -> None:
        self._flag = flag  # before Trial.__init__ starts the threads that may call _stop
        self.rank, self.local_rank, self.world_size = 0, 0, world_size
        super().__init__(*args, **kwargs)

    def _stop(self, cause: BaseException) -> None:
        first = self._halt is None
        super()._stop(cause)
        if first:
            kind = "infeasible" if isinstance(cause, TrialInfeasible) else "stop"
            try:
                self._flag.set(kind, exception_line(cause))
            except OSError:  # the folder is gone: the worker is ending the trial anyway
                log.warning("could not raise the stop flag of trial #%d", self.number, exc_info=True)


def _load_open(f: Any, trial: "ReplicaTrial", path: str) -> Any:
    """A checkpoint's state from an open file, checked as rank 0 checks it (see :func:`tunebook.checkpoints.read_open`)."""
    storage = trial.study.storage
    return read_open(f, path, key=storage.checkpoint_key, store_id=storage.store_id, trial_id=trial.id)["state"]


class ReplicaTrial(TrialIdentity):
    """The trial as ranks 1..N-1 see it: the same values as rank 0's; writes nothing.

    ``log``, ``flush`` and ``checkpoint`` only check the stop flag (``log`` raises
    :class:`TrialInfeasible` once rank 0's trial is infeasible, like rank 0's own
    ``log``); ``checkpoint`` returns the path rank 0 writes for that step.
    ``restore()`` returns the checkpoint rank 0 resumes from.
    """

    def __init__(
        self,
        study: Study,
        record: TrialRecord,
        checkpoint_root: str | os.PathLike[str],
        checkpoints: Sequence[CheckpointRecord],
        flag: StopFlag,
        rank: int,
        world_size: int,
    ) -> None:
        super().__init__(study, record)
        self.rank, self.local_rank, self.world_size = rank, rank, world_size
        self._flag = flag
        self._kept = list(checkpoints)
        # rank 0's folder: the same store-keyed path its CheckpointManager writes in
        self._directory = checkpoint_dir(checkpoint_root, study.storage.store_id, study.name, record.number)
        self._latest: tuple[CheckpointRecord, Any] | None = None
        if self._kept:
            latest = max(self._kept, key=lambda c: c.step)
            try:  # held open: rank 0 may delete the file once it writes a newer checkpoint
                self._latest = (latest, open(latest.path, "rb"))  # noqa: SIM115
            except FileNotFoundError:
                pass
        self._closed = False

    def _raise_stop(self) -> None:
        kind, reason = self._flag.read() or ("stop", "rank 0 stopped the trial")
        if kind == "infeasible":
            raise TrialInfeasible(reason)
        raise RankStopped(f"rank 0 stopped the trial: {reason}")

    def log(self, step: int, **metrics: Any) -> None:
        """Nothing is written on this rank; raises once rank 0's trial has stopped."""
        if type(step) is not int:
            as_step(step)
        if self._flag.is_set():
            self._raise_stop()

    def flush(self) -> None:
        if self._flag.is_set():
            self._raise_stop()

    @property
    def should_stop(self) -> bool:
        return self._flag.is_set()

    def checkpoint(self, step: int, state: Any) -> str:
        """Writes nothing (rank 0 writes); returns the path of rank 0's checkpoint at ``step``."""
        step = as_step(step)
        if self._flag.is_set():
            self._raise_stop()
        return str(self._directory / f"step-{step:09d}.ckpt")

    def restore(self) -> Checkpoint | None:
        """The checkpoint rank 0 resumes from (the latest when the trial was claimed), or None."""
        if self._latest is None:
            return None
        record, f = self._latest
        return Checkpoint(record.step, _load_open(f, self, record.path), record.value, record.path)

    def best_checkpoint(self) -> Checkpoint | None:
        """The best checkpoint kept when the trial was claimed (None if rank 0 deleted it since)."""
        scored = [c for c in select_kept(self._kept, 1, self.study.objective[1]) if c.value is not None]
        if not scored or not Path(scored[0].path).exists():
            return None
        with open(scored[0].path, "rb") as f:
            return Checkpoint(scored[0].step, _load_open(f, self, scored[0].path), scored[0].value, scored[0].path)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._latest is not None:
            self._latest[1].close()

    def end(self, reason: str) -> None:
        """Rank 0 stores why the training ended early (its :meth:`~tunebook.trial.Trial.end`)."""

    def close_writers(self, summary: Any) -> None:
        """Rank 0 tells the writers how the trial ended."""

    def __enter__(self) -> "ReplicaTrial":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def infeasible_reason(self) -> str | None:
        seen = self._flag.read()
        return seen[1] if seen and seen[0] == "infeasible" else None

    @property
    def failure_reason(self) -> str | None:
        seen = self._flag.read()
        return seen[1] if seen and seen[0] != "infeasible" else None

    def __repr__(self) -> str:
        return f"ReplicaTrial(study={self.study.name!r}, number={self.number}, rank={self.rank}, params={self.params!r})"


# --- a rank process -------------------------------------------------------------------------


@dataclass(frozen=True)
class RankSpec:
    """What a rank process is given (pickled to it)."""

    storage_url: str
    study_name: str
    record: TrialRecord
    checkpoints: tuple[CheckpointRecord, ...]
    worker_id: str
    checkpoint_root: str
    flush_interval: float
    folder: str
    world_size: int
    parent_pid: int


#: A rank's report: its outcome's kind as the status :func:`decide` reads.
_STATUS = {COMPLETED: "ok", FAILED: "error", INFEASIBLE: "infeasible", INTERRUPTED: "interrupted",
           CLAIM_LOST: "lost", INFRASTRUCTURE: "unavailable", STOPPED: "stopped", "lost-worker": "died", DIED: "died"}
_KIND = {"ok": COMPLETED, "error": FAILED, "infeasible": INFEASIBLE, "oom": INFEASIBLE, "interrupted": INTERRUPTED,
         "lost": CLAIM_LOST, "unavailable": INFRASTRUCTURE, "stopped": STOPPED, "died": DIED}


def rank_report(outcome: Outcome, **extra: Any) -> dict[str, Any]:
    """What a rank writes for the worker (``status``, ``reason``, ``traceback``, and ``extra``)."""
    return {"status": _STATUS[outcome.kind], "reason": outcome.reason, "traceback": outcome.error,
            "signal": outcome.signal, **extra}


def _build_trial(spec: RankSpec, rank: int, flag: StopFlag, writers: Sequence[WriterFactory]) -> tuple[Any, Any, Any]:
    """This rank's storage, study and trial (rank 0: a writing trial with the extra writers)."""
    from tunebook.storage import open_storage
    from tunebook.study import load_study

    storage = open_storage(spec.storage_url)
    study = load_study(spec.study_name, storage)
    if rank == 0:
        extra = make_writers(writers, trial_info(study, spec.record)) if writers else []
        trial = WritingRankTrial(
            study, spec.record, storage, spec.worker_id, spec.checkpoint_root, spec.flush_interval,
            writers=extra, heartbeat_interval=_NO_HEARTBEAT, flag=flag, world_size=spec.world_size,
        )
    else:
        trial = ReplicaTrial(study, spec.record, spec.checkpoint_root, spec.checkpoints, flag, rank, spec.world_size)
    return storage, study, trial


def _rank_main(spec: RankSpec, rank: int, train: Callable[[Any], Any], writers: Sequence[WriterFactory]) -> None:
    """The entry of each rank process: build this rank's trial, run ``train``, report how it ended."""
    end_with_parent(spec.parent_pid, signal.SIGKILL)  # a rank never outlives its worker
    install_worker_signals()
    flag = StopFlag(Path(spec.folder) / "stop")
    trial: Any = None
    try:
        storage, study, trial = _build_trial(spec, rank, flag, writers)
    except BaseException as exc:  # noqa: BLE001 - reported to the worker, which records it
        stopped = isinstance(exc, (KeyboardInterrupt, SystemExit, WorkerStop))
        outcome = Outcome(INTERRUPTED) if stopped else outcome_of(exc, None)
    else:
        outcome = run_training(train, trial, trial.close)
    result = rank_report(outcome, rank=rank, time=time.time())
    if rank == 0 and isinstance(trial, Trial):
        params = trial.params
        result["params_used"] = params.usage(resumed=spec.record.attempts > 1) if hasattr(params, "usage") else None
        result["objective_logged"] = trial.objective_logged
        result["ended"] = trial.ended()
        if trial.extra_writers:
            _end_writers(trial, storage, study, outcome)  # before the report: the worker ends the ranks once it has them
    _write_json(Path(spec.folder) / f"result-{rank}.json", result)


def _end_writers(trial: Trial, storage: Any, study: Study, outcome: Outcome) -> None:
    """Tell rank 0's extra writers how the trial ended, as rank 0 saw it (the worker records the outcome)."""
    summary: dict[str, Any] = {"state": None, "value": None, "best_step": None, "infeasible_reason": None,
                               "error": None}
    if outcome.kind == COMPLETED:
        best = storage.best_metric(trial.id, *study.objective)
        if best is None:
            summary.update(state=FAILED, error=f"the objective {study.objective[0]!r} was never logged")
        else:
            summary.update(state=COMPLETED, value=best[0], best_step=best[1])
    elif outcome.kind == INFEASIBLE:
        summary.update(state=INFEASIBLE, infeasible_reason=outcome.reason)
    elif outcome.kind == FAILED:
        summary.update(state=FAILED, error=outcome.error)
    else:
        summary.update(state="pending")
    try:
        trial.close_writers(summary)
    except Exception:  # noqa: BLE001 - a writer's fault is never the trial's
        log.warning("a metric writer failed at the end of trial #%d", trial.number, exc_info=True)


# --- the worker's side ------------------------------------------------------------------------


@dataclass(frozen=True)
class RankEnd:
    """How one rank ended: its report, or ``died`` when it left none (a signal, a crash)."""

    rank: int
    status: str
    reason: str = ""
    traceback: str = ""
    time: float = 0.0
    signal: str = ""
    #: rank 0 only: which hyperparameters its function read, and whether it logged the objective
    params_used: dict[str, Any] | None = None
    objective_logged: bool | None = None
    ended: dict[str, Any] | None = None

    def outcome(self, nproc: int) -> Outcome:
        """This end as the trial's :class:`~tunebook.execution.outcome.Outcome`."""
        kind = _KIND.get(self.status, FAILED)
        if kind == FAILED:
            return Outcome(FAILED, self.reason, f"rank {self.rank} of {nproc} raised:\n{self.traceback or self.reason}")
        if kind == DIED:
            return Outcome(DIED, lost_process(self.reason))
        return Outcome(kind, self.reason, signal=self.signal)


def read_end(folder: str | os.PathLike[str], rank: int, exitcode: int | None) -> RankEnd:
    path = Path(folder) / f"result-{rank}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        if exitcode is not None and exitcode < 0:
            try:
                how = f"killed by {signal.Signals(-exitcode).name}"
            except ValueError:
                how = f"killed by signal {-exitcode}"
        else:
            how = f"exited with code {exitcode} without reporting"
        return RankEnd(rank, "died", f"rank {rank} {how}")
    return RankEnd(rank, data["status"], data.get("reason") or "", data.get("traceback") or "", data.get("time", 0.0),
                   data.get("signal") or "", data.get("params_used"), data.get("objective_logged"), data.get("ended"))


#: Rank 0 ended the training itself: its outcome is the trial's (unless a rank raised).
_RANK0_FINAL = ("ok", "infeasible", "oom")


def decide(ends: dict[int, RankEnd]) -> RankEnd | None:
    """The end that decides the trial's outcome, from the ranks that ended so far; None: wait for more.

    Rank 0 returned (or stopped an infeasible trial): its end, unless a rank
    raised (then the first that raised). Otherwise, by precedence: a lost claim,
    an unavailable store, an interruption, a rank that died (the errors of its
    peers are consequences), then the first rank that raised or ran out of
    memory or stopped as infeasible. Ranks other than 0 that returned wait for rank 0.
    """
    raised = sorted((e for e in ends.values() if e.status == "error"), key=lambda e: e.time)
    first = ends.get(0)
    if first is not None and first.status in _RANK0_FINAL:
        return raised[0] if raised else first
    for status in ("lost", "unavailable", "interrupted", "died"):
        hit = [e for e in ends.values() if e.status == status]
        if hit:
            return min(hit, key=lambda e: e.rank)
    stopped = sorted((e for e in ends.values() if e.status in ("error", "oom", "infeasible")), key=lambda e: e.time)
    if stopped:
        return stopped[0]
    if first is not None:  # rank 0 ended otherwise ("stopped" is not a rank-0 status): decide by it
        return first
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Rendezvous:
    """The ranks' ``MASTER_ADDR``/``MASTER_PORT``: a TCPStore hosted here (torchrun's agent store) when torch is there."""

    def __init__(self, world_size: int) -> None:
        self.store: Any = None
        try:
            from datetime import timedelta

            from torch.distributed import TCPStore
        except ImportError:
            self.port = _free_port()
            return
        self.store = TCPStore("127.0.0.1", 0, world_size, True, timedelta(seconds=300), wait_for_workers=False)
        self.port = int(self.store.port)

    def close(self) -> None:
        self.store = None  # the server stops with its last reference


def rank_environment(rank: int, world_size: int, rendezvous: Rendezvous, run_id: str, threads: int) -> dict[str, str]:
    """torch.distributed's variables for ``rank`` (those torchrun sets), and its CPU thread share."""
    env = {
        "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size), "LOCAL_WORLD_SIZE": str(world_size),
        "GROUP_RANK": "0", "GROUP_WORLD_SIZE": "1", "ROLE_RANK": str(rank), "ROLE_WORLD_SIZE": str(world_size),
        "ROLE_NAME": "default", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(rendezvous.port),
        "TORCHELASTIC_RUN_ID": run_id, "TORCHELASTIC_RESTART_COUNT": "0", "TORCHELASTIC_MAX_RESTARTS": "0",
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
    }
    if rendezvous.store is not None:
        env["TORCHELASTIC_USE_AGENT_STORE"] = "True"
    return env


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in os.environ while a spawned rank starts (it inherits them before importing anything)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _threads_per_rank(world_size: int) -> int:
    try:
        total = int(os.environ.get("OMP_NUM_THREADS") or 0)
    except ValueError:
        total = 0
    return max(1, (total or os.cpu_count() or 1) // world_size)


def _stop_ranks(procs: dict[int, Any], sig: int, grace: float) -> None:
    """Send ``sig`` to the ranks still alive, wait ``grace`` seconds, then SIGKILL what is left."""
    for p in procs.values():
        if p.is_alive():
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for p in procs.values():
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs.values():
        if p.is_alive():
            p.kill()
            p.join()


def _supervise(procs: dict[int, Any], folder: str, lost: threading.Event, rank_grace: float) -> RankEnd | None:
    """Wait for the ranks until their end is decided (None: the claim was lost); returns the deciding end.

    A rank has ended when it exited or wrote its report (a rank stuck in its
    interpreter's shutdown after reporting is terminated with the others).
    """
    ends: dict[int, RankEnd] = {}
    grace_end: float | None = None
    verdict: RankEnd | None = None
    while len(ends) < len(procs):
        timeout = 0.5 if grace_end is None else max(0.0, min(0.5, grace_end - time.monotonic()))
        waiting = [p.sentinel for rank, p in procs.items() if rank not in ends and p.exitcode is None]
        if waiting:
            wait_for(waiting, timeout)
        for rank, p in procs.items():
            if rank in ends:
                continue
            if p.exitcode is not None:
                ends[rank] = read_end(folder, rank, p.exitcode)
            elif os.path.exists(os.path.join(folder, f"result-{rank}.json")):
                ends[rank] = read_end(folder, rank, None)
        if lost.is_set():
            return None
        verdict = decide(ends)
        if verdict is None:
            continue
        if 0 in ends and ends[0].status in _RANK0_FINAL and verdict.status != "error":
            # Rank 0 is done; the others normally end with it: they get rank_grace seconds.
            grace_end = grace_end if grace_end is not None else time.monotonic() + rank_grace
            if time.monotonic() < grace_end:
                continue
        break
    return verdict


def lost_process(reason: str) -> str:
    """The cause a trial that lost one of its rank processes is re-queued (or failed) with."""
    return f"a process of the trial died ({reason})"


def run_trial_ranks(
    study: Study,
    record: TrialRecord,
    train: Callable[[Any], Any],
    worker_id: str,
    checkpoint_root: str | os.PathLike[str],
    flush_interval: float = 1.0,
    writers: Sequence[WriterFactory] = (),
    *,
    nproc: int,
    max_lost_workers: int = 3,
    rank_grace: float = RANK_GRACE,
    stop_grace: float = STOP_GRACE,
) -> str:
    """Run one claimed trial as ``nproc`` rank processes; returns its state ("lost": taken over
    elsewhere; "pending" or "failed" when a rank died). See the module docstring."""
    storage = study.storage
    ctx = mp.get_context("spawn")
    folder = tempfile.mkdtemp(prefix=f"tunebook-trial-{record.id}-")
    spec = RankSpec(
        storage_url=storage.url, study_name=study.name, record=record,
        checkpoints=tuple(storage.get_checkpoints(record.id)), worker_id=worker_id,
        checkpoint_root=str(checkpoint_root), flush_interval=flush_interval, folder=folder, world_size=nproc,
        parent_pid=os.getpid(),
    )
    lost = threading.Event()
    heartbeat = Heartbeat(lambda: storage.heartbeat(record.id, worker_id), min(flush_interval, 10.0),
                          lambda exc: lost.set(), name=f"tunebook-heartbeat-{record.id}")
    rendezvous: Rendezvous | None = None
    procs: dict[int, Any] = {}
    verdict: RankEnd | None = None
    try:
        try:
            rendezvous = Rendezvous(nproc)
            threads = _threads_per_rank(nproc)
            run_id = f"tunebook-{study.name}-{record.number}-{record.attempts}"
            for rank in range(nproc):
                proc = ctx.Process(target=_rank_main, args=(spec, rank, train, tuple(writers)),
                                   name=f"tunebook-trial-{record.number}-rank-{rank}")
                with _environment(rank_environment(rank, nproc, rendezvous, run_id, threads)):
                    try:
                        proc.start()
                    except (pickle.PicklingError, AttributeError, TypeError) as exc:
                        raise SpecError("train", f"cannot send the training function to the ranks: {exc}",
                                        "define train at the top level of an importable module") from None
                procs[rank] = proc
            verdict = _supervise(procs, folder, lost, rank_grace)
        except BaseException as exc:
            # Ctrl-C, SIGTERM (WorkerStop) or a launch error: the ranks stop (rank 0 writes its last
            # metrics), then the trial goes back to pending, as a single-process trial would.
            _stop_ranks(procs, signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM, stop_grace)
            _release(storage, record, worker_id)
            raise
        finally:
            _stop_ranks(procs, signal.SIGTERM, stop_grace)  # those still running once the outcome is decided
    finally:
        heartbeat.close()
        if rendezvous is not None:
            rendezvous.close()
        shutil.rmtree(folder, ignore_errors=True)
    return _record(study, record, worker_id, verdict, nproc, max_lost_workers)


def _release(storage: Any, record: TrialRecord, worker_id: str) -> None:
    try:
        storage.release_trial(record.id, worker_id)
    except TunebookError:  # lost, or the store is away: it turns stale and comes back
        pass


def _record(study: Study, record: TrialRecord, worker_id: str, end: RankEnd | None, nproc: int,
            max_lost_workers: int) -> str:
    """Store the trial's outcome from the deciding rank end, through the one recorder."""
    if end is None:
        return CLAIM_LOST
    outcome = end.outcome(nproc)
    first = end if end.rank == 0 else None
    recorded: Recorded = record_outcome(
        study, record, worker_id, outcome, params_used=first.params_used if first else None,
        objective_logged=first.objective_logged if first else None, ended=first.ended if first else None,
        max_lost_workers=max_lost_workers,
        missing_note=" (rank 0 writes the metrics)",
    )
    if recorded.raises is not None:
        raise recorded.raises
    return recorded.state


__all__ = [
    "RANK_GRACE", "STOP_GRACE", "RankEnd", "RankStopped", "ReplicaTrial", "Rendezvous", "StopFlag", "WritingRankTrial",
    "check_nproc", "decide", "rank_environment", "read_end", "run_trial_ranks",
]


def ranks_runner(nproc: int, max_lost_workers: int = 3) -> Callable[..., str] | None:
    """The worker loop's ``runner`` for ``nproc`` processes per trial (None: one process, the default)."""
    if nproc <= 1:
        return None
    import functools

    return functools.partial(run_trial_ranks, nproc=nproc, max_lost_workers=max_lost_workers)
