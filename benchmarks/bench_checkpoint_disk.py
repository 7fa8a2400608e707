"""Checkpoint disk of a word-model-sized study, without and with the keep policy.

The workload the issue measured: a 1.2M-parameter language model (pytorch/examples' word LM at
its small settings) checkpointing model + Adam state every evaluation, 95 trials: 848 MB. Here each
trial trains a model of the same size for a few steps (real Adam steps on random tokens) and
checkpoints `training_state` at every evaluation. The same study runs twice: `keep_top_trials: all`
(what every earlier tunebook kept: each trial's 3 best and its latest) and the default policy (the 5
best trials keep theirs, every other finished trial its best one). Also prints the floor: one
best checkpoint per trial.

    python benchmarks/bench_checkpoint_disk.py --trials 95
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import tunebook as tb
from tunebook.checkpoints import prune
from tunebook.training import training_state

VOCAB, DIM = 9000, 64  # embedding 576k + decoder 585k + biases: ~1.17M parameters


class WordLM(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, DIM)
        self.decode = torch.nn.Linear(DIM, VOCAB)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.embed(x))


def train(trial) -> None:
    torch.manual_seed(trial.seed)
    model = WordLM()
    opt = torch.optim.Adam(model.parameters(), lr=trial.params["lr"])
    for step in range(1, trial.max_train_steps + 1):
        x = torch.randint(0, VOCAB, (8, 16))
        loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, VOCAB), x.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        trial.log(step, val_loss=loss.detach())
        trial.checkpoint(step, training_state(step, model, opt))


def run(folder: Path, trials: int, keep_top: object) -> tuple[int, int, float]:
    url = f"sqlite:///{folder / 'lm.db'}"
    space = tb.SearchSpace(nuisance={"lr": tb.Float(1e-4, 1e-1, scale="log")})
    study = tb.create_study("word-lm", space=space, objective=("val_loss", "min"), trials=trials, max_train_steps=8,
                            storage=url, seed=0, keep_top_trials=keep_top)
    start = time.perf_counter()
    tb.run(study, train, workers=0, progress=False)
    used = prune.usage(folder / "tunebook_checkpoints" / study.storage.store_id / "word-lm")
    return used.bytes, used.files, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=24)
    args = parser.parse_args()
    params = sum(p.numel() for p in WordLM().parameters())
    print(f"{args.trials} trials of a {params / 1e6:.2f}M-parameter model, 8 evaluations each, model + Adam checkpointed")
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        all_bytes, all_files, t_all = run(Path(a), args.trials, "all")
        kept_bytes, kept_files, t_kept = run(Path(b), args.trials, 5)
    per_file = all_bytes / all_files
    floor = per_file * args.trials
    print(f"keep everything (before): {prune.human(all_bytes)} in {all_files} files ({t_all:.1f} s)")
    print(f"default policy (after):   {prune.human(kept_bytes)} in {kept_files} files ({t_kept:.1f} s)")
    print(f"ratio after/before: {kept_bytes / all_bytes:.2f}; after / floor (one best checkpoint a trial, "
          f"{prune.human(int(floor))}): {kept_bytes / floor:.2f}; run time after/before: {t_kept / t_all:.2f}")


if __name__ == "__main__":
    main()
