"""One write reaching several writers (the store, the objective tracker, the exporters)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from tunebook.writers.base import MetricWriter


class FanOutWriter(MetricWriter):
    """One write reaches every writer, in order; a writer that raises does not stop the others
    (the first error is raised once all were called)."""

    def __init__(self, writers: Sequence[MetricWriter]) -> None:
        self.writers = list(writers)

    def _each(self, method: str, *args: Any) -> None:
        error: BaseException | None = None
        for writer in self.writers:
            try:
                getattr(writer, method)(*args)
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        self._each("write_hparams", hparams)

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        error: Exception | None = None
        for writer in self.writers:  # the hot call (once per step): no getattr
            try:
                writer.write_scalars(step, scalars)
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        self._each("write_summary", summary)

    def flush(self) -> None:
        self._each("flush")

    def close(self) -> None:
        self._each("close")


__all__ = ["FanOutWriter"]
