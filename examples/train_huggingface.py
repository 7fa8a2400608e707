"""Tune a tiny GPT-2 (built from a config: nothing is downloaded) with the Hugging Face Trainer and tunebook.

    python examples/train_huggingface.py        # 4 trials, ./tunebook.db
    tunebook report gpt2-tiny-lr                # curves, checkpoints and the checklist

The data are synthetic sequences that count upwards by a per-sequence stride
(mod the vocabulary), so the loss falls within a few dozen steps. The study
tunes ``TrainingArguments`` fields (``learning_rate``, ``warmup_steps``)
through ``training_args_from``: transformers' ``hyperparameter_search`` accepts
only its own backends. The callback logs the Trainer's logs and evaluations at
their global step, packs each saved checkpoint into the trial, stops a
diverging trial and resumes an interrupted one.
"""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

import tunebook as tb
from tunebook.integrations.huggingface import TunebookCallback, training_args_from

VOCAB, LENGTH = 32, 16


class CountingSequences(torch.utils.data.Dataset):
    """``n`` sequences ``start, start + stride, ...`` (mod VOCAB), fixed by ``seed``."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        start = torch.randint(0, VOCAB, (n, 1), generator=g)
        stride = torch.randint(1, 4, (n, 1), generator=g)
        self.ids = (start + stride * torch.arange(LENGTH)) % VOCAB

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def tiny_gpt2(params: dict) -> GPT2LMHeadModel:
    config = GPT2Config(vocab_size=VOCAB, n_positions=LENGTH, n_embd=int(params.get("width", 32)), n_layer=2, n_head=2,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(config)


BASE_ARGS = TrainingArguments(
    output_dir="hf_runs", per_device_train_batch_size=32, per_device_eval_batch_size=128,
    eval_strategy="steps", eval_steps=20, save_strategy="steps", save_steps=20,  # a checkpoint at each evaluation
    logging_steps=1, report_to="none", use_cpu=True, disable_tqdm=True, dataloader_num_workers=0,
)


def train(trial: tb.Trial, base_args: TrainingArguments = BASE_ARGS) -> None:
    """The training function tunebook calls once per trial (on every rank under torchrun)."""
    args = training_args_from(trial, base_args)  # learning_rate, warmup_steps; max_steps, seed, output_dir
    torch.manual_seed(trial.seed)
    callback = TunebookCallback(trial)
    trainer = Trainer(model=tiny_gpt2(trial.params), args=args, train_dataset=CountingSequences(2048, 0),
                      eval_dataset=CountingSequences(256, 1), callbacks=[callback])
    trainer.train(resume_from_checkpoint=callback.resume_from_checkpoint(args.output_dir))


space = tb.SearchSpace(
    nuisance={"learning_rate": tb.Float(1e-4, 3e-2, scale="log"), "warmup_steps": tb.Int(0, 10)},
    fixed={"width": 32},
)

if __name__ == "__main__":
    study = tb.create_study("gpt2-tiny-lr", space=space, objective=("val/loss", "min"), trials=4, max_train_steps=100,
                            goal="Learning rate and warmup of a tiny GPT-2 on counting sequences",
                            infeasible_if={"train/loss": {"above": 20.0}})
    tb.run(study, train, workers=1)
    report = tb.analyze(study)
    report.print()
    print("report:", report.save("gpt2-tiny-lr.html"))
