"""The Python methods the harness times, each run as a whole process.

``python benchmarks/workers.py METHOD FIELD.nc --out TOTALS.npy [options]``

Every method imports only what it needs (import time is part of a method's cost, as it is for a
user's script), writes the monthly totals ``sum(rh * cell area * mask)`` in kg s-1 (float64, one
per month) to ``--out`` and prints one JSON line of method-specific measurements on stdout.

Methods
-------
raw        netCDF4 with auto mask/scale off, 12-month blocks read and decoded, nothing else: the
limit. raw-chunks gridflux's own reader (``gridflux.ingest.chunkread``), nothing else: deflated
chunks inflated
           with libdeflate, unfiltered ones read by byte range, netCDF4 for other layouts; 12-month
           blocks.
startup    what a ``fused`` process does before it reads a byte: the interpreter starts, this script
           and numpy and h5py (gridflux's reader) are imported; nothing is read. The floor of any
           Python method, beside the whole job of a compiled tool.
fused      gridflux fused totals: protocol weights once, then ``cell_sums`` on 12-month blocks
           of only the latitude rows where a weight is nonzero, read by gridflux's reader.
cube       ``fused`` plus the regridded cube on the clipped target written to zarr v3 with the
           pipeline's default compressor (the ``store`` section of the packaged ``gridflux.yaml``:
           Blosc zstd-1 + shuffle in 256 KiB blocks), as the pipeline's cube step does.
xregrid    xarray-regrid: ``da.regrid.conservative(target)`` to the clipped target, then the
           weighted sum with the same ``maskarea`` the CDO reference uses.
xesmf      xESMF conservative regridding (exits with status 3 and the reason when ESMPy does not
import). weights    weight-building timings for grid pairs (gridflux), printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

BLOCK = 12  # months per block, as the pipeline's default chunk-months


def _open(path: str):
    import netCDF4

    nc = netCDF4.Dataset(path)
    v = nc["rh"]
    v.set_auto_maskandscale(False)
    return nc, v


def _grid(nc):
    """The file's CellBounds and whether its latitudes run N->S."""
    import numpy as np

    from gridflux.kernels.grids import CellBounds, is_descending

    lat = np.asarray(nc["lat"][:], dtype=np.float64)
    lon = np.asarray(nc["lon"][:], dtype=np.float64)
    g = CellBounds.from_centers(
        lat, lon, np.asarray(nc["lat_bnds"][:]), np.asarray(nc["lon_bnds"][:])
    )
    return g, is_descending(lat)


def _mask(path: str):
    """The RegionMask from the harness's mask file, read with h5py, which gridflux's reader has
    imported already (netCDF4 would add ~20-50 ms; the file has no fill values to decode)."""
    import h5py
    import numpy as np

    from gridflux.fields.masks import RegionMask
    from gridflux.kernels.grids import CellBounds

    with h5py.File(path, "r") as nc:
        g = CellBounds.from_centers(
            nc["lat"][:], nc["lon"][:], nc["lat_bnds"][:], nc["lon_bnds"][:]
        )
        names = [x.decode() if isinstance(x, bytes) else str(x) for x in nc["region"][:]]
        fr = np.asarray(nc["mask"][:], dtype=np.float64)
    return RegionMask(tuple(names), fr, g)


class _Blocks:
    """12-month blocks ``[t0:t1, rows]`` of ``rh`` through gridflux's chunk reader where the file's
    filters allow (none, or deflate optionally after shuffle), else netCDF4 (auto mask/scale off).

    ``coords`` is the open file for coordinate reads (``coords["lat"][:]``): the reader's h5py file,
    so that netCDF4 is not imported when the reader serves the data, else the netCDF4 Dataset."""

    def __init__(self, path: str):
        from gridflux.ingest.chunkread import open_reader

        self.reader = open_reader(path, "rh")
        self.var, self.nc = None, None
        if self.reader is None:
            self.nc, self.var = _open(path)
        self.coords = self.reader.file if self.reader is not None else self.nc
        self.shape = self.reader.shape if self.reader is not None else self.var.shape

    def read(self, t0: int, t1: int, rows: slice = slice(None)):
        if self.reader is not None:
            r0, r1, _ = rows.indices(self.shape[1])
            return self.reader.read((slice(t0, t1), slice(r0, r1), slice(0, self.shape[2])))
        return self.var[t0:t1, rows]

    def close(self) -> None:
        for handle in (self.reader, self.nc):
            if handle is not None:
                handle.close()


