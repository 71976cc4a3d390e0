"""Per-series manifest records in O(1): a journal beside ``manifest.json``, compacted by a full
write.

``manifest.json`` holds every series of a store (status, fingerprint, timings, errors), so
rewriting it after each finished series costs time proportional to the archive: on 10,000
series, ~10,000 x 3 MB. Instead, a run appends each finished series' entry as one JSON line to a
journal in ``manifest.json.d/`` (locally: open, append, close, fsync at most once per
:data:`FSYNC_INTERVAL`; on object stores: a new small shard object at most once per
:data:`SHARD_INTERVAL` holding the lines since the last one), and rewrites ``manifest.json`` only
at the start and the end of the run. :func:`replay` applies the journal over ``manifest.json``
(later lines win; a line torn by a kill mid-write is ignored), which is what
:meth:`gridflux.pipeline.store.Store.read_manifest` returns, so a run killed at any point resumes
from every series whose line was written, and every reader sees them. A full write of
``manifest.json`` supersedes the journal, which :func:`clear` then removes.

A series' line is written only after its totals are written, as its manifest entry always was:
a series is ``done`` in the manifest only when its data are in the store. On a store of layout 2
the workers wrote the totals before their tasks returned
(:func:`gridflux.pipeline.store.write_totals_blocks`); on one of layout 1 the series of one
finished task (a batch of short series) are written together: their totals in one call
(:meth:`TotalsWriter.write_many`), then their lines in one append (:meth:`Journal.record_many`),
so a kill between the two, or mid-append, leaves each of them recorded whole or not at all.

:class:`TotalsWriter` writes series' totals through a zarr array opened once per run (opening
it per series read the array's metadata each time: ~10 ms per series).
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import time
from typing import Any

import numpy as np

from gridflux.errors import StoreError

JOURNAL_DIR = "manifest.json.d"
FSYNC_INTERVAL = 1.0  # seconds between fsyncs of a local journal
SHARD_INTERVAL = 1.0  # seconds between shard objects of a remote journal


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def journal_files(fs: Any, directory: str) -> list[str]:
    """The journal's files, oldest first (their names start with a zero-padded time in ns)."""
    try:
        names = fs.ls(directory, detail=False)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(
        (n for n in names if posixpath.basename(n).endswith(".jsonl")), key=posixpath.basename
    )


def replay(fs: Any, directory: str, manifest: dict) -> dict:
    """``manifest`` with the journal's entries applied (in order; a torn last line is ignored)."""
    series = manifest.setdefault("series", {})
    for path in journal_files(fs, directory):
        try:
            text = fs.cat(path).decode()
        except FileNotFoundError:  # removed by a compaction meanwhile: its lines are in the JSON
            continue
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:  # a line cut short by a kill mid-write: not recorded
                continue
            if isinstance(rec, dict) and "key" in rec and "entry" in rec:
                series[rec["key"]] = rec["entry"]
    return manifest


def clear(fs: Any, directory: str) -> None:
    """Remove the journal (after ``manifest.json`` was written with everything it held)."""
    for path in journal_files(fs, directory):
        with contextlib.suppress(FileNotFoundError):
            fs.rm(path)


