"""Reading a series' time blocks ahead of their computation (remote inputs).

A block of a remote series is a few dozen range requests: each waits a round trip (10-50 ms on
object storage) and costs the client some CPU to send and parse. Read one block after another and
the process idles through every round trip; read the next ``ahead`` blocks concurrently while the
current one is being computed and the round trips of several blocks overlap. :func:`read_blocks`
does that with ``ahead`` background threads and at most ``ahead`` blocks read beyond the one the
caller holds, so memory stays bounded by ``ahead + 1`` blocks.

The reads run at once in several threads: the reader must be thread-safe, as xarray's backends
and gridflux's chunk readers are (dask's threaded scheduler reads them the same way). Local files
are read without it: their reads are decoding, which competes for the same cores.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice

import numpy as np

#: ``read(i0, i1)``: the block of months ``[i0, i1)`` as an array
BlockReader = Callable[[int, int], np.ndarray]


def read_blocks(
    read: BlockReader, blocks: Sequence[tuple[int, int]], ahead: int
) -> Generator[tuple[tuple[int, int], np.ndarray], None, None]:
    """``((i0, i1), read(i0, i1))`` for each block, in order.

    Parameters
    ----------
    read : reads one block (thread-safe: called from ``ahead`` background threads at once)
    blocks : ``(i0, i1)`` month index ranges
    ahead : blocks read beyond the one the caller holds (0: each read when it is asked for)

    A read's error is raised where its block is yielded (the blocks before it are yielded first).
    When the caller stops early (an error while computing a block, or ``close()``), the blocks
    not yet started are cancelled and the one being read is waited for, so no read outlives the
    loop (the caller may close the files after it).
    """
    if ahead <= 0 or len(blocks) < 2:
        for i0, i1 in blocks:
            yield (i0, i1), read(i0, i1)
        return
    pool = ThreadPoolExecutor(max_workers=ahead + 1, thread_name_prefix="gridflux-read-ahead")
    todo = iter(blocks)
    pending: deque[tuple[tuple[int, int], Future[np.ndarray]]] = deque(
        (block, pool.submit(read, *block)) for block in islice(todo, ahead + 1)
    )
    try:
        while pending:  # the caller holds one block; ``ahead`` more are read or being read
            block, future = pending.popleft()
            data = future.result()
            yield block, data
            del data
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(read, *nxt)))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
