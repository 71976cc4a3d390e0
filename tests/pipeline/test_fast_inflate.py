"""Series opened with chunk reads (libdeflate, byte ranges) equal series opened through netCDF4."""

from __future__ import annotations

import numpy as np


def test_series_open_is_the_same_with_and_without_fast_inflate(mini_archive):
    """The canonical fields of the mini archive are bit-identical either way."""
    import gridflux.ingest.chunkread as cr
    from gridflux import config
    from gridflux.ingest.catalog import load_catalog, load_series

    opened = []
    real_init = cr.ChunkReader.__init__

    def counting_init(self, path, variable):
        real_init(self, path, variable)
        opened.append(path)

    cr.ChunkReader.__init__ = counting_init
    try:
        cat = load_catalog(mini_archive["catalog"])
        series = [(rec, load_series(rec)) for rec in cat.series()]
    finally:
        cr.ChunkReader.__init__ = real_init
    # every file was read by chunk: A and C are deflated (libdeflate), B uncompressed (byte ranges)
    assert sorted(p.rsplit("/", 1)[-1] for p in set(opened)) == ["npp_A.nc", "npp_B.nc", "npp_C.nc"]
    for rec, fast in series:
        with config.set_options(**{"pipeline.fast-inflate": False}):
            slow = load_series(rec)
        name = fast.attrs["gridflux_variable"]
        assert np.array_equal(fast[name].values, slow[name].values, equal_nan=True)
