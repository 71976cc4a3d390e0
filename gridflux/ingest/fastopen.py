"""A series' canonical field without xarray: metadata read directly, blocks read by chunk.

On an archive of many short series the fixed cost of opening a series (``xarray.open_dataset`` per
file, merging, alignment, dask arrays for coordinates and data, ``normalize``) is several times
the cost of reading its bytes. For the common case -- local netCDF-4 files whose field is
float32/float64, stored without packing, deflated (optionally shuffled) or unfiltered, with
(time, lat, lon) dimensions -- this module produces what the pipeline's workers need from
:func:`gridflux.ingest.catalog.load_series` directly: the months, seconds per month, the
canonical grid, the field's kind, and a reader of canonical blocks (a range of months and
latitude rows) that applies exactly the operations ``open_series`` + ``normalize`` apply (CF
fill masking, orientation, ``|x| >= 1e19`` masking, unit scale and sign, land fraction, dtype), in
the same order and dtypes, so the values are bit-identical (tests/ingest/test_fastopen.py
compares every series of the synthetic archive).

Metadata is read with netCDF4 (the same attributes and raw values xarray's netCDF4 backend sees);
what is derived from it -- the month keys and seconds of a time axis, the canonical grid of a
set of coordinates, a unit factor -- is cached by content (the bytes of the values and the
attributes, not the path), so files that share a grid, calendar or units parse them once per
process. Anything outside the common case (remote or zarr inputs, packed or integer data, extra
dimensions, a time axis with fill values, an error of any kind) returns None, and the caller
takes the xarray path, which also produces every error message.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridflux import config
from gridflux.fields.normalize import FILL_THRESHOLD
from gridflux.fields.timeaxis import (
    Month,
    canonical_calendar,
    check_month_keys,
    decode_month_keys,
    keys_from_dates,
    month_starts,
    months_of_dates,
    months_of_keys,
    seconds_in_month,
)
from gridflux.fields.units import ALIASES, VARIABLES, unit_factor
from gridflux.kernels import grids

PACKING = ("scale_factor", "add_offset", "_Unsigned")
FILL_ATTRS = ("_FillValue", "missing_value")
CACHE_MAX = 256

_TIME_CACHE: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
_GRID_CACHE: OrderedDict[str, tuple] = OrderedDict()
_AXES_CACHE: OrderedDict[str, tuple] = OrderedDict()
_SERIES_TIME_CACHE: OrderedDict[str, tuple] = OrderedDict()
_UNIT_CACHE: dict[tuple, Any] = {}
STATS = {
    "time_parsed": 0,
    "time_cached": 0,
    "grid_parsed": 0,
    "grid_cached": 0,
    "axes_parsed": 0,
    "axes_cached": 0,
    "series_time_parsed": 0,
    "series_time_cached": 0,
}


def _remember(cache: OrderedDict, key: str, value: Any) -> Any:
    cache[key] = value
    while len(cache) > CACHE_MAX:
        cache.popitem(last=False)
    return value


def _digest(*parts: Any) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(p.dtype.str.encode())
            h.update(str(p.shape).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
        h.update(b"|")
    return h.hexdigest()


@dataclass
class FilePart:
    """One file of a series: its field's name, months [t0, t1) of the series, fill values."""

    path: str
    variable: str
    t0: int
    t1: int
    fills: tuple[float, ...]
    reader: Any = None  # gridflux.ingest.chunkread.ChunkReader, opened at the first read


