"""Latitude, longitude and time axes of CF fields and their bounds, found in one place.

Every reader of a lat-lon field (``normalize``, ``masks``, the regrid front, the weight-file
writer) asks this module which dimension is the latitude, the longitude or the time, and where
the bounds are. The rules are cf_xarray's tables (``cf_xarray.criteria``), read in this order:

1. attributes of the dimension's coordinate variable: ``standard_name``, ``units``,
   ``_CoordinateAxisType`` (``coordinate_criteria['latitude']`` ...); an ``axis`` attribute
   (``Y``/``X``/``T``) counts when the units are degrees or absent and the standard_name is not
   a rotated-pole or projection coordinate (``grid_latitude``, ``projection_y_coordinate``);
2. the dimension's name, matched case-insensitively and in full against cf_xarray's name
   patterns (``lat``, ``latitude``, ``LAT``, ``nav_lat``, ``lat2``; ``lon`` ...; ``time``, ``t``).

Only a dimension that carries a 1-D numeric coordinate variable qualifies: an index dimension
(``y``/``x`` without values, or a ``lat`` dimension whose values are missing) is never taken for
degrees. A grid whose latitude/longitude are 2-D (curvilinear) is refused with what to do.

Bounds: the coordinate's CF ``bounds`` attribute (cf_xarray's ``.cf.bounds``), then the usual
names ``{coord}_bnds``, ``{coord}_bounds``, ``bounds_{coord}``, ``{coord}_bnd``.
"""

from __future__ import annotations

from collections import ChainMap
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from cf_xarray.criteria import coordinate_criteria
from cf_xarray.criteria import regex as cf_name_patterns

from gridflux.errors import InputError
from gridflux.kernels.grids import CellBounds, is_descending

if TYPE_CHECKING:
    from gridflux.kernels.sparse import StorageOrder

#: gridflux's axis keys -> cf_xarray's coordinate keys and CF ``axis`` letters.
CF_COORDINATE = {"lat": "latitude", "lon": "longitude", "time": "time"}
CF_AXIS = {"lat": "Y", "lon": "X", "time": "T"}
#: name patterns (cf_xarray's), matched in full on the lower-cased dimension name
NAME_PATTERNS = {
    "lat": cf_name_patterns["latitude"],
    "lon": cf_name_patterns["longitude"],
    "time": None,
}
TIME_NAMES = ("time", "t")
BOUNDS_NAMES = ("{}_bnds", "{}_bounds", "bounds_{}", "{}_bnd")
_DEGREE_UNITS = {
    "lat": set(coordinate_criteria["latitude"]["units"]) | {"degrees", "degree", "degN"},
    "lon": set(coordinate_criteria["longitude"]["units"]) | {"degrees", "degree", "degE"},
}
CURVILINEAR_ADVICE = (
    "gridflux reads lat-lon grids with 1-D latitude and longitude coordinates: regrid the file "
    "to a rectilinear grid first (e.g. `cdo remapcon,r720x360 IN OUT`), or give it 1-D "
    "latitude/longitude coordinate variables"
)


def _as_dataset(obj: xr.DataArray | xr.Dataset) -> xr.Dataset:
    return obj.coords.to_dataset() if isinstance(obj, xr.DataArray) else obj


def _coordinate(da: xr.DataArray | xr.Dataset, ds: xr.Dataset, dim: str) -> xr.DataArray | None:
    """The 1-D coordinate variable of a dimension (from ``da`` or ``ds``), or None for an index."""
    for holder in (da.coords, ds.variables):
        if dim in holder:
            c = holder[dim]
            if c.ndim == 1 and c.dims == (dim,):
                return c if isinstance(c, xr.DataArray) else xr.DataArray(c, name=dim)
    return None


def _attrs_say(c: xr.DataArray, axis: str) -> bool:
    """Whether a coordinate's attributes (cf_xarray's criteria) make it the given axis."""
    attrs = ChainMap(c.attrs, c.encoding)
    for criterion, expected in coordinate_criteria[CF_COORDINATE[axis]].items():
        if attrs.get(criterion) in expected:
            return True
    if attrs.get("axis") == CF_AXIS[axis]:
        if axis == "time":
            return True
        if attrs.get("standard_name") in coordinate_criteria[CF_AXIS[axis]]["standard_name"]:
            return False  # grid_latitude (rotated pole), projection_y_coordinate: not degrees N
        units = attrs.get("units")
        return units is None or str(units) in _DEGREE_UNITS[axis]
    if axis == "time" and np.issubdtype(c.dtype, np.datetime64):
        return True
    return axis == "time" and c.dtype == object and c.size > 0 and hasattr(c.values[0], "calendar")


def _name_says(dim: str, axis: str) -> bool:
    if axis == "time":
        return dim.lower() in TIME_NAMES
    return NAME_PATTERNS[axis].fullmatch(dim.lower()) is not None


