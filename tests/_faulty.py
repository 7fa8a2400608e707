"""Training functions that misbehave, for the reliability and poison tests (importable by workers)."""

from __future__ import annotations

import os


class Poison(BaseException):
    """A custom BaseException: not an Exception, so it slips past ``except Exception``."""


def tagged(trial) -> None:
    """Checkpoints {"tag": <fixed tag>, "step": s} at every step; logs what a resume restored."""
    restored = trial.restore()
    start = 1 if restored is None else restored.state["step"] + 1
    if restored is not None:
        trial.log(start, restored_from=float(restored.state["step"]), restored_tag=float(restored.state["tag"]))
    for step in range(start, trial.max_train_steps + 1):
        trial.log(step, **{"val/error": 1.0 / step})
        trial.checkpoint(step, {"tag": trial.params["tag"], "step": step})
        exit_at = int(os.environ.get("TB_EXIT_AT", "0"))
        if step == exit_at and restored is None:
            trial.best_checkpoint()  # waits until the checkpoint written in the background is on disk
            trial.flush()
            os._exit(3)


def exits_zero(trial) -> None:
    trial.log(1, **{"val/error": 1.0})
    raise SystemExit(0)


def exits_hard(trial) -> None:
    trial.log(1, **{"val/error": 1.0})
    trial.flush()
    os._exit(3)  # the code a worker exits with when it gives up on an infrastructure fault: not one here


def exits_75(trial) -> None:
    trial.log(1, **{"val/error": 1.0})
    trial.flush()
    os._exit(75)  # the code a worker exits with when it caught a training function's exit: not one here


def raises_poison(trial) -> None:
    raise Poison("from the training function")


def raises_with_nul(trial) -> None:
    trial.log(1, **{"val/error": 1.0})
    raise ValueError("bad \x00 byte in the message")


def nul_in_sysexit(trial) -> None:
    raise SystemExit("bye\x00")


def fills_the_disk(trial) -> None:
    """Checkpoints a large state every step: on a small tmpfs the disk fills up (ENOSPC)."""
    blob = os.urandom(int(os.environ.get("TB_BLOB", "300000")))
    for step in range(1, trial.max_train_steps + 1):
        trial.log(step, **{"val/error": 1.0 / step})
        trial.checkpoint(step, {"blob": blob, "step": step})


def slow_steps(trial) -> None:
    """Logs a point per step, sleeping in between: long enough to restart a server under it."""
    import time

    restored = trial.restore()
    start = 1 if restored is None else restored.state["step"] + 1
    for step in range(start, trial.max_train_steps + 1):
        trial.log(step, **{"val/error": 1.0 / step})
        if step % 5 == 0:
            trial.checkpoint(step, {"step": step})
        time.sleep(float(os.environ.get("TB_STEP_DELAY", "0.1")))


def ray_victim(trial) -> None:
    """First attempt: writes its PID to $TB_PID_FILE and trains slowly (a test SIGKILLs it); then finishes."""
    import time

    if trial.attempt == 1:
        with open(os.environ["TB_PID_FILE"], "w") as f:
            f.write(str(os.getpid()))
        for step in range(1, 6000):
            trial.log(step, **{"val/error": 1.0})
            time.sleep(0.1)
    for step in range(1, trial.max_train_steps + 1):
        trial.log(step, **{"val/error": 1.0 / step})


def eio_every_time(trial) -> None:
    """The disk under the training fails at every attempt (an I/O error): never the user's code."""
    import errno

    trial.log(1, **{"val/error": 1.0})
    raise OSError(errno.EIO, "Input/output error", "/data/shard-0")
