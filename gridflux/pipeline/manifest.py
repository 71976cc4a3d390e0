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
a series is ``done`` in the manifest only when its data are in the store.

:class:`TotalsWriter` writes one series' totals through a zarr array opened once per run (opening
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

    def record(self, key: str, entry: dict) -> None:
        """Append one series' manifest entry (O(1): independent of the number of series)."""
        if self.store is not None:
            from gridflux.ingest.remote import scrub_tree

            lock = getattr(self.store, "lock", None)
            if lock is not None and lock.lost:  # another run took the store over: stop writing
                raise StoreError(
                    f"store {self.store.url}: the lock of this run was taken over by another run "
                    "(its heartbeat was older than store.lock-timeout); this run stops writing"
                )
            entry = scrub_tree(entry, self.store.storage_options)
        line = json.dumps({"key": key, "entry": entry}, sort_keys=True, default=str) + "\n"
        self.records += 1
        try:
            self._append(line)
        except OSError as exc:
            if self.store is not None:
                raise self.store.write_error("the manifest journal", exc) from exc
            raise

    def _append(self, line: str) -> None:
        if self.local:
            os.makedirs(self.directory, exist_ok=True)  # a compaction may have removed it
            path = posixpath.join(self.directory, f"{self.name}.jsonl")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line.encode())
                if time.monotonic() - self.last_sync > FSYNC_INTERVAL:
                    os.fsync(fd)
                    self.last_sync = time.monotonic()
            finally:
                os.close(fd)
            return
        self.buffer.append(line)
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
    only after the write, so a write cut short by a kill is redone by the next run."""

    def __init__(self, store: Any):
        self.store = store
        self.array: Any = None

    def write(self, member_index: int, variable_index: int, values: np.ndarray) -> None:
        try:
            if self.array is None:
                import zarr

                self.array = zarr.open_array(self.store.zarr_store(), path="totals", mode="r+")
            self.array[member_index, variable_index] = np.asarray(values, dtype=np.float64)
        except OSError as exc:
            raise self.store.write_error("totals", exc) from exc