@dataclass
class FastSeries:
    """A series' canonical field as the pipeline's workers use it (see the module docstring).

    ``read(i0, i1, rows)`` returns ``(i1 - i0, rows, nlon)`` canonical values: kg m-2 s-1 (flux)
    or kg m-2 (stock), positive to the atmosphere, latitude ascending, NaN where missing; the
    same values and dtype as ``load_series(record)[variable].data[i0:i1, rows]``."""

    variable: str  # canonical name
    kind: str  # flux | stock
    months: tuple[Month, ...]
    seconds: np.ndarray  # (t,) float64 seconds per month in the source calendar
    grid: grids.CellBounds  # as gridflux.fields.regrid.grid_of(canonical dataset)
    shape: tuple[int, int, int]
    dtype: np.dtype  # of the canonical values
    raw_dtype: np.dtype  # of the joined, CF-decoded file values
    parts: list[FilePart]
    flip_lat: bool
    flip_lon: bool
    fill_mask: bool  # |x| >= FILL_THRESHOLD -> NaN
    month_factor: np.ndarray | None  # per-month units: scale / seconds (float64)
    scale: float
    land_fraction: np.ndarray | None  # (lat, lon) float64, canonical orientation
    history: list[str] = field(default_factory=list)

    @property
    def value_dtype(self) -> np.dtype:
        """The dtype of :meth:`read`'s values (float64 once a unit or land factor multiplies)."""
        converted = self.month_factor is not None or self.scale != 1.0
        return np.dtype(np.float64) if converted or self.land_fraction is not None else self.dtype

    def _raw(self, i0: int, i1: int, r0: int, r1: int) -> np.ndarray:
        """CF-decoded file values of months [i0, i1) and file rows [r0, r1), joined over files."""
        from gridflux.ingest.chunkread import ChunkReader

        nlon = self.shape[2]
        out = []
        for p in self.parts:
            a, b = max(i0, p.t0), min(i1, p.t1)
            if a >= b:
                continue
            if p.reader is None:
                p.reader = ChunkReader(p.path, p.variable)
            x = p.reader.read((slice(a - p.t0, b - p.t0), slice(r0, r1), slice(0, nlon)))
            if p.fills:  # xarray's CF mask decoding
                x = np.asarray(x, dtype=x.dtype)
                cond = np.zeros(x.shape, dtype=bool)
                for fv in p.fills:
                    cond |= x == fv
                x = np.where(cond, np.nan, x)
            out.append(np.asarray(x, dtype=self.raw_dtype))
        if not out:
            return np.empty((0, r1 - r0, nlon), dtype=self.raw_dtype)
        return out[0] if len(out) == 1 else np.concatenate(out, axis=0)

    def read(self, i0: int, i1: int, rows: slice | None = None) -> np.ndarray:
        nlat = self.shape[1]
        r0, r1, _ = (rows or slice(0, nlat)).indices(nlat)
        r1 = max(r0, r1)
        if self.flip_lat:
            data = self._raw(i0, i1, nlat - r1, nlat - r0)[:, ::-1]
        else:
            data = self._raw(i0, i1, r0, r1)
        if self.flip_lon:
            data = data[:, :, ::-1]
        if self.fill_mask:
            data = np.where(abs(data) >= FILL_THRESHOLD, np.nan, data)
        converted = False
        if self.month_factor is not None:
            data = data.astype(np.float64) * self.month_factor[i0:i1, None, None]
            converted = True
        elif self.scale != 1.0:
            data = data.astype(np.float64) * self.scale
            converted = True
        if self.land_fraction is not None:
            data = data.astype(np.float64) * self.land_fraction[None, r0:r1, :]
            converted = True
        if data.dtype != self.dtype and not converted:
            data = data.astype(self.dtype)
        return np.ascontiguousarray(data)

    def close(self) -> None:
        for p in self.parts:
            if p.reader is not None:
                p.reader.close()
                p.reader = None


# -- metadata -----------------------------------------------------------------------------------
def _attrs(v: Any) -> dict[str, Any]:
    return {k: v.getncattr(k) for k in v.ncattrs()}


def _raw_values(v: Any) -> np.ndarray:
    v.set_auto_maskandscale(False)
    return np.asarray(v[...])


def _has_fill(attrs: dict) -> bool:
    return any(a in attrs for a in FILL_ATTRS)


def _fill_values(attrs: dict) -> tuple[float, ...]:
    out = []
    for a in FILL_ATTRS:
        if a in attrs:
            for fv in np.ravel(attrs[a]):
                if not np.isnan(fv):
                    out.append(fv)
    return tuple(dict.fromkeys(out))


def _attr_content(a: Any) -> Any:
    """An attribute value as its content for a key: arrays by dtype, shape and bytes (``repr``
    elides long ones), object arrays by their elements (their bytes are pointers)."""
    if not isinstance(a, np.ndarray):
        return a
    if a.dtype.hasobject:
        return ("objects", a.shape, repr(a.tolist()))
    return (a.dtype.str, a.shape, _digest(a))