def method_raw_chunks(args) -> dict:
    b = _Blocks(args.field)
    nt = b.shape[0] if args.months is None else args.months
    for t0 in range(0, nt, BLOCK):
        b.read(t0, min(t0 + BLOCK, nt))
    b.close()
    return {"totals": None, "chunk_reader": b.reader is not None}


def method_raw(args) -> dict:
    nc, v = _open(args.field)
    nt = v.shape[0] if args.months is None else args.months
    for t0 in range(0, nt, BLOCK):
        v[t0 : min(t0 + BLOCK, nt)]
    nc.close()
    return {"totals": None}


def method_startup(args) -> dict:
    import h5py  # noqa: F401  (what gridflux's chunk reader imports)
    import numpy  # noqa: F401

    return {"totals": None}


def _weights_key(nc, args) -> str:
    """Cache key of the fused weight field: the field's grid (coordinates and bounds as stored), the
    mask file (path, size, modification time), the protocol and the radius."""
    import hashlib

    import numpy as np

    h = hashlib.sha1()
    for name in ("lat", "lon", "lat_bnds", "lon_bnds"):
        h.update(np.ascontiguousarray(nc[name][:]).tobytes())
    st = os.stat(args.mask)
    h.update(
        f"{os.path.realpath(args.mask)}|{st.st_size}|{st.st_mtime_ns}|regrid-data|cdo-radius".encode()
    )
    return h.hexdigest()[:20]


def _fused_setup(args):
    """The open blocks of the file, its weight field in the file's row order and its nonzero rows.

    With ``--weights-cache DIR`` the weight field is built once per grid pair and mask and then
    loaded (``.npy``), as the tuned CDO pipeline reuses its ``gencon`` weights."""
    import numpy as np

    blocks = _Blocks(args.field)
    nc = blocks.coords
    t0 = time.perf_counter()
    cached = (
        os.path.join(args.weights_cache, f"fused-{_weights_key(nc, args)}.npy")
        if args.weights_cache
        else None
    )
    if cached and os.path.exists(cached):
        w = np.load(cached)
        hit = True
    else:
        from gridflux.fields.totals import protocol_weights
        from gridflux.kernels.grids import CDO_EARTH_RADIUS

        src, desc = _grid(nc)
        mask = _mask(args.mask)
        w = protocol_weights(
            src, mask, protocol="regrid-data", target=mask.grid, radius=CDO_EARTH_RADIUS
        )
        if desc:  # weights in the file's own row order, so blocks are used as read
            w = np.ascontiguousarray(w[:, ::-1])
        hit = False
        if cached:
            os.makedirs(args.weights_cache, exist_ok=True)
            np.save(cached + ".tmp.npy", w)
            os.replace(cached + ".tmp.npy", cached)
    nz = np.flatnonzero(np.any(w != 0, axis=(0, 2)))
    rows = slice(int(nz[0]), int(nz[-1]) + 1) if nz.size else slice(0, 0)
    return blocks, w, rows, time.perf_counter() - t0, hit


def method_fused(args) -> dict:
    import numpy as np

    from gridflux.fields.totals import RegionCells, cell_sums

    blocks, w, rows, wsec, hit = _fused_setup(args)
    nt = blocks.shape[0] if args.months is None else args.months
    w_rows = np.ascontiguousarray(w[:, rows])  # only the rows where some weight is nonzero are read
    cells = RegionCells.from_weights(w_rows)  # once, as the workers' weights cache keeps them
    out = np.empty((nt, w.shape[0]))
    for t0 in range(0, nt, BLOCK):
        t1 = min(t0 + BLOCK, nt)
        out[t0:t1] = cell_sums(blocks.read(t0, t1, rows), cells)
    blocks.close()
    return {
        "totals": out[:, 0],
        "weights_s": wsec,
        "weights_cached": hit,
        "chunk_reader": blocks.reader is not None,
        "rows_read": [rows.start, rows.stop],
    }