def _numeric(c: xr.DataArray, axis: str) -> bool:
    return axis == "time" or c.dtype.kind in "iuf"


def find_dim(
    da: xr.DataArray,
    ds: xr.Dataset | None = None,
    axis: str = "lat",
    path: str | None = None,
) -> str:
    """The dimension of ``da`` that is its latitude, longitude or time axis.

    Parameters
    ----------
    da : the variable
    ds : the dataset it came from (its coordinates and their attributes); default ``da``'s own
    axis : ``lat``, ``lon`` or ``time``
    path : file name(s), for messages

    Raises
    ------
    InputError
        Naming the file, the variable and what is missing; a curvilinear grid (2-D latitude or
        longitude) says what to do.
    """
    if axis not in CF_COORDINATE:
        raise ValueError(f"axis {axis!r}: expected one of {tuple(CF_COORDINATE)}")
    ds = _as_dataset(da) if ds is None else ds
    coords = {str(d): _coordinate(da, ds, str(d)) for d in da.dims}
    for d, c in coords.items():
        if c is not None and _numeric(c, axis) and _attrs_say(c, axis):
            return d
    for d, c in coords.items():
        if c is not None and _numeric(c, axis) and _name_says(d, axis):
            return d
    _explain_missing(da, ds, axis, path, coords)
    raise AssertionError("unreachable")  # pragma: no cover


def _explain_missing(
    da: xr.DataArray,
    ds: xr.Dataset,
    axis: str,
    path: str | None,
    coords: dict[str, xr.DataArray | None],
) -> None:
    name = str(da.name) if da.name is not None else "dataset"
    if axis != "time":
        two_d = curvilinear_coordinates(da, ds)
        if two_d:
            dims = ", ".join(f"{n!r} {tuple(map(str, ds[n].dims))}" for n in two_d)
            raise InputError(
                f"is on a curvilinear grid (2-D latitude/longitude {dims}); {CURVILINEAR_ADVICE}",
                path=path,
                variable=name,
                attribute="coordinates",
            )
    index_dims = [d for d, c in coords.items() if c is None and _name_says(d, axis)]
    if index_dims:
        raise InputError(
            f"dimension {index_dims[0]!r} has no coordinate values (an index is not in degrees); "
            f"give the file a 1-D {CF_COORDINATE[axis]} coordinate variable {index_dims[0]!r}",
            path=path,
            variable=name,
            attribute="dimensions",
        )
    expected = (
        "a coordinate with standard_name 'time' or axis 'T', or a dimension named 'time'"
        if axis == "time"
        else f"a 1-D coordinate with standard_name {CF_COORDINATE[axis]!r}, units like "
        f"{'degrees_north' if axis == 'lat' else 'degrees_east'!r} or axis {CF_AXIS[axis]!r}, "
        f"or a name like {'lat, latitude, nav_lat' if axis == 'lat' else 'lon, longitude, nav_lon'}"
    )
    dim_names = tuple(map(str, da.dims))
    raise InputError(
        f"has no {CF_COORDINATE[axis]} dimension (dims {dim_names}); expected {expected}",
        path=path,
        variable=name,
        attribute="dimensions",
    )


def curvilinear_coordinates(
    da: xr.DataArray | xr.Dataset, ds: xr.Dataset | None = None
) -> list[str]:
    """Names of 2-D (or higher) latitude/longitude variables that span ``da``'s dimensions."""
    ds = _as_dataset(da) if ds is None else ds
    dims = set(map(str, da.dims))
    found = []
    for n, v in ds.variables.items():
        if v.ndim < 2 or not set(map(str, v.dims)) <= dims | {"bnds", "nv", "nvertex", "vertices"}:
            continue
        c = xr.DataArray(v)
        if any(_attrs_say(c, a) or _name_says(str(n), a) for a in ("lat", "lon")):
            if not any(str(d) in ("bnds", "nv", "nvertex", "vertices") for d in v.dims):
                found.append(str(n))
    return found


def find_latlon(
    obj: xr.DataArray | xr.Dataset, ds: xr.Dataset | None = None, path: str | None = None
) -> tuple[str, str]:
    """Names of the latitude and longitude dimensions of a DataArray or a Dataset."""
    if isinstance(obj, xr.Dataset):
        ds = obj if ds is None else ds
        # a Dataset's dimensions, as a DataArray without data (broadcast: no memory)
        dims = {str(d): int(n) for d, n in obj.sizes.items()}
        probe = xr.DataArray(
            np.broadcast_to(np.float32(0), tuple(dims.values())), dims=tuple(dims), name=None
        )
        return find_dim(probe, ds, "lat", path), find_dim(probe, ds, "lon", path)
    return find_dim(obj, ds, "lat", path), find_dim(obj, ds, "lon", path)