def axes_key(dims: tuple[str, ...], small: list[tuple[str, tuple, tuple, str, dict]]) -> str:
    """The cache key of :func:`_resolve_axes`: what its answer depends on, and nothing more.

    Parameters
    ----------
    dims : the field's dimensions
    small : ``(name, dimensions, shape, dtype, attributes)`` of the file's other variables of at
        most 2 dimensions

    ``find_dim`` and ``bounds_of`` read dimension and variable names, the dimensions, dtypes and
    attributes of variables, and of lengths only whether a bounds dimension has 2 elements: each
    length enters as ``min(n, 3)``. A time unit enters without its reference date (its "since"
    decides nothing else), so the files of a series share one entry.
    """
    desc = []
    for n, d, shape, dtype, attrs in small:
        attrs = {k: _attr_content(a) for k, a in attrs.items()}
        units = attrs.get("units")
        if isinstance(units, str) and " since " in units:
            attrs["units"] = units.split(" since ")[0] + " since *"
        sizes = tuple(min(int(m), 3) for m in shape)
        desc.append((n, tuple(d), sizes, dtype, sorted(attrs.items())))
    return _digest(tuple(dims), repr(desc))


def _resolve_axes(nc: Any, raw: str) -> tuple[str, str, str, str | None, str | None]:
    """(time, lat, lon dimension, lat bounds, lon bounds variable) of a file's field, by the rules
    ``open_series`` and ``normalize`` apply (:func:`gridflux.fields.axes.find_dim` and
    :func:`~gridflux.fields.axes.bounds_of` on a data-free dataset of the file's small variables),
    cached by content: the field's dimensions and the names, dimensions, dtypes and attributes of
    those variables, with every dimension length as 0, 1, 2 or "more" (:func:`axes_key`). The
    rules look at nothing else: not at coordinate values, at the field's name or at lengths beyond
    "is it 2" (a bounds dimension), so the files of a series and the series of a layout (other
    variables, other lengths of time) share one entry."""
    variables = nc.variables
    v = variables[raw]
    dims = tuple(v.dimensions)
    small = {n: x for n, x in variables.items() if n != raw and x.ndim <= 2 and x.dtype != str}
    key = axes_key(
        dims,
        [
            (n, tuple(x.dimensions), tuple(x.shape), str(x.dtype), _attrs(x))
            for n, x in small.items()
        ],
    )
    hit = _AXES_CACHE.get(key)
    if hit is not None:
        STATS["axes_cached"] += 1
        return hit
    STATS["axes_parsed"] += 1
    import xarray as xr

    from gridflux.fields.axes import bounds_of, find_dim

    sizes = dict(zip(dims, v.shape, strict=True))
    data_vars, coords = {}, {}
    for n, x in small.items():
        attrs = _attrs(x)
        var = xr.Variable(
            tuple(x.dimensions), np.broadcast_to(np.zeros((), x.dtype), x.shape), attrs
        )
        if x.ndim == 1 and x.dimensions == (n,):
            coords[n] = var
        else:
            data_vars[n] = var
        for d, m in zip(x.dimensions, x.shape, strict=True):
            sizes.setdefault(d, m)
    probe = xr.Variable(dims, np.broadcast_to(np.float32(0), tuple(v.shape)), _attrs(v))
    ds = xr.Dataset({raw: probe, **data_vars}, coords=coords)
    da = ds[raw]
    t, y, x = (find_dim(da, ds, axis) for axis in ("time", "lat", "lon"))
    sub = ds.drop_vars([n for n in ds.variables if t in ds[n].dims and n != t])
    yb, xb = bounds_of(sub, y), bounds_of(sub, x)
    out = (t, y, x, None if yb is None else str(yb.name), None if xb is None else str(xb.name))
    return _remember(_AXES_CACHE, key, out)


def _time_keys(
    values: np.ndarray, units: str | None, cal: str, bounds: np.ndarray | None, path: str
):
    """(month keys, seconds per month) of one file's time axis, cached by content."""
    key = _digest(values, units, cal, bounds)
    hit = _TIME_CACHE.get(key)
    if hit is not None:
        STATS["time_cached"] += 1
        return hit
    STATS["time_parsed"] += 1
    keys = decode_month_keys(values, units, cal, bounds=bounds, path=path, variable="time")
    return _remember(_TIME_CACHE, key, (keys, seconds_in_month(keys, cal)))


