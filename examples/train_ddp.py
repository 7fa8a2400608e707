"""Tune a DistributedDataParallel model: each trial runs as two processes, as under torchrun.

    python examples/train_ddp.py                          # 4 trials x 2 processes, CPU (gloo), ./tunebook.db
    tunebook report digits-ddp                            # curves, checkpoints and the checklist

From a spec (``train: train_ddp.py:train`` beside it), the same with the CLI:

    tunebook run study.yaml --nproc-per-trial 2                        # CPU: one worker, two ranks a trial
    tunebook run study.yaml --nproc-per-trial 2 --devices 0,1,2,3      # GPUs: two workers, two GPUs each (nccl)
    tunebook worker --storage postgresql://... --nproc-per-trial 8     # one worker per 8-GPU machine

tunebook starts the ranks with torch.distributed's environment (``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``...), so
``init_process_group`` needs no arguments beyond the backend. Every rank gets
the same trial (params, seed, the same checkpoint from ``restore()``); rank 0
writes the metrics and checkpoints, the other ranks' ``log``/``checkpoint`` write
nothing. A rank uses the device at index ``LOCAL_RANK`` of those it sees.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

import tunebook as tb
from tunebook.workloads import digits


def train(trial: tb.Trial) -> None:
    """Called on every rank with the same trial; each rank trains on its share of every batch."""
    rank, local_rank, world = (int(os.environ[k]) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        hp = trial.params
        torch.manual_seed(trial.seed)  # the same initialization on every rank (DDP also broadcasts rank 0's)
        model = digits.build_model(hp).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=hp["learning_rate"], momentum=hp["momentum"], nesterov=True)
        start = 0
        resumed = trial.restore()  # the same checkpoint on every rank
        if resumed is not None:
            model.load_state_dict(resumed.state["model"])
            opt.load_state_dict(resumed.state["optimizer"])
            start = resumed.step
        ddp = DistributedDataParallel(model, device_ids=[local_rank] if cuda else None)
        x_tr, y_tr, x_val, y_val = (torch.from_numpy(a).to(device) for a in digits.split())
        batch, eval_every = int(hp["batch_size"]), int(hp["eval_every"])
        for step in range(start + 1, trial.max_train_steps + 1):
            # one global batch per step, drawn from (seed, step): a resumed trial follows the same path
            order = np.random.default_rng([trial.seed, step]).permutation(len(x_tr))[:batch]
            mine = torch.from_numpy(order[rank::world]).to(device)
            loss = F.cross_entropy(ddp(x_tr[mine]), y_tr[mine])
            opt.zero_grad(set_to_none=True)
            loss.backward()  # DDP averages the gradients over the ranks
            opt.step()
            trial.log(step, **{"train/loss": loss.detach()})  # a tensor: no host sync; written by rank 0 only
            if step % eval_every == 0 or step == trial.max_train_steps:
                with torch.no_grad():
                    logits = model(x_val)
                trial.log(step, **{"val/error": (logits.argmax(-1) != y_val).float().mean(),
                                   "val/loss": F.cross_entropy(logits, y_val)})
                trial.checkpoint(step, {"model": model.state_dict(), "optimizer": opt.state_dict()})
        # A diverging trial: rank 0's trial.log raises TrialInfeasible; the other ranks' next log raises it
        # too (or their collective fails once rank 0 has left): tunebook records the trial as infeasible.
    finally:
        dist.destroy_process_group()


space = tb.SearchSpace(
    nuisance={"learning_rate": tb.Float(1e-3, 3.0, scale="log")},
    fixed={"momentum": 0.9, "batch_size": 64, "hidden_units": 64, "eval_every": 50},
)

if __name__ == "__main__":  # the rank processes import this file: keep the run behind the guard
    study = tb.create_study(
        "digits-ddp", space=space, objective=("val/error", "min"), trials=4, max_train_steps=300,
        goal="Learning rate of a DDP MLP on digits", infeasible_if={"train/loss": {"above": 10.0}},
    )
    tb.run(study, train, nproc_per_trial=2)
    report = tb.analyze(study)
    report.print()
    print("report:", report.save("digits-ddp.html"))