class Scrubber:
    """:func:`gridflux.ingest.remote.scrub_tree` with the scrubbed form of each string remembered:
    the same result, but the entries of a run repeat most of their strings (the keys of every
    entry, members, variables, ensembles, fx paths), and each string's scrub runs two regular
    expressions and walks the storage options (a measurable driver cost per series otherwise)."""

    MAX = 65536  # strings remembered (then forgotten all at once)

    def __init__(self, storage_options: dict | None):
        self.options = storage_options
        self.memo: dict[str, str] = {}

    def __call__(self, obj: Any) -> Any:
        from gridflux.ingest.remote import scrub_tree

        if isinstance(obj, str):
            hit = self.memo.get(obj)
            if hit is None:
                if len(self.memo) >= self.MAX:
                    self.memo.clear()
                hit = self.memo[obj] = scrub_tree(obj, self.options)
            return hit
        if isinstance(obj, dict):
            return {self(k): self(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self(v) for v in obj]
        return scrub_tree(obj, self.options)  # numbers, None, other objects: as scrub_tree does


class Journal:
    """Appends per-series manifest entries to the journal of one store (see the module docstring).

    Parameters
    ----------
    fs : the store's fsspec file system
    directory : the journal directory (``<store>/manifest.json.d``)
    store : the :class:`~gridflux.pipeline.store.Store`, when there is one: its entries are then
        scrubbed as ``Store.write_manifest`` scrubs the manifest (no credentials, URLs by their
        identity), nothing is written once its lock was taken over by another run, and a refused
        write is the store's one-line :class:`~gridflux.errors.StoreError`
    """

    def __init__(self, fs: Any, directory: str, store: Any = None):
        self.fs, self.directory, self.store = fs, directory, store
        self.local = _is_local(fs)
        self.name = f"{time.time_ns():020d}-{os.getpid()}"
        self.seq = 0
        self.buffer: list[str] = []
        self.last_sync = time.monotonic()
        self.records = 0  # the directory is made by the first record (not before the store)
        self.scrub: Scrubber | None = None

    def record(self, key: str, entry: dict) -> None:
        """Append one series' manifest entry (O(1): independent of the number of series)."""
        self.record_many([(key, entry)])

    def record_many(self, entries: list[tuple[str, dict]]) -> None:
        """Append the entries of several series (a finished batch) in one write: O(entries),
        independent of the number of series in the store. A kill mid-write leaves whole lines
        before a torn last one (ignored by :func:`replay`): each series is recorded or not."""
        if not entries:
            return
        if self.store is not None:
            lock = getattr(self.store, "lock", None)
            if lock is not None and lock.lost:  # another run took the store over: stop writing
                raise StoreError(
                    f"store {self.store.url}: the lock of this run was taken over by another run "
                    "(its heartbeat was older than store.lock-timeout); this run stops writing"
                )
            if self.scrub is None:
                self.scrub = Scrubber(self.store.storage_options)
            entries = [(key, self.scrub(entry)) for key, entry in entries]
        text = "".join(
            json.dumps({"key": key, "entry": entry}, sort_keys=True, default=str) + "\n"
            for key, entry in entries
        )
        self.records += len(entries)
        try:
            self._append(text)
        except OSError as exc:
            if self.store is not None:
                raise self.store.write_error("the manifest journal", exc) from exc
            raise

    def _append(self, lines: str) -> None:
        if self.local:
            os.makedirs(self.directory, exist_ok=True)  # a compaction may have removed it
            path = posixpath.join(self.directory, f"{self.name}.jsonl")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                data = memoryview(lines.encode())
                while data:  # a short write (signal, quota) continues where it stopped
                    data = data[os.write(fd, data) :]
                if time.monotonic() - self.last_sync > FSYNC_INTERVAL:
                    os.fsync(fd)
                    self.last_sync = time.monotonic()
            finally:
                os.close(fd)
            return
        self.buffer.append(lines)
        if time.monotonic() - self.last_sync > SHARD_INTERVAL:
            self.flush()

    def flush(self) -> None:
        """Write the buffered lines (object stores) as one new shard object."""
        if self.buffer:
            self.seq += 1
            path = posixpath.join(self.directory, f"{self.name}-{self.seq:08d}.jsonl")
            try:
                self.fs.pipe(path, "".join(self.buffer).encode())
            except OSError as exc:
                if self.store is not None:
                    raise self.store.write_error("the manifest journal", exc) from exc
                raise
            self.buffer = []
        self.last_sync = time.monotonic()


class TotalsWriter:
    """Writes series' totals ``(region, time)`` into the store's ``totals`` array, opened once.

    A series' totals are its chunks of the array (one per region and time chunk,
    :func:`gridflux.pipeline.store.totals_chunks`), written as
    :meth:`gridflux.pipeline.store.Store.write_totals` writes them; the series is recorded done
    only after the write, so a write cut short by a kill is redone by the next run.
    :meth:`write_many` writes a finished batch's series in one call: their chunks written
    concurrently (zarr's asynchronous writes), a chunk that several of them share (a store chunked
    by several members) read and written once."""

    def __init__(self, store: Any):
        self.store = store
        self.array: Any = None

    def _array(self) -> Any:
        if self.array is None:
            import zarr

            self.array = zarr.open_array(self.store.zarr_store(), path="totals", mode="r+")
        return self.array

    def write(self, member_index: int, variable_index: int, values: np.ndarray) -> None:
        """Write one series' totals."""
        try:
            self._array()[member_index, variable_index] = np.asarray(values, dtype=np.float64)
        except OSError as exc:
            raise self.store.write_error("totals", exc) from exc

    def write_many(self, series: list[tuple[int, int, np.ndarray]]) -> None:
        """Write several series' totals ``(member index, variable index, (region, time))`` in one
        call (all of them, or an error: a series is recorded done only after this returns)."""
        if len(series) <= 1:
            for m, v, values in series:
                self.write(m, v, values)
            return
        import asyncio

        from zarr.core.sync import sync

        arr = self._array()
        cm, cv = arr.chunks[0], arr.chunks[1]
        by_chunk: dict[tuple[int, int], list[tuple[int, int, np.ndarray]]] = {}
        for m, v, values in series:
            by_chunk.setdefault((m // cm, v // cv), []).append((m, v, values))
        target = arr.async_array
        nm, nv = arr.shape[0], arr.shape[1]

        async def one_chunk(writes: list[tuple[int, int, np.ndarray]]) -> None:
            if len(writes) == 1:
                m, v, values = writes[0]
                await target.setitem((m, v), np.asarray(values, dtype=np.float64))
                return
            # several series in one chunk: read it once, write it once (this process is the only
            # writer of totals, so nothing changes it in between)
            m0, v0 = writes[0][0] // cm * cm, writes[0][1] // cv * cv
            sel = (slice(m0, min(m0 + cm, nm)), slice(v0, min(v0 + cv, nv)))
            block = np.array(await target.getitem(sel), dtype=np.float64)
            for m, v, values in writes:
                block[m - m0, v - v0] = values
            await target.setitem(sel, block)

        async def all_chunks() -> None:
            await asyncio.gather(*(one_chunk(w) for w in by_chunk.values()))

        try:
            sync(all_chunks())
        except OSError as exc:
            raise self.store.write_error("totals", exc) from exc