def bounds_of(obj: xr.DataArray | xr.Dataset, coord: str) -> xr.DataArray | None:
    """The ``(n, 2)`` bounds variable of a 1-D coordinate (CF ``bounds``, then usual names).

    Returns the bounds transposed to ``(coord, other)``, or None when there are none (or they do
    not have the shape of bounds: the reader then infers them).
    """
    ds = _as_dataset(obj)
    names = cf_bounds(ds, coord)
    names += [p.format(coord) for p in BOUNDS_NAMES]
    for n in names:
        if n in ds.variables:
            b = ds[n]
            if b.ndim == 2 and coord in b.dims:
                other = next(d for d in b.dims if d != coord)
                if b.sizes[other] == 2:
                    return b.transpose(coord, other)
    return None


def cf_bounds(ds: xr.Dataset, name: Any) -> list:
    """``ds.cf.bounds.get(name, [])``: the bounds variables cf_xarray names for ``name``.

    For a variable of ``ds`` that is its ``bounds`` attribute (or encoding), when it names a
    variable of ``ds``: what cf_xarray (>= 0.11.3) answers for a variable's own name, read
    directly, because ``ds.cf.bounds`` resolves every CF key of the dataset first (~8 ms on a
    data-free dataset of a file's small variables, twice per new layout of files in
    ``ingest.fastopen``; tests/fields/test_axes.py compares the two). Other names (CF keys such
    as ``latitude`` that are not a variable): cf_xarray's mapping."""
    var = ds.variables.get(name)
    if var is None:
        return list(ds.cf.bounds.get(name, []))
    bounds = ChainMap(var.attrs, var.encoding).get("bounds")
    return [bounds] if bounds is not None and bounds in ds.variables else []


def _values(obj: xr.DataArray | xr.Dataset, name: str) -> np.ndarray:
    return np.asarray(obj[name].values, dtype=np.float64)


def grid_of(
    obj: xr.DataArray | xr.Dataset, ds: xr.Dataset | None = None, path: str | None = None
) -> CellBounds:
    """The canonical :class:`CellBounds` of an object's lat-lon grid (file bounds or inferred).

    ``ds`` is the dataset a DataArray came from (its coordinates and bounds variables); the grid
    is that of ``obj``'s own latitude/longitude dimensions. Latitude north to south and
    longitude east to west are accepted: the grid is canonical (ascending), and
    :func:`canonical_order` puts the data in the same order.
    """
    lat, lon = find_latlon(obj, ds, path=path)
    src = obj if ds is None else ds
    lat_v, lon_v = _values(src, lat), _values(src, lon)
    lat_b, lon_b = bounds_of(src, lat), bounds_of(src, lon)
    lat_bv = None if lat_b is None else np.asarray(lat_b.values, dtype=np.float64)
    lon_bv = None if lon_b is None else np.asarray(lon_b.values, dtype=np.float64)
    if lon_decreasing(lon_v):
        lon_v = lon_v[::-1]
        lon_bv = None if lon_bv is None else lon_bv[::-1]
    return CellBounds.from_centers(lat_v, lon_v, lat_bv, lon_bv, lat_name=lat, lon_name=lon)


def lon_decreasing(lon: np.ndarray) -> bool:
    """True when longitudes are stored east to west (every step negative)."""
    lon = np.asarray(lon)
    return lon.size > 1 and bool(np.all(np.diff(lon) < 0))


def storage_flips(obj: xr.DataArray | xr.Dataset) -> tuple[bool, bool]:
    """Whether the file stores latitude north to south and longitude east to west.

    ``(True, False)`` means the file's rows are the canonical rows reversed; the canonical
    order of :func:`grid_of` reversed by these flags is the file's own storage order.
    """
    lat, lon = find_latlon(obj)
    return is_descending(_values(obj, lat)), lon_decreasing(_values(obj, lon))


def canonical_order(da: xr.DataArray, ds: xr.Dataset | None = None) -> xr.DataArray:
    """Reverse a north-to-south latitude (and an east-to-west longitude) axis lazily.

    The result is in the order of :func:`grid_of`'s canonical grid; a view per chunk, no copy.
    """
    lat, lon = find_latlon(da, ds)
    src = da if ds is None else ds
    flip: dict[str, Any] = {}
    if is_descending(_values(src, lat)):
        flip[lat] = slice(None, None, -1)
    if lon_decreasing(_values(src, lon)):
        flip[lon] = slice(None, None, -1)
    return da.isel(flip) if flip else da


def storage_order(obj: Any) -> StorageOrder:
    """How an xarray Dataset/DataArray stores its lat-lon grid's cells (N->S rows, E->W columns),
    with its own centre values in degrees: what a weight file written for it must follow."""
    from gridflux.kernels.sparse import StorageOrder

    lat, lon = find_latlon(obj)
    la = np.asarray(obj[lat].values, dtype=np.float64)
    lo = np.asarray(obj[lon].values, dtype=np.float64)
    return StorageOrder(is_descending(la), lon_decreasing(lo), la, lo)
