"""Tune a Lightning MLP on the digits data with tunebook's Lightning callback.

    python examples/train_lightning.py          # 6 trials, ./tunebook.db
    tunebook report digits-lightning            # curves, checkpoints and the checklist

The callback logs what the LightningModule logs (``train/loss`` every step,
``val/error`` and ``val/loss`` at each validation) at the global step,
checkpoints the trainer's state after each validation, stops a diverging trial
(an ``infeasible_if`` rule or a NaN) and resumes an interrupted one from its
latest checkpoint (``fit`` passes ``ckpt_path``). Under DDP run the same
function on every rank: the trial gives every rank the same params and seed,
and only rank 0 writes.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import tunebook as tb
from tunebook.integrations.lightning import fit, trainer_kwargs
from tunebook.workloads import digits


class DigitsMLP(L.LightningModule):
    """The digits MLP (``tunebook.workloads.digits.build_model``) trained with Adam."""

    def __init__(self, learning_rate: float = 1e-3, hidden_units: int = 64) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = digits.build_model({"hidden_units": hidden_units})

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train/loss", loss)  # a tensor: the callback passes it on without a host sync
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        self.log("val/loss", F.cross_entropy(logits, y))
        self.log("val/error", (logits.argmax(-1) != y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)


def loaders(batch_size: int, seed: int) -> tuple[DataLoader, DataLoader]:
    x_tr, y_tr, x_val, y_val = (torch.from_numpy(a) for a in digits.split())
    shuffle = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(x_tr, y_tr), batch_size=batch_size, shuffle=True, generator=shuffle)
    return train, DataLoader(TensorDataset(x_val, y_val), batch_size=512)


def train(trial: tb.Trial) -> None:
    """The training function tunebook calls once per trial (on every rank of a DDP trial)."""
    hp = trial.params
    L.seed_everything(trial.seed, verbose=False)
    model = DigitsMLP(hp["learning_rate"], int(hp.get("hidden_units", 64)))
    train_loader, val_loader = loaders(int(hp.get("batch_size", 64)), trial.seed)
    trainer = L.Trainer(**trainer_kwargs(
        trial, accelerator="cpu", devices=1, num_sanity_val_steps=0,
        val_check_interval=int(hp.get("eval_every", 50)), check_val_every_n_epoch=None,  # validate by global step
    ))
    fit(trainer, model, train_loader, val_loader)  # ckpt_path: the trial's latest checkpoint, if resumed


space = tb.SearchSpace(
    nuisance={"learning_rate": tb.Float(1e-4, 3.0, scale="log")},
    fixed={"batch_size": 64, "hidden_units": 64, "eval_every": 50},
)

if __name__ == "__main__":  # worker processes import this file: keep the run behind the guard
    study = tb.create_study(
        "digits-lightning", space=space, objective=("val/error", "min"), trials=6, max_train_steps=300,
        goal="Learning rate of a Lightning MLP on digits", infeasible_if={"train/loss": {"above": 10.0}},
    )
    tb.run(study, train, workers=1)
    report = tb.analyze(study)
    report.print()
    print("report:", report.save("digits-lightning.html"))
