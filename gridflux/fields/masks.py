"""Fractional region masks: :class:`RegionMask`.

A region mask holds one or more named regions as fractions in [0, 1] of each cell of a lat-lon
grid (the fraction of the cell's area inside the region). It can be read from netCDF or zarr,
built from polygons (optional ``shapely``), and regridded conservatively to any other lat-lon
grid, where each value becomes the fraction of that cell inside the region.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gridflux.errors import GridError, MaskError
from gridflux.kernels.conservative import apply_separable, conservative_weights
from gridflux.kernels.grids import EARTH_RADIUS, CellBounds, cell_areas

_TOL = 1e-9


#: grids a mask keeps itself on (:meth:`RegionMask.to_grid`), oldest dropped first
ON_GRID_MAX = 4
_ON_GRID: weakref.WeakKeyDictionary[RegionMask, dict[str, RegionMask]] = weakref.WeakKeyDictionary()


def grid_content_key(grid: CellBounds) -> str:
    """A key of a grid's content: the shapes and bytes of its latitude and longitude edges
    (the shapes too: the edges of 2 rows and 3 columns and of 3 rows and 2 columns can hold the
    same 10 numbers)."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for b in (grid.lat_bounds, grid.lon_bounds):
        h.update(repr((b.dtype.str, b.shape)).encode())
        h.update(np.ascontiguousarray(b).tobytes())
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class RegionMask:
    """Named fractional regions on a lat-lon grid.

    Attributes
    ----------
    names : tuple of str
    fractions : (region, nlat, nlon) float64 in [0, 1], latitude ascending (as ``grid``)
    grid : CellBounds
    """

    names: tuple[str, ...]
    fractions: np.ndarray
    grid: CellBounds

    def __post_init__(self) -> None:
        f = np.asarray(self.fractions, dtype=np.float64)
        if f.ndim == 2:
            f = f[None]
        names = tuple(str(n) for n in self.names)
        if f.shape != (len(names),) + self.grid.shape:
            raise MaskError(
                f"mask has shape {f.shape} but {len(names)} region(s) on a {self.grid.shape} grid "
                "need "
                f"{(len(names),) + self.grid.shape}"
            )
        if len(set(names)) != len(names):
            raise MaskError(f"duplicate region names in {names}")
        f = np.where(np.isnan(f), 0.0, f)
        lo, hi = float(f.min()), float(f.max())
        if lo < -_TOL or hi > 1 + _TOL:
            k = int(np.unravel_index(np.argmax((f < -_TOL) | (f > 1 + _TOL)), f.shape)[0])
            hint = " (a percentage mask: divide it by 100)" if lo >= 0 and hi <= 100 else ""
            raise MaskError(
                f"region {names[k]!r}: mask values range over [{lo:g}, {hi:g}]; expected "
                f"fractions in [0, 1]{hint}"
            )
        f = np.clip(f, 0.0, 1.0)
        f.setflags(write=False)
        object.__setattr__(self, "fractions", f)
        object.__setattr__(self, "names", names)

    # -- properties ---------------------------------------------------------------------------
    def region(self, name: str) -> np.ndarray:
        """The fraction field of one region."""
        try:
            return self.fractions[self.names.index(name)]
        except ValueError:
            raise MaskError(f"unknown region {name!r}; expected one of {self.names}") from None

    def areas(self, radius: float = EARTH_RADIUS) -> dict[str, float]:
        """Area of each region (m2): sum of fraction x exact cell area."""
        a = cell_areas(self.grid, radius)
        return {n: float((f * a).sum()) for n, f in zip(self.names, self.fractions, strict=True)}

    def bounding_rows_cols(self) -> tuple[slice, slice]:
        """Row and column slices that contain every nonzero cell of every region."""
        any_ = self.fractions.max(axis=0) > 0
        rows = np.flatnonzero(any_.any(axis=1))
        cols = np.flatnonzero(any_.any(axis=0))
        if rows.size == 0:
            raise MaskError(f"every region of {self.names} is empty")
        return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)

    def select(self, names: Sequence[str]) -> RegionMask:
        """A mask with only the named regions."""
        return RegionMask(tuple(names), np.stack([self.region(n) for n in names]), self.grid)

    # -- regridding ---------------------------------------------------------------------------
    def to_grid(self, grid: CellBounds) -> RegionMask:
        """The mask on another lat-lon grid: fraction of each of its cells inside each region.

        Exact conservative (``destarea``) regridding: cells outside the mask's grid count as
        outside every region.
        """
        if grid == self.grid:
            return self
        # memoised per mask (immutable: names, read-only fractions and grid) by the grid's content,
        # so the run's setup and its series, and series that share a source grid, regrid it once
        memo = _ON_GRID.setdefault(self, {})
        key = grid_content_key(grid)
        hit = memo.get(key)
        if hit is None:
            w = conservative_weights(self.grid, grid)
            fractions = np.clip(apply_separable(w, self.fractions), 0.0, 1.0)
            hit = memo[key] = RegionMask(self.names, fractions, grid)
            while len(memo) > ON_GRID_MAX:
                memo.pop(next(iter(memo)))
        return hit

    def check_nonempty(self, source: str | None = None) -> None:
        """Raise :class:`MaskError` naming every region that has no cell inside it (all zero)."""
        empty = [n for n, f in zip(self.names, self.fractions, strict=True) if not np.any(f > 0)]
        if empty:
            where = f"{source}: " if source else ""
            raise MaskError(
                f"{where}region(s) {', '.join(map(repr, empty))} have no cell inside (every "
                "value 0 or missing): their totals would be 0 for every series; fix the mask or "
                "leave them out with --regions"
            )

    # -- I/O ----------------------------------------------------------------------------------
    @classmethod
    def from_dataarray(
        cls,
        da,
        name: str | None = None,
        grid: CellBounds | None = None,
        *,
        ds=None,
        source: str | None = None,
    ) -> RegionMask:
        """From an xarray DataArray with dims ``(region, lat, lon)`` or ``(lat, lon)``.

        Parameters
        ----------
        da : the mask variable: fractions in [0, 1] (NaN = outside); any latitude order
        name : the region's name for a 2-D variable (default: the variable's name)
        grid : exact bounds (default: from the coordinates of ``da`` or ``ds``)
        ds : the dataset ``da`` came from (its coordinates, bounds and time axis)
        source : the file, for messages

        Raises
        ------
        MaskError
            Naming file and variable: a time axis, extra dimensions, values outside [0, 1], a
            region with no cell inside (all 0 or all NaN).
        """
        from gridflux.errors import InputError
        from gridflux.fields.axes import canonical_order, find_dim, find_latlon, grid_of

        var = str(da.name) if da.name is not None else (name or "mask")
        where = f"{source}: variable {var!r}" if source else f"variable {var!r}"
        try:
            lat, lon = find_latlon(da, ds, path=source)
            grid = grid_of(da, ds, path=source) if grid is None else grid
        except InputError as exc:
            raise MaskError(str(exc)) from exc
        except GridError as exc:
            raise MaskError(f"{where}: {exc}") from exc
        others = [str(d) for d in da.dims if d not in (lat, lon)]
        if others:
            try:
                tdim = find_dim(da, ds, "time")
            except InputError:
                tdim = None
            if tdim is not None:
                raise MaskError(
                    f"{where} has a time axis {tdim!r} ({da.sizes[tdim]} steps), so it is not a "
                    f"region mask (a data file given as the mask?); expected (lat, lon) or "
                    f"(region, lat, lon) fractions in [0, 1]"
                )
        if len(others) > 1:
            raise MaskError(
                f"{where} has dims {tuple(map(str, da.dims))}; expected (lat, lon) or "
                "(region, lat, lon)"
            )
        da = canonical_order(da, ds)
        if not others:
            names = [name or var]
            values = da.transpose(lat, lon).values[None]
        else:
            rdim = others[0]
            if rdim in da.coords:
                names = [str(v) for v in np.asarray(da[rdim].values).ravel()]
            elif var == "mask":
                names = [f"region{i}" for i in range(da.sizes[rdim])]
            else:
                names = [f"{var}_{i}" for i in range(da.sizes[rdim])]
            values = da.transpose(rdim, lat, lon).values
        values = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(values)
        if finite.any():
            lo, hi = float(values[finite].min()), float(values[finite].max())
            if lo < -_TOL or hi > 1 + _TOL:
                hint = (
                    " (a percentage mask: divide it by 100)"
                    if lo >= 0 and hi <= 100
                    else " (not a fraction mask: a data variable?)"
                )
                raise MaskError(
                    f"{where}: values range over [{lo:g}, {hi:g}]; expected fractions of cell "
                    f"area in [0, 1]{hint}"
                )
        for n, ok in zip(names, finite, strict=True):
            if not ok.any():
                raise MaskError(f"{where}: region {n!r} is all missing (NaN): no cell inside")
        try:
            mask = cls(tuple(names), values, grid)
        except MaskError as exc:
            raise MaskError(f"{where}: {exc}") from exc
        mask.check_nonempty(where)
        return mask

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        regions: Sequence[str] | None = None,
        *,
        variable: str | None = None,
        storage_options: dict | None = None,
    ) -> RegionMask:
        """Read every region of a mask file (netCDF or zarr), or the ``regions`` asked for.

        A file may hold regions as a ``region`` dimension of one variable (named by its
        coordinate), as separate 2-D ``(lat, lon)`` variables (named by the variable), or both.
        Bounds variables are part of the grid; 0-d variables (``crs``) are metadata. Any other
        variable must be a mask: one on another grid, with a time axis or with values outside
        [0, 1] is an error that names it. ``variable`` reads that variable only.

        Raises
        ------
        MaskError
            Naming the file and the variable; also for an unknown region in ``regions``, a name
            that two variables give, and a region with no cell inside.
        """
        import xarray as xr

        p = os.fspath(path)
        try:
            if p.rstrip("/").endswith(".zarr") or os.path.isdir(p):
                ds = xr.open_zarr(p, storage_options=storage_options)
            else:
                ds = xr.open_dataset(p)
        except Exception as exc:
            raise MaskError(f"{p}: cannot open the region mask: {exc}") from exc
        with ds:
            if variable is not None and variable not in ds.data_vars:
                raise MaskError(f"{p}: no variable {variable!r}; found {list(ds.data_vars)}")
            names = [variable] if variable is not None else mask_variables(ds)
            if not names:
                raise MaskError(
                    f"{p}: no mask variable; expected (lat, lon) or (region, lat, lon) fractions, "
                    f"found {sorted(map(str, ds.data_vars))}"
                )
            masks = [cls.from_dataarray(ds[v].load(), name=str(v), ds=ds, source=p) for v in names]
        seen: dict[str, str] = {}
        for v, m in zip(names, masks, strict=True):
            for n in m.names:
                if n in seen:
                    raise MaskError(
                        f"{p}: region name {n!r} is given by variable {seen[n]!r} and by {v!r}"
                    )
                seen[n] = str(v)
        grid = masks[0].grid
        for v, m in zip(names[1:], masks[1:], strict=True):
            if m.grid != grid:
                raise MaskError(
                    f"{p}: variable {v!r} is on {m.grid!r}, not on the grid of {names[0]!r} "
                    f"({grid!r}); a mask file holds one grid"
                )
        mask = cls(
            tuple(n for m in masks for n in m.names),
            np.concatenate([m.fractions for m in masks]),
            grid,
        )
        if regions is not None:
            wanted = [str(r) for r in regions]
            unknown = [r for r in wanted if r not in mask.names]
            if unknown:
                raise MaskError(
                    f"{p}: no region {', '.join(map(repr, unknown))}; the file holds "
                    f"{', '.join(mask.names)}"
                )
            mask = mask.select(wanted)
        return mask

    def to_dataarray(self):
        """The mask as an xarray DataArray ``(region, lat, lon)`` with CF bounds."""
        import xarray as xr

        from gridflux.fields.regrid import grid_coords

        return xr.DataArray(
            self.fractions,
            dims=("region", "lat", "lon"),
            coords={"region": list(self.names), **grid_coords(self.grid)},
            name="mask",
            attrs={"long_name": "fraction of cell area inside region", "units": "1"},
        )

    def to_dataset(self):
        """The mask and its grid's CF bounds variables (``lat_bnds``, ``lon_bnds``) as a Dataset."""
        from gridflux.fields.regrid import grid_dataset

        return grid_dataset(self.grid).assign(mask=self.to_dataarray())

    def to_netcdf(self, path: str | os.PathLike) -> None:
        """Write the mask with its bounds variables, so that any reader recovers the exact grid."""
        self.to_dataset().to_netcdf(path)

    # -- polygons -----------------------------------------------------------------------------
    @classmethod
    def from_polygons(cls, polygons: dict, grid: CellBounds) -> RegionMask:
        """Exact fractional coverage of grid cells by polygons (needs ``shapely``).

        ``polygons`` maps region names to shapely (multi)polygons or GeoJSON geometry dicts
        with vertices in (lon, lat) degrees. Coverage is computed in the (lon, sin lat) plane,
        the Lambert cylindrical equal-area projection, where areas are proportional to
        spherical areas, so cells and boxes bounded by parallels and meridians are exact.
        """
        try:
            import shapely
            from shapely.geometry import shape
        except ImportError as exc:  # optional extra
            raise MaskError(
                "building masks from polygons needs shapely: pip install 'gridflux[geo]'"
            ) from exc

        s_lat = np.sin(np.radians(grid.lat_bounds))
        x0, x1 = (
            np.broadcast_to(grid.lon_bounds[:, k][None, :], grid.shape).ravel() for k in (0, 1)
        )
        y0, y1 = (np.broadcast_to(s_lat[:, k][:, None], grid.shape).ravel() for k in (0, 1))
        boxes = shapely.box(x0, y0, x1, y1)
        box_area = (x1 - x0) * (y1 - y0)
        tree = shapely.STRtree(boxes)
        names, fracs = [], []
        for name, geom in polygons.items():
            g = geom if hasattr(geom, "geom_type") else shape(geom)
            g = shapely.transform(
                g, lambda xy: np.column_stack([xy[:, 0], np.sin(np.radians(xy[:, 1]))])
            )
            frac = np.zeros(boxes.size)
            for shift in (-360.0, 0.0, 360.0):
                gs = shapely.transform(g, lambda xy, s=shift: xy + np.array([s, 0.0]))
                idx = tree.query(gs, predicate="intersects")
                if idx.size:
                    frac[idx] += shapely.area(shapely.intersection(boxes[idx], gs)) / box_area[idx]
            names.append(name)
            fracs.append(np.clip(frac, 0, 1).reshape(grid.shape))
        return cls(tuple(names), np.stack(fracs), grid)

    @classmethod
    def from_geojson(
        cls, path: str | os.PathLike, grid: CellBounds, name_property: str = "name"
    ) -> RegionMask:
        """Regions from a GeoJSON FeatureCollection (one region per feature, named by
        ``name_property``)."""
        import json

        with open(path) as f:
            doc = json.load(f)
        feats = doc.get("features", [doc]) if isinstance(doc, dict) else doc
        polys = {}
        for i, feat in enumerate(feats):
            props = feat.get("properties") or {}
            polys[str(props.get(name_property, f"region{i}"))] = feat["geometry"]
        return cls.from_polygons(polys, grid)

    @classmethod
    def from_shapefile(
        cls, path: str | os.PathLike, grid: CellBounds, name_field: str = "name"
    ) -> RegionMask:
        """Regions from an ESRI shapefile (``.shp`` with its ``.dbf``; vertices in lon/lat degrees),
        one region per record, named by the attribute ``name_field``; records of the same name are
        united.

        Read with pyshp (``pip install 'gridflux[geo]'``); coverage as :meth:`from_polygons`."""
        try:
            import shapefile  # pyshp
            import shapely
            from shapely.geometry import shape
        except ImportError as exc:  # optional extra
            raise MaskError(
                "building masks from shapefiles needs pyshp and shapely: pip install "
                "'gridflux[geo]'"
            ) from exc

        import struct

        polys: dict = {}
        try:
            reader = shapefile.Reader(str(path))
        except (shapefile.ShapefileException, OSError, struct.error) as exc:
            raise MaskError(f"{path}: not a readable shapefile ({exc})") from exc
        with reader:
            fields = [f[0] for f in reader.fields[1:]]
            if name_field not in fields:
                raise MaskError(
                    f"{path}: no attribute {name_field!r} to name the regions by; the records have "
                    f"{', '.join(fields) or 'no attributes'} (pass name_field=...)"
                )
            for i, rec in enumerate(reader.iterShapeRecords()):
                geom = rec.shape.__geo_interface__
                if geom["type"] not in ("Polygon", "MultiPolygon"):
                    raise MaskError(f"{path}: record {i} is a {geom['type']}, not a polygon")
                name = str(rec.record[name_field])
                g = shape(geom)
                polys[name] = shapely.union(polys[name], g) if name in polys else g
        return cls.from_polygons(polys, grid)


def mask_variables(ds) -> list[str]:
    """The data variables of a mask file that must be masks: all but bounds and 0-d metadata.

    Text variables (region labels) are metadata too. Bounds are the variables a coordinate names
    in its CF ``bounds`` attribute and those with a
    trailing dimension of size 2 named like ``bnds``/``nv``/``vertices``.
    """
    bounds = set()
    for v in ds.variables.values():
        b = v.attrs.get("bounds") or v.encoding.get("bounds")
        if b:
            bounds.add(str(b))
    out = []
    for n, v in ds.data_vars.items():
        if str(n) in bounds or v.ndim == 0 or v.dtype.kind in "SUO":
            continue  # bounds belong to the grid; 0-d and text variables are metadata
        if v.ndim >= 1 and str(v.dims[-1]) in _BOUNDS_DIMS and v.shape[-1] == 2:
            continue
        out.append(str(n))
    return out


_BOUNDS_DIMS = ("bnds", "bounds", "nv", "nvertex", "vertices", "nb2", "d2", "two")