def method_cube(args) -> dict:
    import numpy as np
    import zarr

    from gridflux.fields.totals import RegionCells, cell_sums
    from gridflux.kernels.conservative import apply_separable, conservative_weights

    blocks, w, rows, wsec, _ = _fused_setup(args)
    src, desc = _grid(blocks.coords)
    mask = _mask(args.mask)
    nt = blocks.shape[0] if args.months is None else args.months
    r, _ = mask.bounding_rows_cols()
    clip = mask.grid.subset(r)
    # only the rows the totals and the cube need are read, as the pipeline does
    # (gridflux.pipeline.tasks.rows_to_read)
    c0, c1, _ = conservative_weights(src, clip).source_rows  # S->N row order
    n = src.nlat
    f0, f1 = (n - c1, n - c0) if desc else (c0, c1)  # the same rows in the file's order
    read = slice(min(f0, rows.start), max(f1, rows.stop))
    w_read, rows_in_read = w[:, read], slice(rows.start - read.start, rows.stop - read.start)
    cells = RegionCells.from_weights(w_read, rows_in_read)
    cw = conservative_weights(
        src.subset(slice(n - read.stop, n - read.start) if desc else read), clip
    )
    out_dir = args.zarr
    arr = zarr.create_array(
        store=out_dir,
        shape=(nt, clip.nlat, clip.nlon),
        chunks=(BLOCK, clip.nlat, clip.nlon),
        dtype="float32",
        compressors=_packaged_cube_compressors(),
        overwrite=True,
        fill_value=np.nan,
    )
    out = np.empty((nt, w.shape[0]))
    zsec = 0.0
    for t0 in range(0, nt, BLOCK):
        t1 = min(t0 + BLOCK, nt)
        blk = blocks.read(t0, t1, read)
        out[t0:t1] = cell_sums(blk, cells)
        cube = apply_separable(cw, blk[:, ::-1] if desc else blk, out_dtype=np.float32)
        tz = time.perf_counter()
        arr[t0:t1] = cube
        zsec += time.perf_counter() - tz
    blocks.close()
    stored = sum(
        os.path.getsize(os.path.join(d, f))
        for d, _, fs in os.walk(out_dir)
        for f in fs
        if not f.startswith("zarr.json")
    )
    raw = 4 * nt * clip.nlat * clip.nlon
    return {
        "totals": out[:, 0],
        "weights_s": wsec,
        "zarr_s": zsec,
        "zarr_bytes": raw,
        "zarr_ratio": raw / max(stored, 1),
        "rows_read": [read.start, read.stop],
    }


def _packaged_cube_compressors() -> tuple | None:
    """The pipeline's default cube compressor, read from the packaged ``gridflux.yaml`` directly:
    ``gridflux.config`` imports dask (~0.1 s), which this process does not otherwise need."""
    import yaml  # zarr imports it already

    import gridflux
    from gridflux.pipeline.store import blosc_compressors

    with open(os.path.join(os.path.dirname(gridflux.__file__), "gridflux.yaml")) as f:
        store = yaml.safe_load(f)["gridflux"]["store"]
    return blosc_compressors(
        3, store["cube-compressor"], int(store["cube-clevel"]), int(store["cube-blocksize"])
    )


def method_xregrid(args) -> dict:
    import numpy as np
    import xarray as xr
    import xarray_regrid  # noqa: F401  (registers the .regrid accessor)

    ds = xr.open_dataset(args.field)
    ma = xr.open_dataset(args.maskarea)["maskarea"].load()
    target = xr.Dataset(coords={"lat": ma["lat"].values, "lon": ma["lon"].values})
    da = ds["rh"] if args.months is None else ds["rh"].isel(time=slice(0, args.months))
    out = da.regrid.conservative(target, latitude_coord="lat")
    sparse_out = hasattr(
        out.data, "todense"
    )  # with the `sparse` package installed xarray-regrid returns COO
    if sparse_out:
        out = out.copy(data=out.data.todense())
    tot = (out.astype(np.float64) * ma.values).sum(("lat", "lon"))
    return {"totals": np.asarray(tot.values, dtype=np.float64), "sparse_output": sparse_out}


