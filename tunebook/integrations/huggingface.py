"""Hugging Face ``transformers.Trainer``: a callback that reports training to a tunebook trial.

    from transformers import Trainer, TrainingArguments
    from tunebook.integrations.huggingface import TunebookCallback, training_args_from

    BASE = TrainingArguments(output_dir="runs", eval_strategy="steps", eval_steps=50, save_steps=50,
                             logging_steps=10, report_to="none")

    def train(trial):
        args = training_args_from(trial, BASE)     # learning_rate, warmup_steps, ... from trial.params;
                                                   # max_steps, seed and a per-trial output_dir from the trial
        model = AutoModelForCausalLM.from_config(config_for(trial.params))
        callback = TunebookCallback(trial)
        trainer = Trainer(model=model, args=args, train_dataset=train_set, eval_dataset=val_set, callbacks=[callback])
        trainer.train(resume_from_checkpoint=callback.resume_from_checkpoint(args.output_dir))

What the callback does:

- **Logs** — what the Trainer logs every ``logging_steps`` (``on_log``) goes to
  ``trial.log`` at ``state.global_step``; evaluation metrics (``on_evaluate``)
  at the global step where the evaluation ran. Names are mapped to tunebook's:
  ``loss`` -> ``train/loss``, ``eval_<name>`` -> ``val/<name>``,
  ``learning_rate`` -> ``lr``, ``grad_norm`` -> ``grad/norm``; runtimes,
  throughputs, ``epoch`` and ``total_flos`` are dropped (``rename`` changes this).
  The Trainer hands callbacks Python floats: it already waited for the device
  once per logging step (``tr_loss.item()`` in ``_maybe_log_save_evaluate``),
  whatever the callbacks; the callback adds no sync of its own, and does nothing
  on the steps in between. Keep ``logging_steps`` above 1 on an accelerator.
- **Checkpoints** — after the Trainer saved ``checkpoint-<step>`` (``on_save``),
  the folder's files are packed into one ``trial.checkpoint``, ranked by the
  objective logged at that step; tunebook keeps the N best plus the latest.
  Save at the evaluation steps (``save_steps == eval_steps``) so each checkpoint
  has an objective. ``checkpoint="path"`` records only the folder's path
  (for large models whose ``output_dir`` outlives the trial).
- **Resume** — ``callback.resume_from_checkpoint(output_dir)`` writes the trial's
  latest checkpoint back as ``output_dir/checkpoint-<step>`` and returns that
  folder (None on a first attempt), for
  ``trainer.train(resume_from_checkpoint=...)``: the Trainer restores weights,
  optimizer, scheduler, RNG states and skips the batches already seen.
- **Infeasible** — once the trial is infeasible, ``control.should_training_stop``
  is set and ``train`` returns; tunebook records the trial as infeasible.
- **DDP** (``torchrun``/``accelerate``) — every rank runs ``train(trial)`` with
  the same ``trial.params`` and ``trial.seed``; only the world process zero
  writes metrics and checkpoints. The ranks agree on stopping every
  ``stop_check_every`` steps (one all-reduce of a flag).

``Trainer.hyperparameter_search`` cannot take a tunebook backend: transformers
(5.x) accepts only the members of its closed ``HPSearchBackend`` enum (optuna,
ray, wandb), so a study over ``TrainingArguments`` fields runs through
:func:`training_args_from` in a training function, as above.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

from tunebook.integrations._common import Gate, Rename, rename_metrics, renamer, require

transformers = require("transformers", "transformers", "huggingface", "tunebook.integrations.huggingface")
require("accelerate", "accelerate", "huggingface", "transformers' Trainer")  # Trainer refuses to run without it

#: Tunebook's usual hyperparameter names -> ``TrainingArguments`` fields (a param named after a field is used as is).
PARAM_ALIASES: dict[str, str] = {
    "batch_size": "per_device_train_batch_size",
    "beta1": "adam_beta1",
    "beta2": "adam_beta2",
    "epsilon": "adam_epsilon",
    "grad_clip": "max_grad_norm",
    "schedule": "lr_scheduler_type",
}

_DROP_SUFFIXES = ("_runtime", "_samples_per_second", "_steps_per_second")
_DROP = {"epoch", "total_flos", "train_loss", "step"}
_NAMES = {"loss": "train/loss", "learning_rate": "lr", "grad_norm": "grad/norm"}


def default_name(name: str) -> str | None:
    """Tunebook's name for a Trainer log key (None: not stored)."""
    if name in _DROP or name.endswith(_DROP_SUFFIXES):
        return None
    if name in _NAMES:
        return _NAMES[name]
    if name.startswith("eval_"):
        return "val/" + name[len("eval_"):]
    return name


