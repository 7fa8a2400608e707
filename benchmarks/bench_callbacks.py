"""Per-step overhead of each framework callback against the same framework loop without it.

For each framework, the same model trains for the same steps with the same
data and evaluation interval, once as the framework runs it alone (the peer)
and once with tunebook's callback reporting to a real trial (SQLite, flush
thread, checkpoints at every evaluation through ``trial.checkpoint``; the
trial's final flush counts), and once with the callback but without
checkpoints (the per-step logging alone). Runs alternate in rounds of three,
the order within a round rotating; the figure is the median over rounds of
the ratio to the plain run, and the median extra time per step in microseconds, by the wall clock and by the process's CPU time (all its
threads: the flush and checkpoint threads count; steadier on a busy machine).

- Lightning: the digits MLP (examples/train_lightning.py), ``self.log`` of the
  loss every step, validation every ``--eval`` steps; no logger, no progress bar
  (both runs).
- Hugging Face: a tiny GPT-2 from a config (examples/train_huggingface.py),
  ``logging_steps=1`` (the Trainer's own per-step ``.item()`` is in both runs),
  evaluation and ``checkpoint-N`` saving every ``--eval`` steps (both runs); the
  callback adds packing each saved folder into the trial.
- Keras (torch backend): the digits MLP (examples/train_keras.py),
  ``steps_per_epoch = --eval``, ``verbose=0``.

Run: python benchmarks/bench_callbacks.py [--steps 150] [--repeats 5] [--eval 50] [--only lightning,keras,huggingface]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

import torch  # noqa: E402

import tunebook as tb  # noqa: E402
from tunebook.trial import Trial  # noqa: E402


def lightning_run(steps: int, every: int) -> Callable[[Trial | None, bool], tuple[float, float]]:
    import lightning as L

    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)  # after the import, which sets them to INFO
    from train_lightning import DigitsMLP, loaders
    from tunebook.integrations.lightning import TunebookCallback

    def run(trial: Trial | None, checkpoints: bool = True) -> tuple[float, float]:
        L.seed_everything(0, verbose=False)
        model = DigitsMLP(3e-3, 64)
        train, val = loaders(64, 0)
        trainer = L.Trainer(max_steps=steps, accelerator="cpu", devices=1, num_sanity_val_steps=0, val_check_interval=every,
                            check_val_every_n_epoch=None, logger=False, enable_progress_bar=False,
                            enable_checkpointing=False, enable_model_summary=False,
                            callbacks=[TunebookCallback(trial, checkpoint=checkpoints)] if trial is not None else [])
        start, cpu = time.perf_counter(), time.process_time()
        trainer.fit(model, train, val)
        if trial is not None:
            trial.close()
        return time.perf_counter() - start, time.process_time() - cpu

    return run


def huggingface_run(steps: int, every: int, folder: Path) -> Callable[[Trial | None, bool], tuple[float, float]]:
    import transformers

    from train_huggingface import BASE_ARGS, CountingSequences, tiny_gpt2
    from tunebook.integrations.huggingface import TunebookCallback

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    train_set, val_set = CountingSequences(4096, 0), CountingSequences(128, 1)
    counter = iter(range(10**6))

    def run(trial: Trial | None, checkpoints: bool = True) -> tuple[float, float]:
        args = dataclasses.replace(BASE_ARGS, output_dir=str(folder / f"hf-{next(counter)}"), max_steps=steps,
                                   eval_steps=every, save_steps=every, logging_steps=1, seed=0)
        torch.manual_seed(0)
        trainer = transformers.Trainer(model=tiny_gpt2({"width": 32}), args=args, train_dataset=train_set,
                                       eval_dataset=val_set,
                                       callbacks=[TunebookCallback(trial, checkpoint="pack" if checkpoints else None)]
                                       if trial is not None else [])
        trainer.remove_callback(transformers.PrinterCallback)
        start, cpu = time.perf_counter(), time.process_time()
        trainer.train()
        if trial is not None:
            trial.close()
        return time.perf_counter() - start, time.process_time() - cpu

    return run


def keras_run(steps: int, every: int) -> Callable[[Trial | None, bool], tuple[float, float]]:
    import keras

    from train_keras import build_model
    from tunebook.integrations.keras import TunebookCallback
    from tunebook.workloads.digits import split

    x, y, xv, yv = split()

    def run(trial: Trial | None, checkpoints: bool = True) -> tuple[float, float]:
        keras.utils.set_random_seed(0)
        model = build_model(64, 3e-3)
        start, cpu = time.perf_counter(), time.process_time()
        model.fit(x, y, batch_size=64, validation_data=(xv, yv), steps_per_epoch=every, epochs=steps // every,
                  callbacks=[TunebookCallback(trial, checkpoint=checkpoints)] if trial is not None else [], verbose=0)
        if trial is not None:
            trial.close()
        return time.perf_counter() - start, time.process_time() - cpu

    return run


def measure(name: str, run: Callable[[Trial | None, bool], tuple[float, float]], steps: int, repeats: int, folder: Path) -> None:
    study = tb.create_study(f"bench-{name}", space=tb.SearchSpace(nuisance={"learning_rate": tb.Float(1e-4, 1.0, "log")}),
                            objective=("val/error" if name != "huggingface" else "val/loss", "min"),
                            trials=2 * repeats + 1, max_train_steps=steps, storage=f"sqlite:///{folder}/tb.db")

    def trial() -> Trial:
        record = study.storage.claim_trial("bench", study.id)
        return Trial(study, record, study.storage, "bench", folder / "ckpt")

    run(None)  # warm-up: imports, first compilation of kernels
    plain, logs_only, full = [], [], []
    for i in range(repeats):  # the order within a round rotates, so a drift favours none
        runs = [(plain, lambda: run(None)), (logs_only, lambda: run(trial(), False)), (full, lambda: run(trial(), True))]
        for times, go in runs[i % 3:] + runs[:i % 3]:
            times.append(go())
    for i, clock in enumerate(("wall", "cpu")):
        base = [p[i] for p in plain]
        print(f"{name:12s} {clock:4s} plain {statistics.median(base) / steps * 1e6:8.1f} us/step", end="")
        for label, times in (("callback, no checkpoints", logs_only), ("callback + checkpoints", full)):
            ours = [o[i] for o in times]
            ratio = statistics.median(o / p for p, o in zip(base, ours))
            extra_us = statistics.median((o - p) / steps * 1e6 for p, o in zip(base, ours))
            print(f" | {label}: ratio {ratio:.4f} ({(ratio - 1) * 100:+.2f}%), {extra_us:+.1f} us/step", end="")
        print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--eval", type=int, default=50, help="evaluation (and checkpoint) interval in steps")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch compute threads")
    parser.add_argument("--only", default="lightning,keras,huggingface")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    print(f"{args.steps} steps, evaluation + checkpoint every {args.eval}, {args.repeats} rounds (plain, callback without checkpoints, callback + checkpoints), "
          f"torch threads {args.threads}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            folder = Path(tmp) / name
            folder.mkdir()
            if name == "lightning":
                run = lightning_run(args.steps, args.eval)
            elif name == "huggingface":
                run = huggingface_run(args.steps, args.eval, folder)
            elif name == "keras":
                run = keras_run(args.steps, args.eval)
            else:
                raise SystemExit(f"--only: unknown framework {name!r}; use lightning, keras, huggingface")
            measure(name, run, args.steps, args.repeats, folder)


if __name__ == "__main__":
    main()