def method_xesmf(args) -> dict:
    try:
        import xesmf
    except Exception as exc:  # noqa: BLE001 - any import failure is a reason to skip
        print(json.dumps({"skip": f"xESMF does not import: {type(exc).__name__}: {exc}"}))
        sys.exit(3)
    import numpy as np
    import xarray as xr

    ds = xr.open_dataset(args.field)
    ma = xr.open_dataset(args.maskarea)["maskarea"].load()
    src = ds.rename({"lat_bnds": "lat_b_", "lon_bnds": "lon_b_"})
    lat_b = np.append(ds["lat_bnds"].values[:, 0], ds["lat_bnds"].values[-1, 1])
    lon_b = np.append(ds["lon_bnds"].values[:, 0], ds["lon_bnds"].values[-1, 1])
    src = src.assign_coords(lat_b=("lat_b", lat_b), lon_b=("lon_b", lon_b))
    tlat_b = np.append(ma["lat"].values - 0.25, ma["lat"].values[-1] + 0.25)
    tlon_b = np.append(ma["lon"].values - 0.25, ma["lon"].values[-1] + 0.25)
    dst = xr.Dataset(
        coords={
            "lat": ma["lat"],
            "lon": ma["lon"],
            "lat_b": ("lat_b", tlat_b),
            "lon_b": ("lon_b", tlon_b),
        }
    )
    rg = xesmf.Regridder(src, dst, "conservative")
    out = rg(src["rh"])
    tot = (out.astype(np.float64) * ma.values).sum(("lat", "lon"))
    return {"totals": np.asarray(tot.values, dtype=np.float64)}


def method_weights(args) -> dict:
    """In-process timings (min of 5) of exact weights and the fused weight field, per source
    grid."""
    import numpy as np

    from gridflux.kernels.conservative import conservative_weights, native_weight_field
    from gridflux.kernels.grids import CDO_EARTH_RADIUS

    mask = _mask(args.mask)
    out = {}
    for path in args.sources:
        import netCDF4

        with netCDF4.Dataset(path) as nc:
            src, _ = _grid(nc)
        tw, tn = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            conservative_weights(src, mask.grid)
            tw.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            native_weight_field(src, mask.grid, mask.fractions, CDO_EARTH_RADIUS)
            tn.append(time.perf_counter() - t0)
        out[path] = {
            "conservative_weights_s": float(np.min(tw)),
            "native_weight_field_s": float(np.min(tn)),
            "src_shape": list(src.shape),
            "dst_shape": list(mask.grid.shape),
        }
    return {"totals": None, "weights": out}


METHODS = {
    "raw": method_raw,
    "raw-chunks": method_raw_chunks,
    "startup": method_startup,
    "fused": method_fused,
    "cube": method_cube,
    "xregrid": method_xregrid,
    "xesmf": method_xesmf,
    "weights": method_weights,
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("method", choices=sorted(METHODS))
    p.add_argument("field", nargs="?", default=None)
    p.add_argument("--out", help="where to write the totals (.npy)")
    p.add_argument("--mask", help="RegionMask netCDF file")
    p.add_argument("--maskarea", help="maskarea on the clipped target (m2, CDO radius)")
    p.add_argument("--zarr", help="cube output directory (cube)")
    p.add_argument(
        "--weights-cache",
        default=None,
        help="directory of cached fused weight fields (fused, cube)",
    )
    p.add_argument("--months", type=int, default=None, help="only the first N months")
    p.add_argument("--sources", nargs="*", default=[], help="source grids (weights)")
    args = p.parse_args(argv)
    res = METHODS[args.method](args)
    totals = res.pop("totals")
    if totals is not None and args.out:
        import numpy as np

        np.save(args.out, np.asarray(totals, dtype=np.float64))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
