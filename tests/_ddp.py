"""Training functions run by every rank of a multi-process trial (importable by the rank processes).

Each rank appends what it saw to ``$TB_DDP_LOG/rank-<RANK>.jsonl``: the trial's
values, the torch.distributed environment, the step it resumed from, the
checksum of its final parameters, and every file it opened for writing under
the checkpoint folder (a ``sys.addaudithook`` on ``open``).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path

BATCH = 32


def record(kind: str, **values) -> None:
    folder = os.environ.get("TB_DDP_LOG")
    if not folder:
        return
    line = json.dumps({"kind": kind, "pid": os.getpid(), **values}, default=str)
    with open(Path(folder) / f"rank-{os.environ.get('RANK', 'x')}.jsonl", "a") as f:
        f.write(line + "\n")


def watch_writes(root: str) -> None:
    """Record every file this process opens for writing under ``root``."""

    def hook(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            path, mode = os.fsdecode(args[0]), args[1] if len(args) > 1 else "r"
            if path.startswith(root) and isinstance(mode, str) and any(c in mode for c in "wax+"):
                with open(Path(os.environ["TB_DDP_LOG"]) / f"writes-{os.getpid()}.txt", "a") as f:
                    f.write(f"{os.environ.get('RANK')} {path}\n")

    sys.addaudithook(hook)


def checksum(module) -> str:
    digest = hashlib.sha256()
    for p in module.parameters():
        digest.update(p.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def ddp_digits(trial) -> None:
    """A tiny MLP on the digits data under DistributedDataParallel (gloo): each rank trains on its own
    half of each batch; DDP averages the gradients, so the replicas stay identical."""
    import numpy as np
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    from tunebook.workloads import digits

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if os.environ.get("TB_DDP_LOG"):
        watch_writes(os.environ["TB_DDP_CKPT"])
    env = {k: os.environ.get(k) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                                          "MASTER_PORT", "TORCHELASTIC_RUN_ID", "OMP_NUM_THREADS")}
    record("start", number=trial.number, params=trial.params, seed=trial.seed, attempt=trial.attempt,
           max_train_steps=trial.max_train_steps, env=env, threads=torch.get_num_threads())
    dist.init_process_group("gloo")
    torch.manual_seed(trial.seed)
    model = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    opt = torch.optim.SGD(model.parameters(), lr=trial.params["learning_rate"], momentum=0.9)
    start = 0
    restored = trial.restore()
    if restored is not None:
        model.load_state_dict(restored.state["model"])
        opt.load_state_dict(restored.state["optimizer"])
        start = restored.step
    record("resume", step=start, checksum=checksum(model))
    ddp = DistributedDataParallel(model)
    x_tr, y_tr, x_val, y_val = (torch.from_numpy(a) for a in digits.split())
    kill_at = int(os.environ.get("TB_DDP_KILL_STEP", 0))
    for step in range(start + 1, trial.max_train_steps + 1):
        order = np.random.default_rng([trial.seed, step]).permutation(len(x_tr))[: BATCH * world]
        mine = torch.from_numpy(order[rank::world])  # a different half of the batch on each rank
        loss = F.cross_entropy(ddp(x_tr[mine]), y_tr[mine])
        opt.zero_grad()
        loss.backward()
        opt.step()
        trial.log(step, **{"train/loss": loss.detach()})
        if step == start + 1:
            record("first", step=step, loss=float(loss))  # each rank's own half of the batch (a test-side sync)
        if step % 10 == 0:
            with torch.no_grad():
                error = (model(x_val).argmax(-1) != y_val).float().mean()
            trial.log(step, **{"val/error": error})
            trial.checkpoint(step, {"model": model.state_dict(), "optimizer": opt.state_dict()})
        if kill_at and step == kill_at and trial.attempt == 1 and rank == int(os.environ.get("TB_DDP_KILL_RANK", 1)):
            record("killing", step=step)
            os.kill(os.getpid(), signal.SIGKILL)
    record("end", step=trial.max_train_steps, checksum=checksum(model))
    dist.destroy_process_group()


def raises_on_rank_one(trial) -> None:
    """Rank 1 raises a user error at once; rank 0 trains on (it would run for long) until it is stopped."""
    rank = int(os.environ["RANK"])
    record("start", attempt=trial.attempt)
    if rank == 1:
        # once rank 0 has logged (on a busy machine it may start later than this rank raises)
        zero = Path(os.environ.get("TB_DDP_LOG", ".")) / "rank-0.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (zero.exists() and '"logged"' in zero.read_text()):
            time.sleep(0.01)
        raise ValueError("a bug on rank 1")
    for step in range(1, 10_000):
        trial.log(step, **{"val/error": 1.0 / step})
        if step == 3:
            record("logged", step=step)
        time.sleep(0.01)


def nan_on_rank_zero(trial) -> None:
    """Every rank loops until told to stop; rank 0 logs a NaN at step 3. Records where each rank stopped."""
    rank = int(os.environ["RANK"])
    step = 0
    try:
        for step in range(1, 100_000):
            value = float("nan") if step >= 3 else 1.0 / step
            trial.log(step, **{"val/error": value})
            time.sleep(0.01)
    finally:
        record("stopped", step=step, should_stop=trial.should_stop, reason=trial.infeasible_reason, rank=rank)


def lightning_ddp(trial) -> None:
    """The Lightning callback under Lightning's own DDP strategy on CPU, the ranks started by tunebook."""
    import lightning as L

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
    from train_lightning import DigitsMLP, loaders

    from tunebook.integrations.lightning import fit, trainer_kwargs

    if os.environ.get("TB_DDP_LOG"):
        watch_writes(os.environ["TB_DDP_CKPT"])
    record("start", number=trial.number, params=trial.params, seed=trial.seed, attempt=trial.attempt)
    L.seed_everything(trial.seed, verbose=False)
    model = DigitsMLP(trial.params["learning_rate"], 16)
    trainer = L.Trainer(**trainer_kwargs(
        trial, accelerator="cpu", strategy="ddp", devices=2, num_nodes=1, num_sanity_val_steps=0,
        val_check_interval=10, check_val_every_n_epoch=None,
    ))
    fit(trainer, model, *loaders(32, trial.seed))
    record("end", global_rank=trainer.global_rank, world_size=trainer.world_size, global_step=trainer.global_step,
           environment=type(trainer.strategy.cluster_environment).__name__, checksum=checksum(model))