def _series_time(keys: np.ndarray, cal: str) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(month keys, seconds per month, months) of a series' joined month keys as ``normalize``
    builds its time (the cftime month starts ``open_series`` assigns, read back; no gaps), cached
    by content (the keys and the calendar): series that span the same months share one entry."""
    key = series_time_key(keys, cal)
    hit = _SERIES_TIME_CACHE.get(key)
    if hit is not None:
        STATS["series_time_cached"] += 1
        return hit
    STATS["series_time_parsed"] += 1
    keys = keys_from_dates(month_starts(keys, cal))
    check_month_keys(keys, path=None, variable="time", allow_gaps=False)
    out = (keys, seconds_in_month(keys, cal), months_of_keys(keys))
    for a in out[:2]:
        a.setflags(write=False)  # shared by every series of the entry
    return _remember(_SERIES_TIME_CACHE, key, out)


def _has_defects(lat, lon, lat_b, lon_b) -> bool:
    """Whether a file's bounds have a defect the fix rules repair (gridflux.kernels.grids)."""
    lat_rows = np.sort(lat_b, axis=1)
    lon_rows = grids.align_lon_bounds(np.sort(lon_b, axis=1), lon)
    return bool(
        grids.bounds_defects(lat, lat_rows, "lat") or grids.bounds_defects(lon, lon_rows, "lon")
    )


def grid_key(lat, lon, lat_b, lon_b, ydim: str, xdim: str) -> str:
    """The cache key of :func:`_canonical_grid`: the raw values (dtype, shape and bytes) of the
    coordinates and bounds as stored, and the dimension names."""
    return _digest(lat, lon, lat_b, lon_b, ydim, xdim)


def series_time_key(keys: np.ndarray, cal: str) -> str:
    """The cache key of :func:`_series_time`: every month key and the calendar."""
    return _digest(np.asarray(keys, dtype=np.int64), cal)


def _canonical_grid(lat, lon, lat_b, lon_b, ydim: str, xdim: str):
    """(flip_lat, flip_lon, canonical grid, history) of file coordinates, cached by content."""
    key = grid_key(lat, lon, lat_b, lon_b, ydim, xdim)
    hit = _GRID_CACHE.get(key)
    if hit is not None:
        STATS["grid_cached"] += 1
        return hit
    STATS["grid_parsed"] += 1
    history: list[str] = []
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    lat_bv = None if lat_b is None else np.asarray(lat_b).astype(np.float64)
    lon_bv = None if lon_b is None else np.asarray(lon_b).astype(np.float64)
    flip_lat = bool(lat.size > 1 and lat[1] < lat[0])
    flip_lon = bool(lon.size > 1 and np.all(np.diff(lon) < 0))
    if flip_lat:
        lat = lat[::-1]
        lat_bv = None if lat_bv is None else lat_bv[::-1]
    if flip_lon:
        lon = lon[::-1]
        lon_bv = None if lon_bv is None else lon_bv[::-1]
    lon_u = grids.unwrap_longitudes(lon, xdim)
    if lat_bv is not None and lon_bv is not None and _has_defects(lat, lon_u, lat_bv, lon_bv):
        # bounds to repair: normalization's rules decide and record it, on the xarray path
        # (open_fast falls back on any exception); missing bounds are inferred below as
        # normalization infers them (from_centers: Gaussian recognition to the values' precision)
        raise ValueError("bounds to repair")
    g = grids.CellBounds.from_centers(lat, lon_u, lat_bv, lon_bv, lat_name=ydim, lon_name=xdim)
    # as grid_of() builds it from the canonical dataset (coordinates lat, lon; bounds lat_bnds)
    canonical = grids.CellBounds.from_centers(
        lat, lon_u, g.lat_bounds.copy(), g.lon_bounds.copy(), lat_name="lat", lon_name="lon"
    )
    return _remember(_GRID_CACHE, key, (flip_lat, flip_lon, canonical, history))


