"""The example study `tunebook init` writes: a commented study.yaml and a PyTorch train.py."""

from __future__ import annotations

ADAM_RANGES = {
    "learning_rate": "{min: 1.0e-4, max: 1.0e-1, scale: log}",
    "beta1": "{min: 0.5, max: 0.99}",
    "epsilon": "{min: 1.0e-10, max: 1.0e-3, scale: log}",
    "beta2": "{min: 0.9, max: 0.9999}",
}


def example_spec(trials: int = 12) -> str:
    """The commented example study; Adam's nuisance hyperparameters follow the playbook's budget rule."""
    from tunebook.analysis.checks import adam_recommendation

    per_value = max(1, trials // 2)  # two scientific values share the budget
    tuned = adam_recommendation(per_value)
    fixed = {"beta1": "0.9", "beta2": "0.999", "epsilon": "1.0e-8"}
    nuisance_lines = "".join(f"    {name}: {ADAM_RANGES[name]}\n" for name in tuned)
    fixed_lines = "".join(f"    {name}: {value}\n" for name, value in fixed.items() if name not in tuned)
    return f"""\
# A tunebook study: one round of the playbook's incremental tuning.
# Run it with `tunebook run study.yaml --workers 2`; see it with `tunebook ls`.
study: example-weight-decay          # a new round gets a new name
goal: Does weight decay help?        # the question this round answers
train: train.py:train                # module:function, or file.py:function beside this file
objective: {{metric: val/loss, mode: min}}
trials: {trials}                           # raise it later to sample more (same sequence)
max_train_steps: 200                 # never tuned inside a study
search_space:
  scientific:                        # what the study measures
    weight_decay: {{choice: [0.0, 1.0e-2]}}
  nuisance:                          # optimized away for a fair comparison
    # Adam, as the playbook says for {per_value} trials per scientific value: {', '.join(tuned)}
{nuisance_lines}  fixed:                             # held constant
    batch_size: 32
{fixed_lines}infeasible_if:                       # NaN/Inf always counts as infeasible
  train/loss: {{above: 1.0e+3}}
"""

EXAMPLE_TRAIN = '''\
"""An example training function for tunebook: linear regression in PyTorch.

tunebook calls train(trial) once per trial. trial.params holds every
hyperparameter (scientific, nuisance and fixed); trial.seed is the trial's seed.
"""

import torch


def train(trial):
    hp = trial.params
    torch.manual_seed(trial.seed)
    x = torch.randn(512, 8)
    y = x @ torch.linspace(-1, 1, 8) + 0.1 * torch.randn(512)
    x_val, y_val = x[448:], y[448:]
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=hp["learning_rate"], betas=(hp["beta1"], hp["beta2"]),
                            eps=hp["epsilon"], weight_decay=hp["weight_decay"])

    start = 1
    resumed = trial.restore()                      # after an interruption: continue
    if resumed is not None:
        model.load_state_dict(resumed.state["model"])
        opt.load_state_dict(resumed.state["optimizer"])
        start = resumed.step + 1

    for step in range(start, trial.max_train_steps + 1):
        idx = torch.randint(0, 448, (hp["batch_size"],))
        loss = torch.nn.functional.mse_loss(model(x[idx]).squeeze(-1), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        trial.log(step, **{"train/loss": loss.detach()})   # a tensor: no device sync
        if step % 20 == 0:
            with torch.no_grad():
                val = torch.nn.functional.mse_loss(model(x_val).squeeze(-1), y_val)
            trial.log(step, **{"val/loss": val})
            trial.checkpoint(step, {"model": model.state_dict(), "optimizer": opt.state_dict()})
'''
