"""Periodic evaluation at step intervals, with correctly weighted partial batches.

The playbook ("Setting up periodic evaluations"): evaluate at regular *step*
intervals, not time intervals; use an evaluation batch size at least as large
as the training one; weight padded examples of a partial batch by zero so the
metric is exact; for imbalanced data track per-class counts.

Nothing here reads a value back to the host until the whole evaluation is
done: counts and sums accumulate as device tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch


@dataclass(frozen=True)
class PeriodicAction:
    """Decides *when* by step: every ``every_steps`` steps, and at ``last_step`` if given.

    >>> evaluate = PeriodicAction(every_steps=100, last_step=250)
    >>> [s for s in range(1, 251) if evaluate(s)]
    [100, 200, 250]
    """

    every_steps: int
    last_step: int | None = None
    first_step: int | None = None

    def __post_init__(self) -> None:
        if self.every_steps < 1:
            raise ValueError("every_steps must be at least 1")

    def __call__(self, step: int) -> bool:
        return step % self.every_steps == 0 or step == self.last_step or step == self.first_step


def eval_batch_size(train_batch_size: int, requested: int | None = None) -> int:
    """The playbook's rule: evaluation batches at least as large as training ones."""
    return max(train_batch_size, requested or 0)


def padded_batches(
    inputs: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Fixed-size batches ``(x, y, weight)``; the last one is padded, with weight 0 on the padding.

    Fixed shapes keep compiled or graph-captured evaluation steps from retracing.
    """
    n = len(inputs)
    for start in range(0, n, batch_size):
        x, y = inputs[start:start + batch_size], labels[start:start + batch_size]
        real = len(x)
        weight = torch.ones(batch_size, device=inputs.device)
        if real < batch_size:
            pad = batch_size - real
            x = torch.cat([x, x[:1].expand(pad, *x.shape[1:])])
            y = torch.cat([y, y[:1].expand(pad, *y.shape[1:])])
            weight[real:] = 0.0
        yield x, y, weight


@dataclass
class EvalResult:
    """Weighted totals of one evaluation; ``metrics()`` turns them into numbers (one host sync)."""

    examples: torch.Tensor
    loss_sum: torch.Tensor
    correct: torch.Tensor
    per_class_correct: torch.Tensor | None
    per_class_count: torch.Tensor | None

    def metrics(self, prefix: str = "val") -> dict[str, torch.Tensor]:
        """``{prefix}/loss``, ``{prefix}/error`` and, with per-class counts, ``{prefix}/balanced_error`` (tensors)."""
        out = {
            f"{prefix}/loss": self.loss_sum / self.examples,
            f"{prefix}/error": 1.0 - self.correct / self.examples,
        }
        if self.per_class_correct is not None and self.per_class_count is not None:
            present = self.per_class_count > 0
            recall = self.per_class_correct[present] / self.per_class_count[present]
            out[f"{prefix}/balanced_error"] = 1.0 - recall.mean()
        return out


@torch.no_grad()
def evaluate_classifier(
    model: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    num_classes: int | None = None,
) -> EvalResult:
    """Weighted cross-entropy and accuracy over ``(x, y, weight)`` batches (see :func:`padded_batches`)."""
    import torch.nn.functional as F

    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()  # type: ignore[union-attr]
    examples = loss_sum = correct = None
    per_class_correct = per_class_count = None
    try:
        for x, y, w in batches:
            logits = model(x)
            loss = F.cross_entropy(logits, y, reduction="none")
            hit = (logits.argmax(-1) == y).to(w.dtype) * w
            if examples is None:
                examples, loss_sum, correct = w.sum(), (loss * w).sum(), hit.sum()
            else:
                examples, loss_sum, correct = examples + w.sum(), loss_sum + (loss * w).sum(), correct + hit.sum()
            if num_classes is not None:
                count_b = torch.zeros(num_classes, device=w.device).index_add_(0, y, w)
                correct_b = torch.zeros(num_classes, device=w.device).index_add_(0, y, hit)
                per_class_count = count_b if per_class_count is None else per_class_count + count_b
                per_class_correct = correct_b if per_class_correct is None else per_class_correct + correct_b
    finally:
        if was_training and hasattr(model, "train"):
            model.train()  # type: ignore[union-attr]
    if examples is None:
        raise ValueError("evaluate_classifier: no batches")
    return EvalResult(examples, loss_sum, correct, per_class_correct, per_class_count)  # type: ignore[arg-type]


__all__ = ["EvalResult", "PeriodicAction", "eval_batch_size", "evaluate_classifier", "padded_batches"]
