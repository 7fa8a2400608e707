"""Helpers for the tests that race threads or processes on one store: start them together, collect what they
raised or reported, and join them all."""

from __future__ import annotations

import threading
from typing import Any, Callable


def race(target: Callable[[int], object], n: int) -> list[BaseException]:
    """Run ``target(i)`` for ``i`` in ``range(n)``, each in its own thread, all at once; join them all and return
    what they raised (``[]`` when none did: a test asserts that, so a failure in a thread is never lost)."""
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test, which asserts there are none
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def gather(procs: list[Any], out: Any, *, timeout: float, join_timeout: float | None = None) -> list[Any]:
    """What ``procs`` (started) put on the queue ``out``, each ending with ``None``; then joins them all.

    ``timeout``: the longest wait for one item (a hung process fails the test instead of hanging it)."""
    items, done = [], 0
    while done < len(procs):
        item = out.get(timeout=timeout)
        if item is None:
            done += 1
        else:
            items.append(item)
    for p in procs:
        p.join(timeout=join_timeout)
    return items
