"""Choosing the batch size by measured training throughput.

The playbook ("Choosing the batch size"): the batch size governs training
speed and resource use, not validation performance. Try powers of two until
the accelerator runs out of memory; measure throughput (examples per second)
after warm-up; while the accelerator is not saturated, doubling the batch
size should about double throughput. Where it stops doing so, there is a
bottleneck (compute saturated, or the input pipeline). Recommend the largest
batch size that still raises throughput materially, and remember that a new
batch size means re-tuning most hyperparameters (learning rate first).

A *step factory* ``make_step(batch_size) -> step`` builds everything for one
batch size and returns a callable that runs one training step; throughput is
timed over ``steps`` calls after ``warmup`` calls, with one device
synchronization at the end of each timed window, never per step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from tunebook.procedures._common import Conclusion

#: Doubling the batch "nearly doubles" throughput when it multiplies it by at least this.
NEAR_DOUBLING = 1.8
#: A doubling that raises throughput by less than this share is not material.
MATERIAL_GAIN = 0.10


@dataclass(frozen=True)
class Measurement:
    batch_size: int
    seconds_per_step: float | None  # None: out of memory
    error: str | None = None

    @property
    def examples_per_second(self) -> float | None:
        return None if self.seconds_per_step is None else self.batch_size / self.seconds_per_step


def _synchronize() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def measure(
    make_step: Callable[[int], Callable[[], Any]],
    batch_sizes: list[int],
    *,
    warmup: int = 5,
    steps: int = 20,
    repeats: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> list[Measurement]:
    """Time each batch size (best of ``repeats`` windows of ``steps``), stopping at the first out-of-memory."""
    from tunebook.execution import is_out_of_memory

    out = []
    for bs in batch_sizes:
        try:
            step = make_step(bs)
            for _ in range(warmup):
                step()
            _synchronize()
            windows = []
            for _ in range(repeats):
                start = clock()
                for _ in range(steps):
                    step()
                _synchronize()  # once per window: the steps queue up on an accelerator
                windows.append((clock() - start) / steps)
            out.append(Measurement(bs, min(windows)))
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is expected here
            if not is_out_of_memory(exc):
                raise
            out.append(Measurement(bs, None, f"out of memory: {exc}".splitlines()[0]))
            break
    return out


def decide(measurements: list[Measurement], max_train_steps: int | None = None) -> Conclusion:
    """The recommendation from measured throughputs (pure: tested on known answers)."""
    ok = [m for m in measurements if m.seconds_per_step is not None]
    oom = next((m for m in measurements if m.seconds_per_step is None), None)
    rows = []
    for i, m in enumerate(ok):
        ratio = None if i == 0 else m.examples_per_second / ok[i - 1].examples_per_second  # type: ignore[operator]
        rows.append({"batch_size": m.batch_size, "seconds_per_step": m.seconds_per_step,
                     "examples_per_second": m.examples_per_second, "throughput_ratio_vs_half": ratio})
    evidence: dict[str, Any] = {"measurements": rows, "out_of_memory_at": oom.batch_size if oom else None,
                                "near_doubling": NEAR_DOUBLING, "material_gain": MATERIAL_GAIN}
    if not ok:
        return Conclusion("batch-size", "No batch size fits in memory: start from a smaller one.", evidence, concluded=False)
    recommended = ok[0]
    bottleneck = None
    for row, m in zip(rows[1:], ok[1:]):
        if bottleneck is None and row["throughput_ratio_vs_half"] < NEAR_DOUBLING:
            bottleneck = m.batch_size
        if row["throughput_ratio_vs_half"] >= 1 + MATERIAL_GAIN:
            recommended = m
        else:
            break  # past this point doubling no longer pays
    if max_train_steps:
        # The resource view: time per step x steps, with steps halving per doubling (perfect scaling from the smallest).
        base = ok[0]
        for row in rows:
            steps_needed = max_train_steps * base.batch_size / row["batch_size"]
            row["steps_if_perfect_scaling"] = round(steps_needed)
            row["training_time_seconds"] = row["seconds_per_step"] * steps_needed
    evidence.update({"recommended_batch_size": recommended.batch_size, "bottleneck_from": bottleneck})
    text = (f"Use batch size {recommended.batch_size} ({recommended.examples_per_second:.0f} examples/s): "
            "the largest that still raises throughput materially.")
    if bottleneck is not None:
        text += f" From {bottleneck} on, doubling the batch no longer nearly doubles throughput: a bottleneck (compute or input pipeline)."
    if oom is not None:
        text += f" {oom.batch_size} ran out of memory."
    text += " Changing the batch size means re-tuning most hyperparameters, the learning rate first."
    return Conclusion("batch-size", text, evidence)


def powers_of_two(low: int, high: int) -> list[int]:
    out, bs = [], max(1, low)
    while bs <= high:
        out.append(bs)
        bs *= 2
    return out


def record_in(storage: Any, result: Conclusion, *, step: str, experiment: str = "batch-size") -> Conclusion:
    """Write the batch-size conclusion to the notebook of ``storage`` (it belongs to no study), naming the step function."""
    storage.add_note("batch-size", result.conclusion, {**result.evidence, "step": step}, experiment=experiment)
    return result
