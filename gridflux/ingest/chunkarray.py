"""Lazily indexed backend arrays: a :class:`gridflux.ingest.chunkread.ChunkReader` as xarray sees
it, and a series' files joined along time.

:func:`gridflux.ingest.catalog.open_series` swaps :class:`DeflateChunkArray` in for a series' data
variable when the variable can be read by chunk (local netCDF-4, deflate, optionally shuffle),
before xarray's CF decoding (fill values, scale/offset), so decoding and every later step are
unchanged. It joins a series of several files with :class:`TimeConcatenatedArray` *before* the data
become a dask array: dask's ``concatenate`` would put a layer between a later selection (a block's
latitude rows) and the file reads, so every read would be of whole fields.
"""

from __future__ import annotations

import numpy as np
from xarray.backends import BackendArray
from xarray.core import indexing

from gridflux.ingest.chunkread import ChunkReader


class DeflateChunkArray(BackendArray):
    """Basic-indexed backend array over a :class:`ChunkReader`.

    Pickles as (path, variable, shape, dtype): a dask worker that receives it opens the file when it
    first reads. Tokenized (by dask, for the name of the dask array xarray makes of it) by path,
    variable, file size and modification time, without pickling: dask's pickle check would unpickle
    it, and every unpickled copy that opened its file cost ~3 ms per file."""

    def __init__(
        self,
        path: str,
        variable: str,
        reader: ChunkReader | None = None,
        *,
        shape: tuple[int, ...] | None = None,
        dtype: np.dtype | None = None,
    ):
        self.path, self.variable = path, variable
        self._reader = reader
        if shape is None or dtype is None:
            shape, dtype = self.reader.shape, self.reader.dtype
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    @property
    def reader(self) -> ChunkReader:
        if self._reader is None:
            self._reader = ChunkReader(self.path, self.variable)
        return self._reader

    def __getstate__(self) -> dict:
        return {
            "path": self.path,
            "variable": self.variable,
            "shape": self.shape,
            "dtype": self.dtype.str,
        }

    def __setstate__(self, state: dict) -> None:
        self.__init__(
            state["path"], state["variable"], shape=state.get("shape"), dtype=state.get("dtype")
        )

    def __dask_tokenize__(self) -> tuple:
        import os

        st = os.stat(self.path)
        return (
            "gridflux-deflate-chunk-array",
            os.path.realpath(self.path),
            self.variable,
            st.st_size,
            st.st_mtime_ns,
            self.shape,
            self.dtype.str,
        )

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._getitem
        )

    def _getitem(self, key: tuple) -> np.ndarray:
        spans, picks = [], []
        for k, n in zip(key, self.shape, strict=True):
            if isinstance(k, (int, np.integer)):
                i = int(k) % n
                spans.append(slice(i, i + 1))
                picks.append(0)
            else:
                start, stop, step = k.indices(n)
                if step < 0:  # read the covered span ascending, reverse in memory
                    lo = stop + 1 if stop >= -1 else 0
                    spans.append(slice(lo, start + 1))
                    picks.append(slice(None, None, step))
                else:
                    spans.append(slice(start, max(start, stop)))
                    picks.append(slice(None, None, step))
        return self.reader.read(tuple(spans))[tuple(picks)]


def chunk_variable(var, path: str, name: str):
    """``var`` (an undecoded xarray Variable of file ``path``) backed by a
    :class:`DeflateChunkArray`
    when the variable can be read by chunk and has the same shape; else ``var`` itself."""
    import xarray as xr

    from gridflux.ingest.chunkread import open_reader

    reader = open_reader(path, name)
    if reader is None or reader.shape != tuple(var.shape):
        if reader is not None:
            reader.close()
        return var
    data = indexing.LazilyIndexedArray(DeflateChunkArray(path, name, reader))
    return xr.Variable(var.dims, data, var.attrs, var.encoding)


