"""Direct reads of netCDF-4/HDF5 chunks: deflated ones inflated with libdeflate, unfiltered ones by
exact byte ranges.

Almost every CMIP/TRENDY/ISIMIP file is netCDF-4 with the deflate filter (often with shuffle),
and reading it is inflating it: netCDF-C (like CDO and NCO) inflates with zlib; libdeflate (the
``deflate`` package) inflates the same zlib streams several times faster (docs/benchmarks.md,
"Figures the code relies on"), so gridflux reads such variables itself: h5py hands over each stored
chunk's bytes (``read_direct_chunk``: no filter runs), libdeflate inflates them, numcodecs undoes
the shuffle filter. No well-kept library does this (h5py, netCDF4 and hdf5plugin all inflate through
zlib; kerchunk/VirtualiZarr need a reference file first), hence this small module.

Unfiltered variables (chunked without filters, or contiguous) are stored as plain arrays: the
reader asks HDF5 once for each chunk's file offset and reads just the bytes of the selection with
``os.pread`` (a region's latitude rows of a time step are one byte range), where netCDF-C's
hyperslab read of the same rows runs at ~230 MB/s here.

Remote netCDF-4 objects (``s3://``, ``https://`` ...) are read the same way by
:class:`RemoteChunkReader`: HDF5's metadata and chunk index through h5py over a
:class:`gridflux.ingest.remote.RemoteFile` (small cached blocks, read once per file), then only the
byte ranges a selection needs, fetched concurrently with the retry rules of
:mod:`gridflux.ingest.remote`.

Only variables whose filters are exactly deflate, optionally after shuffle, or none at all are
read this way (:func:`supported` says why not otherwise, e.g. fletcher32, szip or zstd);
everything else stays with netCDF4. Values come back exactly as stored (no fill/scale decoding:
xarray's CF decoding is applied on top, see :mod:`gridflux.ingest.chunkarray`). numpy, h5py, deflate
and numcodecs only: no xarray import.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

H5Z_FILTER_DEFLATE, H5Z_FILTER_SHUFFLE = 1, 2
_PIPELINES_OK = ((), (H5Z_FILTER_DEFLATE,), (H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE))


def filter_pipeline(dset: Any) -> tuple[int, ...]:
    """The HDF5 filter ids of an h5py Dataset, in the order they run when writing."""
    plist = dset.id.get_create_plist()
    return tuple(int(plist.get_filter(i)[0]) for i in range(plist.get_nfilters()))


def supported(dset: Any) -> str | None:
    """None if ``dset`` (an h5py Dataset) can be read by :class:`ChunkReader`, else the reason."""
    if dset.dtype.kind not in "fiu":
        return f"dtype {dset.dtype}"
    if dset.chunks is None:
        return None if dset.id.get_offset() is not None else "contiguous but not yet written"
    pipeline = filter_pipeline(dset)
    if pipeline not in _PIPELINES_OK:
        return (
            f"filter pipeline {pipeline} (only none, or deflate (1), optionally after shuffle (2))"
        )
    return None


class ChunkReader:
    """Reads hyperslabs ``[t0:t1, ...]`` of one chunked (deflated or unfiltered) or contiguous
    variable of a local HDF5 file. A contiguous variable is read as if chunked by one index of its
    first dimension.

    Parameters
    ----------
    path : local file path
    variable : the variable's name (an HDF5 dataset at the file's root)
    """

    _fd: int | None  # the file's descriptor for unfiltered reads (local files)

    def __init__(self, path: str, variable: str):
        import h5py

        self.path, self.variable = path, variable
        self._file = h5py.File(path, "r")
        self._attach()
        self._fd = None if self._filtered else os.open(path, os.O_RDONLY)

    def _attach(self) -> None:
        """Find the variable in the open ``self._file``, check it, and derive the layout (closes
        the file when the variable cannot be read by chunk)."""
        try:
            self._dset = self._file[self.variable]
            why = supported(self._dset)
            if why:
                raise ValueError(
                    f"{self.path}: variable {self.variable!r} cannot be read by chunk: {why}"
                )
        except BaseException:
            self._file.close()
            raise
        d = self._dset
        self.shape: tuple[int, ...] = tuple(d.shape)
        self.dtype = d.dtype
        pipeline = filter_pipeline(d) if d.chunks is not None else ()
        self._contiguous_offset = d.id.get_offset() if d.chunks is None else None
        self.chunks: tuple[int, ...] = (
            tuple(d.chunks) if d.chunks is not None else (1, *self.shape[1:])
        )
        self._shuffled = bool(pipeline) and pipeline[0] == H5Z_FILTER_SHUFFLE
        self._filtered = bool(pipeline)
        self._chunk_bytes = int(np.prod(self.chunks)) * self.dtype.itemsize
        self._offsets: dict[tuple[int, ...], int | None] = {}
        self._fd = None
        fill = d.fillvalue
        self._fill = np.array(fill if fill is not None else 0, dtype=self.dtype)
        self._lock = threading.Lock()  # libhdf5 (h5py serialises too); inflating needs no lock
        self._kept: dict[tuple[int, ...], np.ndarray] = {}  # whole chunks kept by read_keeping
        self._keeping = False

    @property
    def file(self) -> Any:
        """The open ``h5py.File`` (for reading the file's coordinates without another library)."""
        return self._file

    def close(self) -> None:
        self._kept.clear()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._file.close()

    def __enter__(self) -> ChunkReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, key: tuple[slice, ...]) -> np.ndarray:
        """The values of ``key`` (one step-1 slice per dimension), as stored (no CF decoding)."""
        from itertools import product

        bounds = [s.indices(n)[:2] for s, n in zip(key, self.shape, strict=True)]
        out = np.empty(tuple(max(b - a, 0) for a, b in bounds), dtype=self.dtype)
        if out.size == 0:
            return out
        ranges = [range(a // c * c, b, c) for (a, b), c in zip(bounds, self.chunks, strict=True)]
        for origin in product(*ranges):
            src, dst = [], []
            for o, c, (a, b) in zip(origin, self.chunks, bounds, strict=True):
                lo, hi = max(a, o), min(b, o + c)
                src.append(slice(lo - o, hi - o))
                dst.append(slice(lo - a, hi - a))
            out[tuple(dst)] = self._chunk(origin, tuple(src))
        return out

    def read_keeping(self, key: tuple[slice, ...]) -> np.ndarray:
        """:meth:`read`, keeping each whole chunk it inflates for the next read that needs it
        (then dropped): a look at the first time step before the blocks are read decodes its
        chunks once, not twice. The values are those of :meth:`read`."""
        self._keeping = True
        try:
            return self.read(key)
        finally:
            self._keeping = False

    def _chunk(self, origin: tuple[int, ...], sub: tuple[slice, ...]) -> np.ndarray:
        """``chunk[sub]`` of the chunk at ``origin``, inflated (the fill value where it was never
        written). Only the selected elements are unshuffled when they are contiguous in the
        chunk."""
        if self._kept:
            whole = self._kept.pop(origin, None)
            if whole is not None:
                return whole[sub]
        if self._keeping:
            self._keeping = False
            try:
                whole = self._chunk(origin, tuple(slice(0, c) for c in self.chunks))
            finally:
                self._keeping = True
            self._kept[origin] = whole
            return whole[sub]
        if not self._filtered:
            return self._stored_chunk(origin, sub)
        failure: Exception | None = None
        with self._lock:
            try:
                mask, data = self._dset.id.read_direct_chunk(origin)
            except (KeyError, OSError, ValueError, RuntimeError) as exc:
                failure = exc
        if failure is not None:
            if self._chunk_offset(origin) is not None:  # allocated, yet unreadable
                raise self._unreadable(origin, failure) from failure
            return np.full(self.chunks, self._fill, dtype=self.dtype)[sub]  # never written
        return self._decode(origin, sub, mask, data)

    def _decode(self, origin: tuple[int, ...], sub: tuple[slice, ...], mask: int, data: bytes):
        """``chunk[sub]`` of the stored (filtered) bytes ``data`` of the chunk at ``origin``, whose
        HDF5 filter mask is ``mask``: inflated, unshuffled where the selection is contiguous."""
        import deflate

        # filter_mask bit i set: filter i of the pipeline (shuffle, deflate or just deflate) was
        # skipped for this chunk (HDF5 may skip an optional filter that fails)
        deflated = not (mask >> (1 if self._shuffled else 0)) & 1
        try:
            raw = deflate.zlib_decompress(data, self._chunk_bytes) if deflated else data
        except Exception as exc:  # noqa: BLE001 - deflate.DeflateError and friends
            raise self._unreadable(
                origin,
                exc,
                f"chunk at {origin} cannot be inflated ({type(exc).__name__}: {exc}); the file is "
                "corrupt or truncated",
            ) from exc
        if len(raw) != self._chunk_bytes:
            from gridflux.errors import InputError

            raise InputError(
                f"chunk at {origin} holds {len(raw)} bytes, expected {self._chunk_bytes}; the file "
                "is "
                "corrupt",
                path=self.path,
                variable=self.variable,
                attribute="data",
            )
        n = self._chunk_bytes // self.dtype.itemsize
        shuffled = self._shuffled and not mask & 1
        flat = _flat_range(sub, self.chunks)
        a, b = flat if flat is not None else (0, n)
        if shuffled:
            # the shuffled bytes of elements a:b are the a:b part of each byte plane: unshuffle only
            # those
            planes = np.frombuffer(raw, dtype=np.uint8, count=self._chunk_bytes).reshape(
                self.dtype.itemsize, n
            )
            values = _unshuffle(planes[:, a:b]).view(self.dtype).ravel()
        else:
            values = np.frombuffer(raw, dtype=self.dtype, count=n)[a:b]
        if flat is not None:
            return values.reshape(tuple(s.stop - s.start for s in sub))
        return values.reshape(self.chunks)[sub]

    def _unreadable(
        self, origin: tuple[int, ...], exc: BaseException, otherwise: str | None = None
    ) -> Exception:
        """The error of an allocated chunk that cannot be read or inflated: "truncated" when the
        file is shorter than its header or this chunk's index entry says, else ``otherwise``."""
        from gridflux.errors import InputError

        why = truncation(self.path)
        if why is None:
            with self._lock:
                info = self._dset.id.get_chunk_info_by_coord(origin)
            size = os.path.getsize(self.path)
            if info.byte_offset is not None and info.byte_offset + info.size > size:
                why = (
                    f"truncated: the chunk index puts chunk {origin} at bytes {info.byte_offset}-"
                    f"{info.byte_offset + info.size - 1}, the file has {size} bytes"
                )
        return InputError(
            why or otherwise or f"chunk at {origin} cannot be read ({type(exc).__name__}: {exc})",
            path=self.path,
            variable=self.variable,
            attribute="size" if why else "data",
        )

    def _stored_chunk(self, origin: tuple[int, ...], sub: tuple[slice, ...]) -> np.ndarray:
        """``chunk[sub]`` of an unfiltered chunk, read from the file by byte range."""
        offset = self._chunk_offset(origin)
        if offset is None:  # never written: the fill value
            return np.full(self.chunks, self._fill, dtype=self.dtype)[sub]
        item = self.dtype.itemsize
        flat = _flat_range(sub, self.chunks)
        a, b = flat if flat is not None else (0, self._chunk_bytes // item)
        fd = self._fd
        if fd is None:  # closed
            raise ValueError(f"{self.path}: the reader of {self.variable!r} is closed")
        raw = os.pread(fd, (b - a) * item, offset + a * item)
        if len(raw) != (b - a) * item:
            from gridflux.errors import InputError

            raise InputError(
                f"chunk at {origin} is cut short ({len(raw)} of {(b - a) * item} bytes at offset "
                f"{offset + a * item}); the file is truncated",
                path=self.path,
                variable=self.variable,
                attribute="data",
            )
        values = np.frombuffer(raw, dtype=self.dtype)
        if flat is not None:
            return values.reshape(tuple(s.stop - s.start for s in sub))
        return values.reshape(self.chunks)[sub]

    def _chunk_offset(self, origin: tuple[int, ...]) -> int | None:
        """The file offset of the stored chunk at ``origin`` (None: not allocated), asked once."""
        if self._contiguous_offset is not None:
            return self._contiguous_offset + origin[0] * self._chunk_bytes
        if origin not in self._offsets:
            with self._lock:
                info = self._dset.id.get_chunk_info_by_coord(origin)
            self._offsets[origin] = (
                None if info.byte_offset is None or info.size == 0 else int(info.byte_offset)
            )
        return self._offsets[origin]


def _unshuffle(planes: np.ndarray) -> np.ndarray:
    """HDF5's shuffle filter undone: byte planes ``(itemsize, n)`` -> ``(n, itemsize)`` element
    bytes.

    One strided copy per plane: as fast as numcodecs' compiled unshuffle (0.28 vs 0.29 ms for a
    1 MB float32 chunk, 0.56 vs 0.59 ms for float64), byte-order independent, and it spares a
    reading process the import of numcodecs (~25 ms, most of it its codec registry)."""
    itemsize, n = planes.shape
    out = np.empty((n, itemsize), dtype=np.uint8)
    for k in range(itemsize):
        out[:, k] = planes[k]
    return out


def _flat_range(sub: tuple[slice, ...], chunks: tuple[int, ...]) -> tuple[int, int] | None:
    """``(a, b)``: the selection ``sub`` of a C-ordered chunk is its flat elements ``a:b``; None if
    the selection is not contiguous (then the caller indexes the whole chunk)."""
    sizes = [s.stop - s.start for s in sub]
    first = next((i for i, k in enumerate(sizes) if k > 1), len(sizes) - 1)
    if any(
        (s.start, s.stop) != (0, c)
        for s, c in zip(sub[first + 1 :], chunks[first + 1 :], strict=True)
    ):
        return None
    # C order: the flat index of the first element, and the element count (plain integer
    # arithmetic: numpy's ravel_multi_index and prod cost ~10 us per call on tuples this small)
    a, count = 0, 1
    for s, c, k in zip(sub, chunks, sizes, strict=True):
        a = a * c + s.start
        count *= k
    return a, a + count


def selection_runs(sub: tuple[slice, ...], chunks: tuple[int, ...]) -> list[tuple[int, int]]:
    """The selection ``sub`` of a C-ordered chunk of shape ``chunks`` as flat element ranges
    ``[(a, b), ...]`` in C order (adjacent ranges merged): their elements, concatenated, are
    ``chunk[sub]`` in C order. E.g. rows 270:360 of every step of a (12, 360, 720) chunk are 12
    ranges of 90 x 720 elements."""
    from itertools import product

    strides = [int(np.prod(chunks[i + 1 :])) for i in range(len(chunks))]
    j = len(sub) - 1
    while j > 0 and (sub[j].start, sub[j].stop) == (0, chunks[j]):
        j -= 1
    run = (sub[j].stop - sub[j].start) * strides[j]
    out: list[tuple[int, int]] = []
    for idx in product(*[range(s.start, s.stop) for s in sub[:j]]):
        a = sum(i * st for i, st in zip(idx, strides, strict=False)) + sub[j].start * strides[j]
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], a + run)
        else:
            out.append((a, a + run))
    return out


#: More contiguous runs than this in one chunk (a scattered selection): fetch the whole chunk.
MAX_RUNS = 256


class RemoteChunkReader(ChunkReader):
    """A :class:`ChunkReader` of a netCDF-4/HDF5 object at a URL (``s3://``, ``https://`` ...):
    only the byte ranges a selection needs are fetched.

    HDF5's metadata (header, attributes, the chunk index: where each chunk is stored, its size and
    filter mask) is read through h5py over a :class:`~gridflux.ingest.remote.RemoteFile` whose
    small reads go through the process's block cache in blocks of ``remote.metadata-block-size``
    bytes, so it is read once per file and process; the chunk index is walked once
    (``chunk_iter``). A :meth:`read` then lists the byte ranges of its selection -- for an
    unfiltered (contiguous or chunked) variable exactly the selected elements (a region's latitude
    rows of each time step are one range), for a deflated one the whole stored chunks that hold
    them -- and fetches them concurrently (:func:`gridflux.ingest.remote.fetch_ranges`: at most
    ``remote.concurrency`` requests in flight, each retried and length-checked under the rules of
    :mod:`gridflux.ingest.remote`). Inflating and unshuffling are the local reader's, so values are
    bit-identical to a whole read.

    This module does not import :mod:`gridflux.ingest.remote` (which opens files through it):
    the caller hands over the open remote file (:func:`gridflux.ingest.remote.chunk_reader`).

    Parameters
    ----------
    remote_file : a :class:`~gridflux.ingest.remote.RemoteFile` (or any seekable file object with
        ``size``, ``name`` (for messages) and ``fetch_ranges(ranges) -> {range: bytes}``); its
        block size is that of the metadata reads
    variable : the variable's name (an HDF5 dataset at the file's root)
    """

    def __init__(self, remote_file: Any, variable: str):
        import h5py

        self.remote, self.variable = remote_file, variable
        self.path = remote_file.name  # what messages name (no secrets)
        self._file = h5py.File(remote_file, "r")
        self._attach()
        self._index: dict[tuple[int, ...], tuple[int, int, int]] | None = None

    def close(self) -> None:
        self._file.close()
        self.remote.close()

    def chunk_entry(self, origin: tuple[int, ...]) -> tuple[int, int, int] | None:
        """``(offset, stored bytes, filter mask)`` of the chunk at ``origin`` (None: never
        written), from the chunk index read once."""
        if self._contiguous_offset is not None:
            return (self._contiguous_offset + origin[0] * self._chunk_bytes, self._chunk_bytes, 0)
        if self._index is None:
            index: dict[tuple[int, ...], tuple[int, int, int]] = {}

            def visit(info: Any) -> None:
                if info.byte_offset is not None and info.size:
                    index[tuple(int(i) for i in info.chunk_offset)] = (
                        int(info.byte_offset),
                        int(info.size),
                        int(info.filter_mask),
                    )

            with self._lock:
                walk = getattr(self._dset.id, "chunk_iter", None)  # HDF5 >= 1.12.3 / 1.14
                if walk is None:  # look each chunk up instead (a descent of the index each)
                    for o in np.ndindex(
                        *[-(-n // c) for n, c in zip(self.shape, self.chunks, strict=True)]
                    ):
                        info = self._dset.id.get_chunk_info_by_coord(
                            tuple(i * c for i, c in zip(o, self.chunks, strict=True))
                        )
                        if info.byte_offset is not None and info.size:
                            visit(info)
                else:
                    walk(visit)
            self._index = index
        return self._index.get(origin)

    def byte_ranges(self, key: tuple[slice, ...]) -> list[tuple[int, int]]:
        """The byte ranges ``[(start, end), ...]`` that :meth:`read` of ``key`` fetches."""
        return [r for _, _, _, ranges in self._plan(key)[1] for r in ranges]

    def _plan(self, key: tuple[slice, ...]):
        """(output array, pieces): per chunk touched, ``(origin, src, dst, byte ranges)``: none for
        a chunk never written, the stored chunk for a filtered one, the selected runs of an
        unfiltered one (the whole chunk when the selection is scattered in more than
        :data:`MAX_RUNS` runs)."""
        from itertools import product

        bounds = [s.indices(n)[:2] for s, n in zip(key, self.shape, strict=True)]
        out = np.empty(tuple(max(b - a, 0) for a, b in bounds), dtype=self.dtype)
        pieces: list[tuple[tuple[int, ...], tuple[slice, ...], tuple[slice, ...], list]] = []
        if out.size == 0:
            return out, pieces
        item = self.dtype.itemsize
        ranges = [range(a // c * c, b, c) for (a, b), c in zip(bounds, self.chunks, strict=True)]
        for origin in product(*ranges):
            src, dst = [], []
            for o, c, (a, b) in zip(origin, self.chunks, bounds, strict=True):
                lo, hi = max(a, o), min(b, o + c)
                src.append(slice(lo - o, hi - o))
                dst.append(slice(lo - a, hi - a))
            entry = self.chunk_entry(origin)
            if entry is None:
                byte_ranges: list[tuple[int, int]] = []
            elif self._filtered:
                byte_ranges = [(entry[0], entry[0] + entry[1])]
            else:
                runs = selection_runs(tuple(src), self.chunks)
                if len(runs) > MAX_RUNS:
                    runs = [(0, self._chunk_bytes // item)]
                byte_ranges = [(entry[0] + a * item, entry[0] + b * item) for a, b in runs]
            pieces.append((origin, tuple(src), tuple(dst), byte_ranges))
        return out, pieces

    def read(self, key: tuple[slice, ...]) -> np.ndarray:
        """The values of ``key`` (one step-1 slice per dimension), as stored (no CF decoding);
        every byte range of the selection fetched concurrently."""
        out, pieces = self._plan(key)
        if not pieces:
            return out
        got = self.remote.fetch_ranges([r for p in pieces for r in p[3]])
        for origin, src, dst, ranges in pieces:
            if not ranges:  # never written: the fill value
                out[dst] = np.full(self.chunks, self._fill, dtype=self.dtype)[src]
                continue
            if self._filtered:
                entry = self.chunk_entry(origin)
                assert entry is not None  # it has ranges
                out[dst] = self._decode(origin, src, entry[2], got[ranges[0]])
                continue
            raw = got[ranges[0]] if len(ranges) == 1 else b"".join(got[r] for r in ranges)
            values = np.frombuffer(raw, dtype=self.dtype)
            if values.size == int(np.prod(self.chunks)) and values.size != out[dst].size:
                out[dst] = values.reshape(self.chunks)[src]  # a whole chunk (scattered selection)
            else:
                out[dst] = values.reshape(tuple(s.stop - s.start for s in src))
        return out

    def _unreadable(
        self, origin: tuple[int, ...], exc: BaseException, otherwise: str | None = None
    ) -> Exception:
        from gridflux.errors import InputError

        return InputError(
            otherwise or f"chunk at {origin} cannot be read ({type(exc).__name__}: {exc})",
            path=self.path,
            variable=self.variable,
            attribute="data",
        )


# -- truncation: the file's size against what its header says -------------------------------------
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# bytes per element of netCDF classic types (1 byte .. 6 double; CDF-5: 7 ubyte .. 11 uint64)
_CDF_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}


def expected_size(path: str) -> tuple[str, int] | None:
    """``(format, bytes)``: how long a netCDF/HDF5 file must be, read from its own header.

    HDF5 (netCDF-4): the superblock's base address plus its end-of-file address (found at offset
    0, 512, 1024, 2048 ... as the HDF5 format specification allows). netCDF classic (CDF-1, CDF-2
    64-bit offset, CDF-5): the end of the last variable's data, from the header's variable list
    (``begin`` offsets, dimension lengths, number of records). None when the file is neither, or
    its header is itself cut short.
    """
    with open(path, "rb") as f:
        head = f.read(8)
        if head[:3] == b"CDF" and len(head) == 8:
            f.seek(0)
            try:
                return "netCDF classic", _classic_expected_size(f)
            except (ValueError, IndexError, KeyError, EOFError):
                return None
        size = os.fstat(f.fileno()).st_size
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            if f.read(8) == _HDF5_SIGNATURE:
                return _hdf5_expected_size(f, pos)
            pos = 512 if pos == 0 else pos * 2
    return None


def _hdf5_expected_size(f: Any, at: int) -> tuple[str, int] | None:
    f.seek(at + 8)
    block = f.read(96)
    if len(block) < 16:
        return None
    version = block[0]
    if version in (0, 1):
        osize = block[5]
        start = 16 if version == 0 else 20  # after the fixed fields (+4: indexed storage K)
    elif version in (2, 3):
        osize = block[1]
        start = 4
    else:
        return None
    if osize not in (2, 4, 8) or len(block) < start + 3 * osize:
        return None

    def address(i: int) -> int:
        return int.from_bytes(block[start + i * osize : start + (i + 1) * osize], "little")

    base, eof = address(0), address(2)  # base, (free-space | extension), end of file
    return "HDF5", base + eof


def _classic_expected_size(f: Any) -> int:
    data = f.read(1 << 16)  # headers are small; a longer one is read on demand below
    pos = 0

    def take(n: int) -> bytes:
        nonlocal data, pos
        while pos + n > len(data):
            more = f.read(1 << 16)
            if not more:
                raise EOFError("header cut short")
            data += more
        out = data[pos : pos + n]
        pos += n
        return out

    version = take(4)[3]
    big = version == 5  # CDF-5: 8-byte counts and lengths
    nsize = 8 if big else 4
    offset_size = 4 if version == 1 else 8

    def count() -> int:
        return int.from_bytes(take(nsize), "big")

    def name() -> None:
        n = count()
        take(n + (-n) % 4)

    numrecs = count()
    if numrecs == (1 << (8 * nsize)) - 1:  # STREAMING: unknown number of records
        raise ValueError("streaming file")
    dims: list[int] = []
    tag, n = int.from_bytes(take(4), "big"), count()
    if tag == 0x0A:
        for _ in range(n):
            name()
            dims.append(count())

    def attributes() -> None:
        tag, n = int.from_bytes(take(4), "big"), count()
        if tag != 0x0C:
            return
        for _ in range(n):
            name()
            nc_type = int.from_bytes(take(4), "big")
            nbytes = count() * _CDF_TYPE_SIZE[nc_type]
            take(nbytes + (-nbytes) % 4)

    attributes()
    variables = []  # (is record variable, begin, unpadded bytes of one record or of all)
    tag, n = int.from_bytes(take(4), "big"), count()
    if tag == 0x0B:
        for _ in range(n):
            name()
            ids = [count() for _ in range(count())]
            attributes()
            nc_type = int.from_bytes(take(4), "big")
            count()  # vsize (capped for large variables: recomputed from the dimensions)
            begin = int.from_bytes(take(offset_size), "big")
            record = bool(ids) and dims[ids[0]] == 0
            shape = [dims[i] for i in (ids[1:] if record else ids)]
            variables.append((record, begin, int(np.prod(shape)) * _CDF_TYPE_SIZE[nc_type]))
    records = [v for v in variables if v[0]]
    if len(records) == 1:
        recsize = records[0][2]
    else:
        recsize = sum(b + (-b) % 4 for _, _, b in records)
    ends = [pos]
    for record, begin, nbytes in variables:
        if record and numrecs:
            ends.append(begin + (numrecs - 1) * recsize + nbytes)
        elif not record:
            ends.append(begin + nbytes)
    return max(ends)


def truncation(path: str) -> str | None:
    """Why a local netCDF/HDF5 file is truncated (its size against the size its header
    expects), or None when it is complete or not such a file. See :func:`expected_size`."""
    try:
        got = expected_size(path)
        size = os.path.getsize(path)
    except OSError:
        return None
    if got is None or size >= got[1]:
        return None
    fmt, want = got
    return (
        f"truncated: the file has {size} bytes but its {fmt} header says it ends at byte {want} "
        f"({want - size} bytes missing); an interrupted copy or download? Copy it again"
    )


def open_reader(path: str, variable: str) -> ChunkReader | None:
    """A :class:`ChunkReader` for the variable, or None when it cannot be read by chunk (any reason:
    the caller then reads through netCDF4)."""
    try:
        return ChunkReader(path, variable)
    except Exception:  # noqa: BLE001 - unsupported filters, not HDF5, missing: netCDF4 decides
        return None
