"""Step time of a plain PyTorch loop against the same loop instrumented by tunebook.

Both loops train the same MLP (64-1024-1024-10) on the digits data with the
same batches, evaluate every 100 steps and keep the model in memory. The
instrumented loop adds what a tunebook training function does: ``trial.log``
of the loss tensor every step, the total gradient norm computed on the device
and logged every step (``clip_and_log``), the evaluation logged, and
``trial.checkpoint`` of the full training state at every evaluation (atomic
write, keep-3-best). Runs alternate (plain, tunebook, plain, ...) and the
medians are compared.

On a GPU the training step runs on the device and the host has cores to spare
for tunebook's flush and checkpoint threads. On this CPU-only machine the same
split is made explicit: PyTorch computes on ``--threads`` cores (default 1),
leaving the other to the host side. ``--threads 2`` measures the case where
training takes every core. The figure is the median over alternating runs of
the per-pair ratio, and the best (minimum) step times.

Run: python benchmarks/bench_training_overhead.py [--steps 400] [--repeats 7] [--threads 1]
Target: at most 2% slower.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import tunebook as tb
from tunebook.trial import Trial
from tunebook.training.checkpoints import training_state
from tunebook.training.clipping import clip_and_log
from tunebook.workloads.digits import split

EVAL_EVERY = 100


def make():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def data(steps: int, batch: int = 256):
    x, y, xv, yv = (torch.from_numpy(a) for a in split())
    rng = np.random.default_rng(0)
    return [(x[i], y[i]) for i in (rng.integers(0, len(x), batch) for _ in range(steps))], xv, yv


def run(batches, xv, yv, trial: Trial | None) -> float:
    model, opt = make()
    params = list(model.parameters())
    start = time.perf_counter()
    for step, (xb, yb) in enumerate(batches, start=1):
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if trial is not None:
            clip_and_log(trial, step, params)
        opt.step()
        if trial is not None:
            trial.log(step, **{"train/loss": loss.detach()})
        if step % EVAL_EVERY == 0:
            with torch.no_grad():
                err = (model(xv).argmax(1) != yv).float().mean()
            if trial is not None:
                trial.log(step, **{"val/error": err})
                trial.checkpoint(step, training_state(step, model, opt))
    if trial is not None:
        trial._close()  # the final flush counts
    return (time.perf_counter() - start) / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="PyTorch compute threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batches, xv, yv = data(args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        study = tb.create_study("overhead", space=tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1.0, "log")}),
                                objective=("val/error", "min"), trials=args.repeats + 1, max_train_steps=args.steps,
                                storage=f"sqlite:///{folder}/tb.db")
        run(batches[:50], xv, yv, None)  # warm-up
        plain, ours = [], []
        for _ in range(args.repeats):
            plain.append(run(batches, xv, yv, None))
            record = study.storage.claim_trial("bench", study.id)
            ours.append(run(batches, xv, yv, Trial(study, record, study.storage, "bench", folder / "ckpt")))
    ratio = statistics.median(o / p for p, o in zip(plain, ours))
    print(f"torch threads: {args.threads}, {args.steps} steps x {args.repeats} alternating runs")
    print(f"floor: plain loop, best {min(plain) * 1e3:.3f} ms/step (runs: {', '.join(f'{x * 1e3:.3f}' for x in plain)})")
    print(f"with tunebook logging, grad norms, checkpoints: best {min(ours) * 1e3:.3f} ms/step "
          f"(runs: {', '.join(f'{x * 1e3:.3f}' for x in ours)})")
    print(f"ratio tunebook/plain: median of pairs {ratio:.4f} ({(ratio - 1) * 100:+.2f}%), "
          f"best-to-best {min(ours) / min(plain):.4f} ({(min(ours) / min(plain) - 1) * 100:+.2f}%); target <= +2%")


if __name__ == "__main__":
    main()
