"""Small deterministic training functions for the tests (importable by worker processes)."""

from __future__ import annotations

import math
import os
import time

import numpy as np


def quadratic(trial) -> None:
    """val/error falls towards (log10 lr + 2)^2: best near lr = 1e-2."""
    lr = trial.params["lr"]
    floor = (math.log10(lr) + 2) ** 2
    for step in range(1, trial.max_train_steps + 1):
        trial.log(step, **{"train/loss": floor + 1.0 / step})
        if step % 5 == 0 or step == trial.max_train_steps:
            trial.log(step, **{"val/error": floor + 2.0 / step})


def numpy_metrics(trial) -> None:
    for step in range(1, trial.max_train_steps + 1):
        trial.log(step, **{"val/error": np.float32(1.0 / step), "count": np.int64(step)})


def diverges(trial) -> None:
    """NaN from step 3 when lr > 0.1 (the training keeps going: tunebook must stop it)."""
    for step in range(1, trial.max_train_steps + 1):
        loss = float("nan") if trial.params["lr"] > 0.1 and step >= 3 else 1.0 / step
        trial.log(step, **{"train/loss": loss, "val/error": loss})
        time.sleep(0.01)


def user_bug(trial) -> None:
    trial.log(1, **{"val/error": 1.0})
    raise ValueError("a bug in user code")


def never_logs_objective(trial) -> None:
    trial.log(1, **{"train/loss": 1.0})


def large_loss(trial) -> None:
    for step in range(1, trial.max_train_steps + 1):
        trial.log(step, **{"train/loss": 50.0 * step, "val/error": 1.0})


def out_of_memory(trial) -> None:
    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")


def resumable(trial) -> None:
    """Deterministic, checkpoints every step, sleeps so a test can interrupt it.

    Appends "start <number> <first step>" and "end <number>" to $TB_TEST_LOG.
    """
    log = os.environ.get("TB_TEST_LOG")
    state = {"x": 1.0}
    start = 1
    resumed = trial.restore()
    if resumed is not None:
        state, start = resumed.state, resumed.step + 1
    if log:
        with open(log, "a") as f:
            f.write(f"start {trial.number} {start}\n")
    delay = float(os.environ.get("TB_TEST_DELAY", "0.02"))
    for step in range(start, trial.max_train_steps + 1):
        state = {"x": state["x"] * (1 - trial.params["lr"] / 10)}
        trial.log(step, **{"val/error": state["x"]})
        trial.checkpoint(step, state)
        time.sleep(delay)
    if log:
        with open(log, "a") as f:
            f.write(f"end {trial.number}\n")


TINY_STEPS = 5


def tiny(trial) -> None:
    """A no-op trial that logs TINY_STEPS points of two metrics (10 rows)."""
    for step in range(1, TINY_STEPS + 1):
        trial.log(step, **{"val/error": trial.params["lr"] / step, "train/loss": 1.0 / step})


def noisy(trial) -> None:
    """quadratic plus seed noise: retrains of one configuration differ (trial variance)."""
    rng = np.random.default_rng(trial.seed)
    shift = float(trial.params.get("shift", 0.0))
    floor = (math.log10(trial.params["lr"]) + 2) ** 2 + shift + 0.01 * rng.standard_normal()
    for step in range(1, trial.max_train_steps + 1):
        trial.log(step, **{"train/loss": floor + 1.0 / step, "val/error": floor + 2.0 / step})


def unstable_above(trial) -> None:
    """A loss that falls for lr <= 0.01 (best at 0.01), spikes and climbs for larger rates."""
    lr = trial.params["lr"]
    floor = 0.1 + abs(math.log10(lr) + 2)
    for step in range(1, trial.max_train_steps + 1):
        loss = floor + 2.0 * math.exp(-step / 30)
        if lr > 0.02:
            loss += 0.02 * max(0, step - 100)  # climbs back: unstable
        trial.log(step, **{"train/loss": loss})
        if step % trial.params.get("eval_every", 5) == 0:
            trial.log(step, **{"val/error": loss})


def cliff(trial) -> None:
    """Best near lr = 0.03, diverging (NaN) above lr = 0.05: an infeasible region next to the optimum."""
    lr = trial.params["lr"]
    floor = (math.log10(lr) - math.log10(0.03)) ** 2
    for step in range(1, trial.max_train_steps + 1):
        trial.log(step, **{"val/error": float("nan") if lr > 0.05 else floor + 1.0 / step})


