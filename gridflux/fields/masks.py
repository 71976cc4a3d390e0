"""Fractional region masks: :class:`RegionMask`.

A region mask holds one or more named regions as fractions in [0, 1] of each cell of a lat-lon
grid (the fraction of the cell's area inside the region). It can be read from netCDF or zarr,
built from polygons (optional ``shapely``), and regridded conservatively to any other lat-lon
grid, where each value becomes the fraction of that cell inside the region.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gridflux.errors import MaskError
from gridflux.kernels.conservative import apply_separable, conservative_weights
from gridflux.kernels.grids import EARTH_RADIUS, CellBounds, cell_areas

_TOL = 1e-9


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
                f"mask has shape {f.shape} but {len(names)} region(s) on a {self.grid.shape} grid need "
                f"{(len(names),) + self.grid.shape}"
            )
        if len(set(names)) != len(names):
            raise MaskError(f"duplicate region names in {names}")
        f = np.where(np.isnan(f), 0.0, f)
        lo, hi = float(f.min()), float(f.max())
        if lo < -_TOL or hi > 1 + _TOL:
            k = int(np.unravel_index(np.argmax((f < -_TOL) | (f > 1 + _TOL)), f.shape)[0])
            raise MaskError(
                f"region {names[k]!r}: mask values range over [{lo:g}, {hi:g}]; expected fractions in [0, 1] "
                "(a percentage mask must be divided by 100)"
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
        w = conservative_weights(self.grid, grid)
        return RegionMask(self.names, np.clip(apply_separable(w, self.fractions), 0.0, 1.0), grid)

    # -- I/O ----------------------------------------------------------------------------------
    @classmethod
    def from_dataarray(
        cls, da, name: str | None = None, grid: CellBounds | None = None
    ) -> RegionMask:
        """From an xarray DataArray with dims ``(region, lat, lon)`` or ``(lat, lon)``; ``grid``
        (default: from the array's coordinates) gives exact bounds when the file has them."""
        from gridflux.fields.axes import canonical_order, find_latlon, grid_of

        lat, lon = find_latlon(da)
        grid = grid_of(da) if grid is None else grid
        da = canonical_order(da)
        if da.ndim == 2:
            return cls(
                (name or str(da.name or "region"),), da.transpose(lat, lon).values[None], grid
            )
        rdim = next((d for d in da.dims if d not in (lat, lon)), None)
        if da.ndim != 3 or rdim is None:
            raise MaskError(
                f"mask variable {da.name!r} has dims {da.dims}; expected (region, lat, lon)"
            )
        names = (
            [str(v) for v in da[rdim].values]
            if rdim in da.coords
            else [f"region{i}" for i in range(da.sizes[rdim])]
        )
        return cls(tuple(names), da.transpose(rdim, lat, lon).values, grid)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        variable: str | None = None,
        storage_options: dict | None = None,
    ) -> RegionMask:
        """Read a mask from netCDF or zarr; ``variable`` defaults to ``mask`` or the only 2-D/3-D variable."""
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
            if variable is None:
                candidates = [
                    v for v in ds.data_vars if ds[v].ndim in (2, 3) and "bnds" not in ds[v].dims
                ]
                variable = (
                    "mask"
                    if "mask" in ds.data_vars
                    else (candidates[0] if len(candidates) == 1 else None)
                )
                if variable is None:
                    raise MaskError(
                        f"{p}: cannot tell which variable is the mask among {candidates}; pass variable="
                    )
            if variable not in ds:
                raise MaskError(f"{p}: no variable {variable!r}; found {list(ds.data_vars)}")
            try:
                from gridflux.fields.axes import grid_of

                return cls.from_dataarray(ds[variable].load(), name=variable, grid=grid_of(ds))
            except MaskError as exc:
                raise MaskError(f"{p}: variable {variable!r}: {exc}") from exc

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
        """Regions from a GeoJSON FeatureCollection (one region per feature, named by ``name_property``)."""
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
        """Regions from an ESRI shapefile (``.shp`` with its ``.dbf``; vertices in lon/lat degrees), one
        region per record, named by the attribute ``name_field``; records of the same name are united.

        Read with pyshp (``pip install 'gridflux[geo]'``); coverage as :meth:`from_polygons`."""
        try:
            import shapefile  # pyshp
            import shapely
            from shapely.geometry import shape
        except ImportError as exc:  # optional extra
            raise MaskError(
                "building masks from shapefiles needs pyshp and shapely: pip install 'gridflux[geo]'"
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