def _numeric(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class TunebookCallback(transformers.TrainerCallback):
    """Report a ``transformers.Trainer`` run to ``trial`` (see the module docstring).

    Args:
        trial: the :class:`~tunebook.trial.Trial` that ``train`` received.
        rename: stored name for each log key: a dict (keys not in it get the
            default mapping) or a function returning the name, or None to skip the key.
        checkpoint: ``"pack"`` (the checkpoint folder's files, in tunebook's
            checkpoint), ``"path"`` (only the folder's path) or ``None`` (no checkpoints).
        stop_check_every: under DDP, how often (in steps) the ranks agree on stopping.
    """

    def __init__(self, trial: Any, *, rename: Rename = None, checkpoint: str | None = "pack", stop_check_every: int = 50) -> None:
        if checkpoint not in ("pack", "path", None):
            from tunebook.errors import SpecError

            raise SpecError("checkpoint", f"unknown mode {checkpoint!r}", "use 'pack', 'path' or None")
        self.trial = trial
        self.rename = renamer(rename, default_name)
        self.checkpoint_mode = checkpoint
        self.stop_check_every = max(1, int(stop_check_every))
        self.gate = Gate(trial, writes=True)
        self._infeasible = False
        self._logged: tuple[int, set[str]] = (-1, set())

    # resume ------------------------------------------------------------------
    def resume_from_checkpoint(self, output_dir: str | os.PathLike[str]) -> str | None:
        """The folder to pass as ``trainer.train(resume_from_checkpoint=...)``: the trial's latest checkpoint, or None."""
        latest = self.trial.restore()
        if latest is None:
            return None
        state = latest.state
        if state.get("format") == "transformers-checkpoint-path":
            return state["path"] if Path(state["path"]).is_dir() else None
        folder = Path(output_dir) / f"{transformers.trainer_utils.PREFIX_CHECKPOINT_DIR}-{state['global_step']}"
        if not folder.is_dir():  # every rank may unpack: build aside, rename into place once
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
            for name, data in state["files"].items():
                target = tmp / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            try:
                os.rename(tmp, folder)
            except OSError:  # another rank was first
                shutil.rmtree(tmp, ignore_errors=True)
        return str(folder)

    # hooks -------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.gate.writes = bool(state.is_world_process_zero)

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and self.gate.writes:
            metrics = self._renamed(_numeric(logs))
            self._logged = (state.global_step, set(logs))
            if not self.gate.log(state.global_step, metrics):
                self._infeasible = True
        self._maybe_stop(args, state, control, agree=False)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if metrics and self.gate.writes:
            step, seen = self._logged  # Trainer.evaluate logs its metrics (on_log) just before on_evaluate
            fresh = {k: v for k, v in metrics.items() if not (step == state.global_step and k in seen)}
            if not self.gate.log(state.global_step, self._renamed(_numeric(fresh))):
                self._infeasible = True
        self._maybe_stop(args, state, control, agree=False)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.checkpoint_mode is None or not self.gate.writes:
            return
        folder = Path(args.output_dir) / f"{transformers.trainer_utils.PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if self.checkpoint_mode == "path":
            saved: dict[str, Any] = {"format": "transformers-checkpoint-path", "global_step": state.global_step, "path": str(folder)}
        else:
            files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
            saved = {"format": "transformers-checkpoint-dir", "global_step": state.global_step, "files": files}
        if not self.gate.checkpoint(state.global_step, saved):
            self._infeasible = True

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._maybe_stop(args, state, control, agree=state.global_step % self.stop_check_every == 0)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # Stopped before max_steps by a callback (EarlyStoppingCallback): said, so it is not taken for a cut-short trial.
        end = getattr(self.trial, "end", None)
        if self.gate.writes and end is not None and 0 < state.global_step < state.max_steps and not self._infeasible:
            end(f"a Trainer callback set control.should_training_stop (e.g. EarlyStoppingCallback) at step {state.global_step}")

    # helpers -----------------------------------------------------------------
    def _renamed(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        return rename_metrics(metrics, self.rename)

    def _maybe_stop(self, args: Any, state: Any, control: Any, agree: bool) -> None:
        local = self._infeasible or self.gate.infeasible
        if args.world_size > 1:
            if not agree:
                return
            import torch
            import torch.distributed as dist

            flag = torch.tensor([1.0 if local else 0.0], device=args.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)  # any rank -> every rank
            local = bool(flag.item())  # one sync every stop_check_every steps, only under DDP
        if local:
            control.should_training_stop = True


def training_args_from(trial: Any, base_args: Any, aliases: Mapping[str, str] | None = None, **overrides: Any) -> Any:
    """A copy of ``base_args`` (``TrainingArguments``) for ``trial``.

    - every ``trial.params`` entry named after a ``TrainingArguments`` field (or
      an alias: ``batch_size``, ``beta1``, ``beta2``, ``epsilon``, ``grad_clip``,
      ``schedule``) sets that field; the others are left to the training function
      (model config, data);
    - ``max_steps`` is the study's ``max_train_steps``; ``seed`` and
      ``data_seed`` are the trial's seed (the same on every rank);
    - ``output_dir`` is ``base_args.output_dir/<study>/trial-<number>``;
    - ``overrides`` win.
    """
    names = {f.name for f in dataclasses.fields(base_args) if f.init}
    table = {**PARAM_ALIASES, **(aliases or {})}
    changes: dict[str, Any] = {}
    params = trial.params
    for name in list(dict.keys(params)):  # each name it uses is read by key: trial.params notes those only
        field = name if name in names else table.get(name)
        if field in names:
            changes[field] = params[name]
    changes.update(
        max_steps=trial.max_train_steps,
        seed=trial.seed,
        data_seed=trial.seed,
        output_dir=str(Path(base_args.output_dir or "trainer_output") / trial.study.name / f"trial-{trial.number:05d}"),
    )
    changes.update(overrides)
    return dataclasses.replace(base_args, **changes)


__all__ = ["PARAM_ALIASES", "TunebookCallback", "default_name", "training_args_from"]