def rendezvous(trial) -> None:
    """Waits until trials in two different processes run at the same time (folder: $TB_TEST_RENDEZVOUS)."""
    folder = os.environ["TB_TEST_RENDEZVOUS"]
    open(os.path.join(folder, str(os.getpid())), "w").close()
    deadline = time.monotonic() + 600
    while len(os.listdir(folder)) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError("no second worker process ran a trial at the same time")
        time.sleep(0.05)
    trial.log(1, **{"val/error": trial.params["lr"], "threads": float(os.environ.get("OMP_NUM_THREADS", "0"))})


def slow_curve(trial) -> None:
    """A point every 0.2 s (a run a page can watch): val/error falls towards a floor set by lr and wd."""
    lr, wd = trial.params["lr"], trial.params.get("wd", 0.0)
    floor = 0.05 + 0.1 * abs(math.log10(lr) + 2) + wd
    for step in range(1, trial.max_train_steps + 1):
        trial.log(step, **{"val/error": floor + 1.0 / step, "train/loss": floor + 0.5 / step})
        time.sleep(0.2)


def slow_noisy(trial) -> None:
    """:func:`noisy`, a second per step: long enough to be killed while it runs."""
    rng = np.random.default_rng(trial.seed)
    floor = (math.log10(trial.params["lr"]) + 2) ** 2 + float(trial.params.get("shift", 0.0)) + 0.01 * rng.standard_normal()
    for step in range(1, trial.max_train_steps + 1):
        trial.log(step, **{"train/loss": floor + 1.0 / step, "val/error": floor + 2.0 / step})
        time.sleep(1.0)


def catches_interrupt(trial) -> None:
    """Like pytorch/examples' word_language_model: Ctrl-C is caught, "Exiting from training early", return.

    Logs val/error every step, sleeping $TB_TEST_DELAY s a step; appends "step <number> <step>" to $TB_TEST_LOG."""
    log = os.environ.get("TB_TEST_LOG")
    delay = float(os.environ.get("TB_TEST_DELAY", "0.05"))
    try:
        for step in range(1, trial.max_train_steps + 1):
            trial.log(step, **{"val/error": 1.0 / step})
            if log:
                with open(log, "a") as f:
                    f.write(f"step {trial.number} {step}\n")
            time.sleep(delay)
    except KeyboardInterrupt:
        print("-" * 20 + "\nExiting from training early", flush=True)


def stops_at_a_third(trial) -> None:
    """Returns after a third of max_train_steps without saying why."""
    for step in range(1, trial.max_train_steps // 3 + 1):
        trial.log(step, **{"val/error": 1.0 / step})


def stops_at_a_third_saying_why(trial) -> None:
    """Returns after a third of max_train_steps, having said why (trial.end)."""
    for step in range(1, trial.max_train_steps // 3 + 1):
        trial.log(step, **{"val/error": 1.0 / step})
    trial.end("early stopping: val/error stopped improving")


def evaluates_every_tenth_step(trial) -> None:
    """Runs to its end, logging only every 10 steps from step 0 (its last point is max_train_steps - 10)."""
    for step in range(0, trial.max_train_steps, 10):
        trial.log(step, **{"val/error": 1.0 / (step + 1)})


def rate_schedule(trial) -> None:
    """Progress in proportion to the learning rate: val/error = 0.1 + exp(-sum of the rates so far / 4) plus a
    seed's offset (sd 0.01) and a run's own noise (sd 0.002). ``schedule`` "cosine" (default: decays to 0 at
    max_train_steps) or "constant"; ``lr`` the peak (best near 1: larger rates overshoot, see below). Logs ``lr``
    every step (unless ``log_lr`` is False) and val/error every 5 steps: a run twice as long learns about twice
    as much, however flat its decayed end looks."""
    lr = float(trial.params["lr"])
    steps = trial.max_train_steps
    seed_rng = np.random.default_rng(trial.seed)
    offset = 0.01 * seed_rng.standard_normal()
    run_rng = np.random.default_rng([trial.seed, steps])
    penalty = 0.2 * math.log10(lr) ** 2  # a bowl in log lr, best at 1
    total = 0.0
    for step in range(1, steps + 1):
        rate = lr if trial.params.get("schedule", "cosine") == "constant" else lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / steps))
        total += min(rate, 1.0)
        if trial.params.get("log_lr", True):
            trial.log(step, lr=rate)
        if step % 5 == 0 or step == steps:
            value = 0.1 + math.exp(-total / 4) + penalty + offset + 0.002 * run_rng.standard_normal()
            trial.log(step, **{"val/error": value, "train/loss": value})
