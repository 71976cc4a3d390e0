"""Opening a series: each file lazily (local netCDF through the chunk reader, zarr, remote URLs),
its time axis decoded, files joined along time with aligned chunks, fx fields attached; and the
netCDF-C chunk cache limit."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from gridflux import config
from gridflux.errors import GridfluxError, InputError
from gridflux.ingest.catalog.schema import SeriesRecord

_NETCDF_CACHE_SET = False
#: CMIP tables whose fields are per unit land area by convention: the fallback where a file's
#: ``cell_methods`` has no ``area:`` method (the file's own word comes first).
LAND_TABLES: dict[str, bool] = {"Lmon": True}


def limit_netcdf_chunk_cache() -> None:
    """Shrink netCDF-C's per-variable chunk cache (64 MiB by default) for files opened from now on.

    The pipeline reads each chunk once, in time order, so a large cache only holds memory: with
    the default, a worker's resident memory grows by up to 64 MiB per open variable. The size is
    ``gridflux.pipeline.netcdf-chunk-cache`` (bytes; default 4 MiB).
    """
    global _NETCDF_CACHE_SET
    if _NETCDF_CACHE_SET:
        return
    import netCDF4

    size = int(config.get("pipeline.netcdf-chunk-cache", 4 * 1024 * 1024))
    _, nelems, preemption = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(size, nelems, preemption)
    _NETCDF_CACHE_SET = True


def open_one(path: str, fmt: str, storage_options: Mapping[str, Any] | None):
    """Open one file lazily (backend-indexed arrays, no dask yet, times not decoded).

    Local files: netCDF4 engine (or zarr). URLs (``s3://``, ``gs://``, ``https://``,
    ``simplecache::...``): through :mod:`gridflux.ingest.remote` -- netCDF with engine h5netcdf
    over a retrying range-request file (or a verified local cached copy), zarr through a
    retrying fsspec mapper; transport failures are
    :class:`~gridflux.ingest.remote.RemoteReadError` naming the URL.
    """
    import xarray as xr

    from gridflux.ingest import chunkread, remote

    so = dict(storage_options or {})
    where = remote.scrub(path, so)
    try:
        if remote.is_remote(path):
            if fmt == "zarr":
                return remote.open_zarr(
                    path, so, decode_times=False, chunks=None, consolidated=None
                )
            return remote.open_netcdf(path, so, decode_times=False, chunks=None)
        local = path[len("file://") :] if path.startswith("file://") else path
        if fmt == "zarr":
            return xr.open_zarr(local, decode_times=False, chunks=None, consolidated=None)
        if not os.path.exists(local):
            raise InputError("file not found", path=path, attribute="path")
        if truncated := chunkread.truncation(local):  # size vs header: netCDF-C says "HDF error"
            raise InputError(truncated, path=path, attribute="size")  # (classic: reads zeros)
        limit_netcdf_chunk_cache()
        if not config.get("pipeline.fast-inflate", True):
            return xr.open_dataset(local, engine="netcdf4", decode_times=False, chunks=None)
        raw = xr.open_dataset(local, engine="netcdf4", decode_cf=False, chunks=None)
        return xr.decode_cf(_chunk_read_fields(raw, local), decode_times=False)
    except GridfluxError:
        raise
    except FileNotFoundError as exc:
        raise InputError("file not found", path=where, attribute="path") from exc
    except Exception as exc:  # noqa: BLE001 - netCDF4/h5py/zarr raise many types for bad files
        text = remote.scrub(f"{type(exc).__name__}: {exc}", so)
        if "truncated file" in text:
            raise InputError(
                f"is truncated ({text}); expected a complete {fmt} file",
                path=where,
                attribute="size",
            ) from exc
        raise InputError(
            f"cannot be opened as {fmt} ({text}); expected a readable {fmt} file",
            path=where,
            attribute="format",
        ) from exc


def _chunk_read_fields(ds, path: str):
    """``ds`` (opened undecoded) with its fields (variables of 3 or more dimensions) read by
    :mod:`gridflux.ingest.chunkread` (libdeflate: a faster inflate than zlib's) where their filters
    allow."""
    from gridflux.ingest.chunkarray import chunk_variable

    for name, var in ds.data_vars.items():
        if var.ndim >= 3:
            ds[name] = chunk_variable(var.variable, path, str(name))
    return ds


def _chunk_sizes(offset: int, n: int, cm: int) -> tuple[int, ...]:
    """Time chunks of a file starting ``offset`` months into the series, aligned to ``cm``."""
    sizes = []
    first = min(n, cm - offset % cm)
    if first:
        sizes.append(first)
    rest = n - first
    while rest > 0:
        sizes.append(min(cm, rest))
        rest -= cm
    return tuple(sizes)


def open_series(
    record: SeriesRecord,
    *,
    chunks: Mapping[str, int] | None = None,
    storage_options: Mapping[str, Any] | None = None,
):
    """Open all files of a series lazily as one ``xr.Dataset`` (nothing computed).

    Each file's time axis is decoded by gridflux (also ``months since``) to cftime month starts
    in the source calendar; files are ordered by their first month and concatenated along
    ``time`` (a split at any month is fine; overlapping files are an :class:`InputError` naming
    both). fx fields (``sftlf``, ``areacella``) are joined as variables. Data are dask arrays with
    time chunks of ``chunks['time']`` (default ``pipeline.chunk-months``) months aligned to the
    series start, full lat/lon.
    """
    import xarray as xr

    from gridflux.fields.axes import find_dim
    from gridflux.fields.normalize import resolve_variable
    from gridflux.fields.timeaxis import (
        canonical_calendar,
        decode_dates,
        decode_month_keys,
        has_sub_monthly_steps,
        key_label,
        month_starts,
    )

    cm = int((chunks or {}).get("time", config.get("pipeline.chunk-months", 12)))
    parts = []
    raw = record.raw_variable
    for p in record.paths:
        ds = open_one(p, record.format, storage_options)
        if raw not in ds.data_vars:
            try:
                _, raw2 = resolve_variable(ds, record.variable)
            except KeyError:
                raw2 = raw
            if raw2 not in ds.data_vars:
                raise InputError(
                    "is not in the file; expected one of its data variables "
                    f"{sorted(map(str, ds.data_vars))}",
                    path=p,
                    variable=raw,
                    attribute="name",
                )
            raw = raw2
        da = ds[raw]
        tdim = find_dim(da, ds, "time", p)
        t = ds[tdim]
        cal = canonical_calendar(record.calendar or t.attrs.get("calendar"), path=p, variable=tdim)
        bname = t.attrs.get("bounds")
        bounds = np.asarray(ds[bname].values) if bname and bname in ds.variables else None
        keys = decode_month_keys(
            np.asarray(t.values), t.attrs.get("units"), cal, bounds=bounds, path=p, variable=tdim
        )
        ydim = find_dim(da, ds, "lat", p)
        xdim = find_dim(da, ds, "lon", p)
        keep = [raw] + [v for v in ds.data_vars if v != raw and tdim not in ds[v].dims]
        sub = ds[keep].drop_vars(
            [v for v in ds.coords if v not in (ydim, xdim, tdim) and tdim in ds[v].dims]
        )
        if tdim != "time":
            sub = sub.rename({tdim: "time"})
        if has_sub_monthly_steps(keys):  # daily: each step's date (normalize resamples them)
            steps = decode_dates(
                np.asarray(t.values), t.attrs.get("units"), cal, bounds=bounds, path=p
            )
            sub = sub.assign_coords(time=("time", steps))
        else:
            sub = sub.assign_coords(time=("time", month_starts(keys, cal)))
        # cheap look at the first time step (a backend read, not a dask compute)
        first = np.asarray(sub[raw].isel(time=0).values, dtype=np.float64)
        enc = sub[raw].encoding
        sub[raw].attrs["gridflux_declared_fill"] = int(
            ("_FillValue" in enc) or ("missing_value" in enc)
        )
        sub[raw].attrs["gridflux_unmasked_fill"] = int(
            bool(np.any(np.abs(first[np.isfinite(first)]) >= 1e19))
        )
        sub[raw].attrs["gridflux_missing_fraction"] = float(
            np.mean(~np.isfinite(first) | (np.abs(np.nan_to_num(first)) >= 1e19))
        )
        # small variables (bounds) into memory so that nothing later needs a dask compute
        for v in list(sub.variables):
            if v != raw and "time" not in sub[v].dims:
                sub[v] = sub[v].load()
        parts.append((keys, cal, p, sub, ydim, xdim))
    if not parts:
        raise InputError(
            "series has no files",
            path=record.catalog or None,
            variable=record.variable,
            attribute="path",
        )
    parts.sort(key=lambda x: int(x[0][0]))
    cals = {c for _, c, *_ in parts}
    if len(cals) > 1:
        raise InputError(
            f"files use different calendars {sorted(cals)}; expected one calendar per series",
            path=parts[0][2],
            variable="time",
            attribute="calendar",
        )
    for (k0, _, p0, *_), (k1, _, p1, *_) in zip(parts, parts[1:], strict=False):
        if k1[0] <= k0[-1]:
            raise InputError(
                f"overlaps {p1} (months {key_label(k1[0])}.."
                f"{key_label(min(k0[-1], k1[-1]))} in both); "
                "expected files that follow each other",
                path=p0,
                variable="time",
                attribute="values",
            )
    start = int(parts[0][0][0])
    datasets = [part[3] for part in parts]
    # time chunks aligned to the series' start, none across two files
    sizes = tuple(
        n
        for keys, _cal, _p, sub, *_ in parts
        for n in (
            _chunk_sizes(0, sub.sizes["time"], 31 * cm)  # daily steps: ~cm months per chunk
            if has_sub_monthly_steps(keys)
            else _chunk_sizes(int(keys[0]) - start, sub.sizes["time"], cm)
        )
    )
    ydim, xdim = parts[0][4], parts[0][5]
    if len(datasets) == 1:
        out = datasets[0].copy()
        field = out[raw].variable
    else:
        # the field joined *before* it becomes a dask array (chunkarray.concat_time): after a dask
        # concatenate, selecting a block's rows no longer reaches the reads, and every read would
        # be of whole fields; the other variables (bounds, fx) are the first file's
        from gridflux.ingest.chunkarray import concat_time

        times = xr.concat([d["time"] for d in datasets], dim="time")
        out = datasets[0].drop_vars([raw, "time"]).assign_coords(time=times)
        field = concat_time([d[raw].variable for d in datasets])
    out[raw] = field.chunk({"time": sizes, ydim: -1, xdim: -1})
    attrs0 = datasets[0][raw].attrs
    out[raw].attrs.update(attrs0)
    out[raw].attrs["gridflux_missing_fraction"] = attrs0["gridflux_missing_fraction"]
    out[raw].attrs["gridflux_unmasked_fill"] = int(
        any(d[raw].attrs["gridflux_unmasked_fill"] for d in datasets)
    )
    out[raw].attrs["gridflux_declared_fill"] = int(
        all(d[raw].attrs["gridflux_declared_fill"] for d in datasets)
    )
    for name, fxp in record.fx_paths.items():
        fxds = open_one(fxp, "netcdf" if not fxp.endswith(".zarr") else "zarr", storage_options)
        if name not in fxds.data_vars:
            raise InputError(
                f"fx file has no variable {name!r}", path=fxp, variable=name, attribute="name"
            )
        fv = fxds[name].load()
        fv = fv.squeeze(drop=True) if fv.ndim > 2 else fv
        if fv.shape != (out.sizes[ydim], out.sizes[xdim]):
            raise InputError(
                f"shape {fv.shape} does not match the data's (lat, lon) "
                f"{(out.sizes[ydim], out.sizes[xdim])}",
                path=fxp,
                variable=name,
                attribute="shape",
            )
        out[name] = ((ydim, xdim), np.asarray(fv.values), dict(fv.attrs))
    out.attrs["gridflux_source"] = "\n".join(part[2] for part in parts)
    out.attrs["gridflux_calendar"] = parts[0][1]
    out.attrs["gridflux_raw_variable"] = raw
    out.attrs["gridflux_series"] = record.key
    return out


def variable_attribute(
    record: SeriesRecord, name: str, storage_options: Mapping[str, Any] | None = None
) -> str | None:
    """An attribute of the series' variable in its first file (metadata only, no data read),
    e.g. the ``units`` a region mean is stored in; None when the attribute is absent."""
    if not record.paths:
        return None
    ds = open_one(record.paths[0], record.format, storage_options)
    try:
        raw = record.raw_variable if record.raw_variable in ds.variables else record.variable
        if raw not in ds.variables:
            return None
        value = ds[raw].attrs.get(name)
        return None if value is None else str(value)
    finally:
        ds.close()


def load_series(
    record: SeriesRecord,
    *,
    chunks: Mapping[str, int] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    allow_gaps: bool = False,
    strict: bool | None = None,
):
    """The canonical field of a series: ``normalize(open_series(record))`` (lazy).

    The files' known defects are repaired by the generic rules and the record's fix-table
    entries (``record.fixes``: :mod:`gridflux.ingest.fixes`), each repair recorded in the field's
    ``gridflux_history`` and ``gridflux_fixes``; ``strict`` (default ``record.strict``) refuses
    them instead. A field is per land area as its ``cell_methods`` says (``area: mean where
    land``), the table (``Lmon``) only where it has no ``area:`` method; the catalog's
    ``per_land_area`` or a fix entry overrides both.

    Raises
    ------
    InputError
        For a variable gridflux does not compute (yet): the reason from
        :func:`~gridflux.ingest.catalog.variables.classify`, e.g. a temperature (mean planned).
    """
    from gridflux.fields.normalize import normalize
    from gridflux.ingest.catalog.variables import classify
    from gridflux.ingest.fixes import normalize_arguments

    resample = str(record.traits.get("resample") or "") or None
    how = classify(
        record.variable,
        record.table_id,
        override=record.traits.get("statistic"),
        resample=resample,
    )
    if not how.computed:
        raise InputError(
            f"gridflux computes no region statistic of this variable: {how.label()}"
            + (
                ""
                if "--resample" in how.reason
                else "; expected a variable of its table (gridflux.fields.units.VARIABLES) or "
                "an alias"
            ),
            path=record.paths[0] if record.paths else record.catalog or None,
            variable=record.variable,
            attribute="name",
        )

    ds = open_series(record, chunks=chunks, storage_options=storage_options)
    fix = normalize_arguments(record.fixes)
    per_land = record.per_land_area
    if per_land is None:
        per_land = fix.pop("per_land_area", None)
    fix.pop("per_land_area", None)
    return normalize(
        ds,
        record.variable,
        raw_name=ds.attrs.get("gridflux_raw_variable", record.raw_variable),
        gas=record.gas,
        path=ds.attrs.get("gridflux_source"),
        per_land_area=per_land,
        units=record.units,
        mass_basis=record.mass_basis,
        into_land=record.into_land,
        calendar=record.calendar,
        allow_gaps=allow_gaps,
        statistic="mean" if how.statistic == "mean" else None,
        sel=str(record.traits.get("sel") or "") or None,
        strict=record.strict if strict is None else bool(strict),
        land_default=LAND_TABLES.get(record.table_id),
        land_default_source=f"table_id {record.table_id}",
        land_weighted=bool(getattr(record, "land_weighted", False)),
        mean_units=str(record.traits.get("mean_units") or "") or None,
        resample=resample,
        **fix,
    )
