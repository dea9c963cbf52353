"""Run independent per-frame work on a few threads (numpy and scipy release the GIL).

Results do not depend on the number of workers (the simulator gives every frame its own random
stream).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Threads to use: the CPU count, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def map_ordered(
    fn: Callable[[T], R], items: Iterable[T], workers: int | None = None
) -> Iterator[R]:
    """``map(fn, items)`` on a thread pool, results in input order.

    Parameters
    ----------
    fn : callable
        Work on one item; exceptions (e.g. a cancel) propagate to the caller.
    items : iterable
    workers : int, optional
        Number of threads; 1 runs in the calling thread. Default :func:`default_workers`.
    """
    n = default_workers() if workers is None else int(workers)
    if n <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=n) as pool:
        yield from pool.map(fn, items)
