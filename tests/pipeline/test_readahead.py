"""Reading a series' blocks ahead of their computation (:mod:`gridflux.pipeline.readahead`).

Truths: the blocks a plain loop reads (order and values), the bound of the docstring (when the
caller holds block k no read of a block past k + ahead has started), reads that overlap (a
barrier two reads must reach together: it would time out if they ran one after another), errors
raised at their own block, and no read left running once the loop is closed.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from gridflux.pipeline.readahead import read_blocks

BLOCKS = [(0, 12), (12, 24), (24, 36), (36, 48), (48, 60), (60, 66)]


def _value_reader(started: list[int] | None = None):
    def read(i0: int, i1: int) -> np.ndarray:
        if started is not None:
            started.append(i0)
        return np.arange(i0, i1, dtype=np.float64)[:, None] * np.ones((1, 3))

    return read


@pytest.mark.parametrize("ahead", [0, 1, 2, 5, 10])
def test_blocks_come_in_order_with_the_values_a_plain_loop_reads(ahead):
    got = list(read_blocks(_value_reader(), BLOCKS, ahead))
    assert [b for b, _ in got] == BLOCKS
    for (i0, i1), x in got:
        np.testing.assert_array_equal(x, np.arange(i0, i1)[:, None] * np.ones((1, 3)))


@pytest.mark.parametrize("ahead", [1, 2, 3])
def test_no_more_than_ahead_blocks_are_read_beyond_the_one_held(ahead):
    started: list[int] = []
    it = read_blocks(_value_reader(started), BLOCKS, ahead)
    for k, ((i0, _), _) in enumerate(it):
        time.sleep(0.01)  # room for a read that should not start to start
        assert max(started) <= BLOCKS[min(k + ahead, len(BLOCKS) - 1)][0]
        assert i0 == BLOCKS[k][0]
    assert sorted(started) == [a for a, _ in BLOCKS]  # each block read once


def test_reads_ahead_overlap():
    """Two blocks read at the same time: each read waits at a barrier for the other."""
    barrier = threading.Barrier(2, timeout=10)

    def read(i0: int, i1: int) -> np.ndarray:
        if i0 < 24:  # blocks 0 and 1
            barrier.wait()
        return np.full(i1 - i0, float(i0))

    got = [b for b, _ in read_blocks(read, BLOCKS, 1)]
    assert got == BLOCKS


def test_without_read_ahead_reads_run_when_asked():
    started: list[int] = []
    it = read_blocks(_value_reader(started), BLOCKS, 0)
    next(it)
    time.sleep(0.01)
    assert started == [0]


def test_a_failed_read_is_raised_at_its_block():
    def read(i0: int, i1: int) -> np.ndarray:
        if i0 == 24:
            raise OSError("block 24 unreadable")
        return np.zeros(i1 - i0)

    seen = []
    with pytest.raises(OSError, match="block 24"):
        for block, _ in read_blocks(read, BLOCKS, 2):
            seen.append(block)
    assert seen == BLOCKS[:2]


def test_closing_the_loop_early_leaves_no_read_running():
    running = []
    lock = threading.Lock()
    finished: list[int] = []

    def read(i0: int, i1: int) -> np.ndarray:
        with lock:
            running.append(i0)
        time.sleep(0.05)
        with lock:
            running.remove(i0)
            finished.append(i0)
        return np.zeros(i1 - i0)

    it = read_blocks(read, BLOCKS, 2)
    next(it)
    it.close()
    assert running == []  # the reads started were waited for
    assert set(finished) <= {0, 12, 24}  # the ones not started never ran