class RemoteChunkArray(DeflateChunkArray):
    """:class:`DeflateChunkArray` over a :class:`~gridflux.ingest.chunkread.RemoteChunkReader`: a
    remote netCDF-4 variable of which a selection fetches only its byte ranges.

    Holds the open :class:`~gridflux.ingest.remote.RemoteFile` (metadata block size): pickles as
    (that file, variable, shape, dtype), and the file pickles as its URL, options, policy and size,
    so a dask worker reopens it without a request and reads the metadata from its own block cache
    or one pass of small requests. Tokenized without a request: by the file's identity (the URL
    without secrets or signing parameters), its size, the variable, shape and dtype."""

    def __init__(
        self,
        remote_file,
        variable: str,
        reader=None,
        *,
        shape: tuple[int, ...] | None = None,
        dtype: np.dtype | None = None,
    ):
        self.remote_file = remote_file
        super().__init__(remote_file.name, variable, reader, shape=shape, dtype=dtype)

    @property
    def reader(self):
        if self._reader is None:
            from gridflux.ingest.chunkread import RemoteChunkReader

            self._reader = RemoteChunkReader(self.remote_file, self.variable)
        return self._reader

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "remote_file": self.remote_file}

    def __setstate__(self, state: dict) -> None:
        self.__init__(
            state["remote_file"], state["variable"], shape=state["shape"], dtype=state["dtype"]
        )

    def __dask_tokenize__(self) -> tuple:
        return (
            "gridflux-remote-chunk-array",
            self.remote_file.identity,
            self.remote_file.size,
            self.variable,
            self.shape,
            self.dtype.str,
        )


def remote_chunk_variable(var, remote_file, name: str):
    """``var`` (an undecoded xarray Variable of the remote netCDF-4 file ``remote_file``, a
    :class:`~gridflux.ingest.remote.RemoteFile`) backed by a :class:`RemoteChunkArray` when the
    variable can be read by chunk and has the same shape; else ``var`` itself."""
    import xarray as xr

    from gridflux.ingest.chunkread import RemoteChunkReader

    try:
        reader = RemoteChunkReader(remote_file, name)
    except Exception:  # noqa: BLE001 - unsupported filters, not HDF5: h5netcdf reads it
        return var
    if reader.shape != tuple(var.shape):
        reader.close()
        return var
    data = indexing.LazilyIndexedArray(RemoteChunkArray(remote_file, name, reader))
    return xr.Variable(var.dims, data, var.attrs, var.encoding)


class TimeConcatenatedArray(BackendArray):
    """Lazily indexed variables (one per file, CF-decoded, time first) joined along time.

    A basic selection is split at the files' boundaries and each part read through its file's own
    variable, so only the selected months and rows of each file are read."""

    def __init__(self, variables: list):
        if not variables:
            raise ValueError("no variables to join")
        rest = {tuple(v.shape[1:]) for v in variables}
        if len(rest) != 1:
            raise ValueError(f"the files' fields differ in shape beyond time: {sorted(rest)}")
        self.variables = list(variables)
        self.starts = np.cumsum([0] + [v.shape[0] for v in variables])
        self.shape = (int(self.starts[-1]), *rest.pop())
        self.dtype = np.result_type(*[v.dtype for v in variables])

    def __dask_tokenize__(self) -> tuple:
        from dask.base import tokenize

        return ("gridflux-time-concatenated-array", tokenize(*self.variables))

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._getitem
        )

    def _getitem(self, key: tuple) -> np.ndarray:
        t, rest = key[0], tuple(key[1:])
        if isinstance(t, (int, np.integer)):
            i = int(t) % self.shape[0]
            f = int(np.searchsorted(self.starts, i, side="right")) - 1
            return np.asarray(
                self.variables[f][(i - int(self.starts[f]),) + rest].values, dtype=self.dtype
            )
        start, stop, step = t.indices(self.shape[0])
        if step != 1:  # not asked by dask's chunk reads: read the covered span ascending, then pick
            months = np.arange(start, stop, step)
            if months.size == 0:
                return self._getitem((slice(0, 0), *rest))
            lo = int(months.min())
            return self._getitem((slice(lo, int(months.max()) + 1), *rest))[months - lo]
        parts = []
        for f, v in enumerate(self.variables):
            a, b = max(start, int(self.starts[f])), min(stop, int(self.starts[f + 1]))
            if a < b:
                local = slice(a - int(self.starts[f]), b - int(self.starts[f]))
                parts.append(np.asarray(v[(local,) + rest].values, dtype=self.dtype))
        if not parts:
            shape = [0] + [
                len(range(*k.indices(n)))
                for k, n in zip(rest, self.shape[1:], strict=False)
                if not isinstance(k, (int, np.integer))
            ]
            return np.empty(shape, dtype=self.dtype)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


def concat_time(variables: list):
    """One lazily indexed ``xr.Variable`` of ``variables`` (lazily indexed ``xr.Variable`` objects,
    same dims, time first) joined along time; attributes and encoding of the first."""
    import xarray as xr

    v0 = variables[0]
    data = indexing.LazilyIndexedArray(TimeConcatenatedArray(list(variables)))
    return xr.Variable(v0.dims, data, dict(v0.attrs), dict(v0.encoding))
