"""xarray's view of a :class:`gridflux.chunkread.ChunkReader`: a lazily indexed backend array.

:func:`gridflux.catalog.open_series` swaps it in for a series' data variable when the variable
can be read by chunk (local netCDF-4, deflate, optionally shuffle), before xarray's CF decoding
(fill values, scale/offset), so decoding and every later step are unchanged.
"""

from __future__ import annotations

import numpy as np
from xarray.backends import BackendArray
from xarray.core import indexing

from gridflux.chunkread import ChunkReader


class DeflateChunkArray(BackendArray):
    """Basic-indexed backend array over a :class:`ChunkReader`.

    Pickles as (path, variable): a dask worker that receives it opens the file itself."""

    def __init__(self, path: str, variable: str, reader: ChunkReader | None = None):
        self.path, self.variable = path, variable
        self._reader = reader
        self.shape, self.dtype = self.reader.shape, self.reader.dtype

    @property
    def reader(self) -> ChunkReader:
        if self._reader is None:
            self._reader = ChunkReader(self.path, self.variable)
        return self._reader

    def __getstate__(self) -> dict:
        return {"path": self.path, "variable": self.variable}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["variable"])

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self._getitem)

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
    """``var`` (an undecoded xarray Variable of file ``path``) backed by a :class:`DeflateChunkArray`
    when the variable can be read by chunk and has the same shape; else ``var`` itself."""
    import xarray as xr

    from gridflux.chunkread import open_reader

    reader = open_reader(path, name)
    if reader is None or reader.shape != tuple(var.shape):
        if reader is not None:
            reader.close()
        return var
    data = indexing.LazilyIndexedArray(DeflateChunkArray(path, name, reader))
    return xr.Variable(var.dims, data, var.attrs, var.encoding)