def _unit_factor(raw_units, canonical, gas, mass_basis, path, raw):
    key = (raw_units, canonical, gas, mass_basis, raw)
    hit = _UNIT_CACHE.get(key)
    if hit is None:
        hit = unit_factor(
            raw_units, canonical, gas=gas, mass_basis=mass_basis, path=path, raw_name=raw
        )
        _UNIT_CACHE[key] = hit
    return hit


def _land_fraction(vals: np.ndarray, units: str, shape: tuple[int, int]) -> np.ndarray | None:
    """sftlf as ``normalize`` turns it into a fraction (None: not the common case)."""
    vals = np.squeeze(np.asarray(vals, dtype=np.float64))
    if vals.shape != shape:
        return None
    vals = np.where(np.isfinite(vals) & (np.abs(vals) < FILL_THRESHOLD), vals, 0.0)
    if (
        units == "%"
        or units.lower() in ("percent", "percentage")
        or (units == "" and vals.max() > 1.0 + 1e-6)
    ):
        vals = vals / 100.0
    if vals.min() < -1e-6 or vals.max() > 1.0 + 1e-6:
        return None
    return np.clip(vals, 0.0, 1.0)


def eligible(record: Any, storage_options: Any = None) -> bool:
    """Whether :func:`open_fast` may be tried for ``record`` (local netCDF files, switched on)."""
    if not config.get("pipeline.fast-open", True) or not config.get("pipeline.fast-inflate", True):
        return False
    if record.format != "netcdf" or not record.paths:
        return False
    # files with known defects (a fix-table entry, or strict refusal) and fields whose land basis
    # needs the table's convention go the xarray path, where normalization repairs and explains
    if getattr(record, "fixes", None) or getattr(record, "strict", False):
        return False
    if record.per_land_area is None and getattr(record, "table_id", "") in ("Lmon",):
        return False
    if (getattr(record, "traits", None) or {}).get("resample"):  # daily -> monthly: normalize's
        return False
    paths = list(record.paths) + list(record.fx_paths.values())
    return all("://" not in p and "::" not in p and not p.endswith(".zarr") for p in paths)


def open_fast(record: Any, storage_options: Any = None) -> FastSeries | None:
    """The series as a :class:`FastSeries`, or None when it is not the common case (then the caller
    opens it with ``catalog.load_series``, which also raises every input error)."""
    if not eligible(record, storage_options):
        return None
    try:
        return _open(record)
    except Exception:  # noqa: BLE001 - anything unusual: the xarray path decides (and explains)
        return None


