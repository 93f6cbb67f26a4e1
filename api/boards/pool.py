"""Batches of notice boards on every core: chunks of grids printed by worker processes.

Workers fork from a forkserver (never from the caller, which may be a threaded web server
or a job thread) and die with the process that owns the pool. The inputs every chunk needs
(the board sources and the print options) are handed to each worker once, when it starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from geo.partition.shards import die_with_owner, forkserver_context, resolve_workers

__all__ = ["map_chunks"]

T = TypeVar("T")
#: ``fn(shared, index, chunk, tick)``: one chunk's result; *tick* (or ``None``) is called per item.
ChunkFn = Callable[[Any, int, list[str], Callable[[], None] | None], T]

_SHARED: Any = None


def _start(owner: int, shared: Any) -> None:
    global _SHARED  # noqa: PLW0603 - one worker process, one batch: set once when it starts
    die_with_owner(owner)
    _SHARED = shared


def _call(fn: ChunkFn, index: int, chunk: list[str]) -> Any:
    return fn(_SHARED, index, chunk, None)


def map_chunks(fn: ChunkFn, shared: Any, chunks: Sequence[list[str]], *, workers: int,
               progress: Callable[[int], None] | None = None) -> list[Any]:
    """``fn(shared, i, chunk, tick)`` for every chunk, in chunk order, on *workers* processes.

    Parameters
    ----------
    fn
        A module-level function (workers import it by name).
    shared
        Picklable inputs of every chunk, sent to each worker once.
    workers
        Processes (0 = every core). With one worker, or one chunk, the chunks run in this
        process and *progress* is told after every item; otherwise after every chunk.
    progress
        Called with the number of items done so far.
    """
    if workers < 0:
        raise ValueError(f"board_workers must be ≥ 0 (0 = every core); got {workers}; set the setting to 0 or more")
    workers = min(resolve_workers(workers), len(chunks))
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done)

    if workers <= 1:
        return [fn(shared, i, chunk, tick) for i, chunk in enumerate(chunks)]
    results: list[Any] = [None] * len(chunks)
    with ProcessPoolExecutor(max_workers=workers, mp_context=forkserver_context(["api.boards.service"]), initializer=_start,
                             initargs=(os.getpid(), shared)) as pool:
        pending: dict[Future, int] = {pool.submit(_call, fn, i, chunk): i for i, chunk in enumerate(chunks)}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    i = pending.pop(f)
                    results[i] = f.result()
                    done += len(chunks[i])
                    if progress:
                        progress(done)
        except BaseException:
            for f in pending:
                f.cancel()
            raise
    return results
