"""A small character-level language model: a 1-layer GRU on text from a seeded probabilistic grammar.

The text is generated, not downloaded: :func:`corpus` draws sentences from a
small probabilistic context-free grammar (determiners, adjectives, nouns,
verbs, prepositional phrases, coordination) with a fixed seed, so it is the
same on every machine and has structure at two levels (spelling inside words,
which word may follow which). 48,000 characters train, 8,000 validate (a
separate draw of sentences). The alphabet is the 26 lowercase letters the
grammar uses, a space and a full stop.

The model: a character embedding (16), one GRU layer (``hidden_units``, 32),
dropout on its outputs (``dropout``, 0), a linear read-out. About 6,000
parameters at the default width. Training windows of ``seq_len`` (16)
characters, ``batch_size`` (32) a step, each drawn from (data seed, step).

Hyperparameters (``trial.params``), with defaults: ``learning_rate`` (1e-2),
``optimizer`` ("adam"; sgd, momentum, nesterov, rmsprop, nadam) and its own
(``momentum``, ``beta1``, ``beta2``, ``epsilon``), ``schedule`` ("constant";
linear, cosine, rsqrt), ``warmup_steps`` (0), ``weight_decay`` (0, decoupled),
``grad_clip`` (none), ``hidden_units`` (32), ``dropout`` (0), ``seq_len`` (16),
``batch_size`` (32), ``eval_every`` (25).

Logged: ``train/loss`` (nats per character), ``grad/norm`` and ``lr`` every
step; ``val/bpc`` (bits per character, the objective to minimize),
``val/loss`` (nats per character) and ``train/eval_bpc`` (on a fixed slice of
the training text) every ``eval_every`` steps and at the last step.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

TRAIN_CHARS = 48_000
VAL_CHARS = 8_000
EVAL_LEN = 64  # validation windows (non-overlapping, the whole validation text)

_WORDS = {
    "det": (["the", "a", "every", "some", "no"], [0.4, 0.25, 0.1, 0.15, 0.1]),
    "adj": (["small", "red", "old", "quick", "quiet", "happy", "green"], None),
    "noun": (["cat", "dog", "bird", "man", "woman", "child", "tree", "house", "river", "fox"], None),
    "vt": (["sees", "likes", "finds", "follows", "hears", "watches"], None),
    "vi": (["sleeps", "runs", "sings", "waits", "laughs"], None),
    "prep": (["near", "under", "with", "behind"], None),
    "conj": (["and", "but"], [0.7, 0.3]),
}


def _sentence(rng: np.random.Generator) -> list[str]:
    def word(kind: str) -> str:
        words, p = _WORDS[kind]
        return words[rng.choice(len(words), p=p)]

    def noun_phrase(depth: int) -> list[str]:
        out = [word("det")]
        n_adj = rng.choice(3, p=[0.55, 0.35, 0.10])
        out += [word("adj") for _ in range(n_adj)]
        out.append(word("noun"))
        if depth < 2 and rng.random() < 0.2:
            out += [word("prep"), *noun_phrase(depth + 1)]
        return out

    def verb_phrase() -> list[str]:
        if rng.random() < 0.6:
            return [word("vt"), *noun_phrase(1)]
        return [word("vi")]

    words = noun_phrase(0) + verb_phrase()
    if rng.random() < 0.25:
        words += [word("conj"), *verb_phrase()]
    return words


def _text(seed: int, n_chars: int) -> str:
    rng = np.random.default_rng(seed)
    parts: list[str] = []
    size = 0
    while size < n_chars:
        sentence = " ".join(_sentence(rng)) + ". "
        parts.append(sentence)
        size += len(sentence)
    return "".join(parts)[:n_chars]


@lru_cache(maxsize=1)
def corpus() -> tuple[np.ndarray, np.ndarray, str]:
    """(train ids, validation ids, alphabet): int64 arrays of character ids into ``alphabet``."""
    train, val = _text(1, TRAIN_CHARS), _text(2, VAL_CHARS)
    alphabet = "".join(sorted(set(train) | set(val)))
    index = {c: i for i, c in enumerate(alphabet)}
    encode = lambda s: np.array([index[c] for c in s], dtype=np.int64)  # noqa: E731
    return encode(train), encode(val), alphabet


def build_model(params: dict[str, Any], vocab: int) -> Any:
    import torch
    from torch import nn

    hidden = int(params.get("hidden_units", 32))
    dropout = float(params.get("dropout", 0.0))

    class CharGRU(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab, 16)
            self.gru = nn.GRU(16, hidden, batch_first=True)
            self.drop = nn.Dropout(dropout)
            self.out = nn.Linear(hidden, vocab)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h, _ = self.gru(self.embed(x))
            return self.out(self.drop(h))

    return CharGRU()


def _task(params: dict[str, Any]) -> Any:
    import torch
    import torch.nn.functional as F

    from tunebook.workloads._loop import Task

    train_ids, val_ids, alphabet = corpus()
    vocab = len(alphabet)
    model = build_model(params, vocab)
    seq_len = int(params.get("seq_len", 16))
    train_t = torch.from_numpy(train_ids)
    n_val = len(val_ids) // (EVAL_LEN + 1)
    val_windows = torch.from_numpy(val_ids[: n_val * (EVAL_LEN + 1)].reshape(n_val, EVAL_LEN + 1))
    train_windows = torch.from_numpy(train_ids[: n_val * (EVAL_LEN + 1)].reshape(n_val, EVAL_LEN + 1))
    offsets = torch.arange(seq_len + 1)

    def batch(seed: int, step: int, batch_size: int) -> tuple[Any, Any]:
        starts = np.random.default_rng([seed, step]).integers(0, len(train_ids) - seq_len - 1, batch_size)
        windows = train_t[torch.from_numpy(starts)[:, None] + offsets]
        return windows[:, :-1], windows[:, 1:]

    def loss(m: Any, x: Any, y: Any) -> Any:
        return F.cross_entropy(m(x).reshape(-1, vocab), y.reshape(-1))

    def nats(m: Any, windows: Any) -> Any:
        return F.cross_entropy(m(windows[:, :-1]).reshape(-1, vocab), windows[:, 1:].reshape(-1))

    def evaluate(m: Any) -> dict[str, Any]:
        val = nats(m, val_windows)
        return {"val/loss": val, "val/bpc": val / math.log(2), "train/eval_bpc": nats(m, train_windows) / math.log(2)}

    return Task(model, batch, loss, evaluate, default_lr=1e-2, default_batch_size=32, default_eval_every=25)


def train(trial: Any) -> None:
    """The training function tunebook calls (see the module docstring)."""
    from tunebook.workloads._loop import fit

    fit(trial, _task)