def _open(record: Any) -> FastSeries | None:
    import netCDF4

    from gridflux.ingest.chunkread import open_reader

    if record.variable not in ALIASES:
        return None
    canonical = ALIASES[record.variable].canonical
    spec = VARIABLES[canonical]
    files = []
    first_meta = None
    for path in record.paths:
        if not os.path.exists(path):
            return None
        with netCDF4.Dataset(path) as nc:
            variables = nc.variables
            raw = record.raw_variable
            if raw not in variables:
                return None
            v = variables[raw]
            dims = tuple(v.dimensions)
            if len(dims) != 3 or v.dtype not in (np.float32, np.float64):
                return None
            attrs = _attrs(v)
            if any(a in attrs for a in PACKING):
                return None
            attrs_of = {d: _attrs(variables[d]) for d in dims if d in variables}
            tdim, ydim, xdim, ybn, xbn = _resolve_axes(nc, raw)
            if (tdim, ydim, xdim) != dims or tdim not in variables:
                return None
            if ydim not in variables or xdim not in variables:
                return None
            tattrs = attrs_of[tdim]
            if any(a in tattrs for a in (*PACKING, *FILL_ATTRS)):
                return None
            cal = canonical_calendar(record.calendar or tattrs.get("calendar"), path=path)
            bname = tattrs.get("bounds")
            tb = None
            if bname and bname in variables:
                battrs = _attrs(variables[bname])
                if any(a in battrs for a in (*PACKING, *FILL_ATTRS)):
                    return None
                tb = _raw_values(variables[bname])
            tvals = _raw_values(variables[tdim])
            keys, _secs = _time_keys(tvals, tattrs.get("units"), cal, tb, path)
            fills = _fill_values(attrs)
            meta = {
                "path": path,
                "raw": raw,
                "keys": keys,
                "cal": cal,
                "dims": dims,
                "attrs": attrs,
                "fills": fills,
                "declared": _has_fill(attrs),
                "dtype": np.dtype(v.dtype) if not fills else np.dtype(v.dtype),
                "shape": tuple(v.shape),
            }
            if first_meta is None:
                for d in (ydim, xdim):
                    if any(a in attrs_of[d] for a in (*PACKING, *FILL_ATTRS)):
                        return None
                lat = _raw_values(variables[ydim])
                lon = _raw_values(variables[xdim])
                bn = {ydim: ybn, xdim: xbn}
                bvals: dict[str, np.ndarray | None] = {}
                for d, n in bn.items():
                    if n is None:
                        bvals[d] = None
                        continue
                    b = variables[n]
                    if any(a in _attrs(b) for a in (*PACKING, *FILL_ATTRS)):
                        return None
                    if b.dimensions[0] != d:
                        return None
                    bvals[d] = _raw_values(b)
                meta.update(lat=lat, lon=lon, bounds=bvals, ydim=ydim, xdim=xdim)
                meta["file_vars"] = {
                    n: variables[n]
                    for n in ("sftlf", "landfrac", "land_fraction")
                    if n in variables
                }
                meta["land_in_file"] = {
                    n: (_attrs(fv), _raw_values(fv))
                    for n, fv in meta["file_vars"].items()
                    if tdim not in fv.dimensions
                }
                first_meta = meta
        reader = open_reader(path, raw)
        if reader is None or reader.shape != meta["shape"]:
            if reader is not None:
                reader.close()
            return None
        # the first time step, CF-decoded, as open_series looks at it
        # (its chunks kept by the reader for the first block, which reads them again)
        first = reader.read_keeping(
            (slice(0, 1), slice(0, meta["shape"][1]), slice(0, meta["shape"][2]))
        )[0]
        if fills:
            cond = np.zeros(first.shape, dtype=bool)
            for fv in fills:
                cond |= first == fv
            first = np.where(cond, np.nan, first)
        first = np.asarray(first, dtype=np.float64)
        meta["unmasked_fill"] = bool(np.any(np.abs(first[np.isfinite(first)]) >= 1e19))
        meta["reader"] = reader
        files.append(meta)
    if not files:
        return None
    files.sort(key=lambda m: int(m["keys"][0]))
    if len({m["cal"] for m in files}) > 1:
        return None
    if any(m["shape"][1:] != files[0]["shape"][1:] for m in files):
        return None
    for prev, nxt in zip(files, files[1:], strict=False):
        if nxt["keys"][0] <= prev["keys"][-1]:
            return None
    fm = files[0]
    if fm is not first_meta:  # the first file by months must hold the coordinates used
        return None
    cal = fm["cal"]
    # normalize's time: the cftime month starts open_series assigned, read back
    keys, secs, months = _series_time(np.concatenate([m["keys"] for m in files]), cal)

    ydim, xdim = fm["ydim"], fm["xdim"]
    nlat, nlon = fm["shape"][1], fm["shape"][2]
    flip_lat, flip_lon, grid, _h = _canonical_grid(
        fm["lat"], fm["lon"], fm["bounds"][ydim], fm["bounds"][xdim], ydim, xdim
    )
    path_text = "\n".join(m["path"] for m in files)
    raw = fm["raw"]
    raw_units = record.units if record.units is not None else fm["attrs"].get("units")
    uf = _unit_factor(raw_units, canonical, record.gas, record.mass_basis, path_text, raw)
    into = (
        record.into_land
        if record.into_land is not None
        else (ALIASES[raw].into_land if raw in ALIASES else spec.into_land)
    )
    sign = -1.0 if into else 1.0
    per_land = record.per_land_area
    if per_land is None:
        per_land = "where land" in str(fm["attrs"].get("cell_methods", ""))
    lf = None
    if per_land:
        lf = _land(record, fm, (nlat, nlon))
        if lf is None:
            return None
        if flip_lat:
            lf = lf[::-1]
        if flip_lon:
            lf = lf[:, ::-1]
    declared = all(m["declared"] for m in files)
    unmasked = any(m["unmasked_fill"] for m in files)
    raw_dtype = np.result_type(
        *[np.float32 if m["dtype"] == np.float32 else np.float64 for m in files]
    )
    out_dtype = np.dtype(np.float32 if raw_dtype == np.float32 else np.float64)
    scale = sign * uf.scale
    parts, t = [], 0
    for m in files:
        n = m["shape"][0]
        parts.append(FilePart(m["path"], m["raw"], t, t + n, m["fills"], m["reader"]))
        t += n
    return FastSeries(
        variable=canonical,
        kind=spec.kind,
        months=months,
        seconds=secs,
        grid=grid,
        shape=(t, nlat, nlon),
        dtype=out_dtype,
        raw_dtype=np.dtype(raw_dtype),
        parts=parts,
        flip_lat=flip_lat,
        flip_lon=flip_lon,
        fill_mask=(not declared) or unmasked,
        month_factor=(scale / secs) if uf.per_month else None,
        scale=scale,
        land_fraction=lf,
    )