def slow_steps(trial) -> None:
    """No torch: 0.05 s a step, a checkpoint every 5 steps, resumes from it; records each rank's start."""
    restored = trial.restore()
    start = restored.step if restored is not None else 0
    record("start", number=trial.number, attempt=trial.attempt, step=start)
    for step in range(start + 1, trial.max_train_steps + 1):
        trial.log(step, **{"val/error": 1.0 / step})
        if step % 5 == 0:
            trial.checkpoint(step, {"step": step})
        time.sleep(0.05)


def file_writer(info):
    """A writer factory (an exporter): each call it gets appends to $TB_DDP_LOG/exporter-<pid>.jsonl."""
    from tunebook.writers import MetricWriter

    path = Path(os.environ["TB_DDP_LOG"]) / f"exporter-{os.getpid()}.jsonl"

    class FileWriter(MetricWriter):
        def _put(self, kind, **values):
            with open(path, "a") as f:
                f.write(json.dumps({"kind": kind, "number": info.number, **values}) + "\n")

        def write_hparams(self, hparams):
            self._put("hparams", hparams=dict(hparams))

        def write_scalars(self, step, scalars):
            self._put("scalars", step=step, scalars=dict(scalars))

        def write_summary(self, summary):
            self._put("summary", summary=dict(summary))

        def close(self):
            self._put("close")

    return FileWriter()


def records_devices(trial) -> None:
    """Records the devices this rank sees; logs the objective."""
    record("devices", number=trial.number, visible=os.environ.get("CUDA_VISIBLE_DEVICES"),
           local_rank=int(os.environ["LOCAL_RANK"]), threads=os.environ.get("OMP_NUM_THREADS"))
    time.sleep(0.5)  # both workers hold a trial at once
    trial.log(1, **{"val/error": 0.5})