def _land(record: Any, fm: dict, shape: tuple[int, int]) -> np.ndarray | None:
    """The land fraction ``normalize`` would use: the dataset's sftlf / landfrac / land_fraction,
    where an fx file of that name replaces the data file's own variable."""
    import netCDF4

    for n in ("sftlf", "landfrac", "land_fraction"):
        if n in record.fx_paths:
            with netCDF4.Dataset(record.fx_paths[n]) as nc:
                if n not in nc.variables:
                    return None
                v = nc.variables[n]
                attrs = _attrs(v)
                if any(a in attrs for a in PACKING):
                    return None
                vals = _raw_values(v)
                fills = _fill_values(attrs)
                if fills:
                    cond = np.zeros(vals.shape, dtype=bool)
                    for fv in fills:
                        cond |= vals == fv
                    vals = np.where(cond, np.nan, vals)
                if vals.ndim > 2:
                    vals = np.squeeze(vals)
                units = str(attrs.get("units", "")).strip()
                return _land_fraction(vals, units, shape)
        if n in fm["land_in_file"]:
            attrs, vals = fm["land_in_file"][n]
            if any(a in attrs for a in (*PACKING, *FILL_ATTRS)):
                return None
            return _land_fraction(vals, str(attrs.get("units", "")).strip(), shape)
    return None


class DatasetView:
    """The same interface as :class:`FastSeries` over a canonical ``xr.Dataset``
    (``catalog.load_series``): the path every series not in the common case takes."""

    def __init__(self, ds: Any):
        from gridflux.fields.regrid import grid_of

        self.ds = ds
        self.variable = ds.attrs["gridflux_variable"]
        self.data = ds[self.variable].data
        self.kind = ds[self.variable].attrs.get("gridflux_kind", "flux")
        self.months = months_of_dates(ds["time"].values)
        self.seconds = np.asarray(ds["seconds_in_month"].values, dtype=np.float64)
        self.grid = grid_of(ds)
        self.shape = tuple(self.data.shape)
        self.value_dtype = np.dtype(self.data.dtype)
        #: repairs of the files' known defects that normalization made (gridflux.ingest.fixes)
        notes = str(ds[self.variable].attrs.get("gridflux_fixes", ""))
        self.fixes: tuple[str, ...] = tuple(f for f in notes.split("; ") if f)
        #: (lat, lon) land fraction of a land-weighted mean (canonical order), else None
        lf = ds.coords.get("gridflux_land_fraction")
        self.mean_land_fraction = None if lf is None else np.asarray(lf.values, dtype=np.float64)

    def read(self, i0: int, i1: int, rows: slice | None = None) -> np.ndarray:
        part = self.data[i0:i1] if rows is None else self.data[i0:i1, rows]
        return np.asarray(part.compute(scheduler="sync") if hasattr(part, "dask") else part)

    def close(self) -> None:
        pass


def open_series_view(
    record: Any, *, chunks: dict | None = None, storage_options: Any = None
) -> FastSeries | DatasetView:
    """The series for reading blocks: :func:`open_fast` when it applies, else a
    :class:`DatasetView` of ``catalog.load_series(record, chunks=chunks)``."""
    fast = open_fast(record, storage_options)
    if fast is not None:
        return fast
    from gridflux.ingest import catalog

    return DatasetView(catalog.load_series(record, storage_options=storage_options, chunks=chunks))
