"""Rectilinear latitude-longitude grids: cell bounds, their inference and exact spherical areas.

Pure numpy; no xarray, dask or files. All angles are in degrees, areas in m2.

A cell between latitudes ``s < n`` and longitudes ``w < e`` has the exact spherical area
``R**2 * radians(e - w) * (sin(n) - sin(s))``: this is what ESMF, CDO (``gencon``/``remapcon`` on
lat-lon grids) and NCO compute for lat-lon cells bounded by parallels and meridians.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gridflux.errors import GridError

#: Earth radius in metres used by ESMF and the CMIP6 ``areacella`` fields (and gridflux by default).
EARTH_RADIUS = 6371007.181
#: Earth radius in metres used by CDO.
CDO_EARTH_RADIUS = 6371000.0

# Relative tolerance (in degrees) for "these two edges are the same edge".
_EDGE_TOL = 1e-6
_EPS = float(np.finfo(np.float64).eps)
#: Gaussian latitudes stored at full float64 precision are recognised to this (degrees).
GAUSS_TOL_FLOAT64 = 1e-6
#: ... stored as float32 numbers (also inside a float64 variable): 2 float32 ulps at 64..90 deg.
GAUSS_TOL_FLOAT32 = 2.0 * 2.0**-17
#: Never more than this (degrees): the regular grid nearest to any Gaussian grid of 4..4000 rows
#: (equal steps between the same outer latitudes) is >= 6.7e-4 deg away from it somewhere.
GAUSS_TOL_MAX = 1e-4


@dataclass(frozen=True, eq=False)
class CellBounds:
    """Cell edges of a rectilinear lat-lon grid, in canonical order.

    Parameters
    ----------
    lat_bounds : (nlat, 2) float64, degrees
        ``[south, north]`` of each row; rows strictly ascending and contiguous, within [-90, 90].
    lon_bounds : (nlon, 2) float64, degrees
        ``[west, east]`` of each column with ``east > west``; columns increasing and contiguous,
        total span <= 360. Any origin is allowed (0..360, -180..180, a first cell across 0).
    """

    lat_bounds: np.ndarray
    lon_bounds: np.ndarray

    def __post_init__(self) -> None:
        lat_b = np.ascontiguousarray(self.lat_bounds, dtype=np.float64)
        lon_b = np.ascontiguousarray(self.lon_bounds, dtype=np.float64)
        _check_lat_bounds(lat_b, "lat_bnds")
        _check_lon_bounds(lon_b, "lon_bnds")
        lat_b.setflags(write=False)
        lon_b.setflags(write=False)
        object.__setattr__(self, "lat_bounds", lat_b)
        object.__setattr__(self, "lon_bounds", lon_b)

    # -- derived ---------------------------------------------------------------------------
    @property
    def nlat(self) -> int:
        return self.lat_bounds.shape[0]

    @property
    def nlon(self) -> int:
        return self.lon_bounds.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.nlat, self.nlon)

    @property
    def lat(self) -> np.ndarray:
        """Row centres (degrees): midpoints of the bounds."""
        return self.lat_bounds.mean(axis=1)

    @property
    def lon(self) -> np.ndarray:
        """Column centres (degrees): midpoints of the bounds."""
        return self.lon_bounds.mean(axis=1)

    @property
    def lon_span(self) -> float:
        return float(self.lon_bounds[-1, 1] - self.lon_bounds[0, 0])

    @property
    def is_global_lon(self) -> bool:
        return abs(self.lon_span - 360.0) < _EDGE_TOL

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CellBounds):
            return NotImplemented
        return (
            self.shape == other.shape
            and np.array_equal(self.lat_bounds, other.lat_bounds)
            and np.array_equal(self.lon_bounds, other.lon_bounds)
        )

    def __hash__(self) -> int:
        return hash((self.lat_bounds.tobytes(), self.lon_bounds.tobytes()))

    def __repr__(self) -> str:
        return (
            f"CellBounds({self.nlat} x {self.nlon}; lat "
            f"{self.lat_bounds[0, 0]:g}..{self.lat_bounds[-1, 1]:g}, "
            f"lon {self.lon_bounds[0, 0]:g}..{self.lon_bounds[-1, 1]:g})"
        )

    def fingerprint(self) -> str:
        """A short stable hash of the edges (used to key weight caches)."""
        import hashlib

        h = hashlib.sha1()
        h.update(self.lat_bounds.tobytes())
        h.update(self.lon_bounds.tobytes())
        return h.hexdigest()[:16]

    def cache_key(self) -> str:
        """:meth:`fingerprint` with the edges' shapes: the key of in-memory caches (weights, masks
        on a grid). The fingerprint alone hashes the latitude and longitude edges' bytes one after
        the other, so two grids whose edges split one sequence of values differently (2 x 3 and
        3 x 2 cells) would share it; the fingerprint stays as it is because stores keep it."""
        return f"{self.fingerprint()}-{self.lat_bounds.shape}-{self.lon_bounds.shape}"

    def subset(self, lat_slice: slice = slice(None), lon_slice: slice = slice(None)) -> CellBounds:
        """The sub-grid of the given row and column slices (steps of 1 only)."""
        return CellBounds(self.lat_bounds[lat_slice], self.lon_bounds[lon_slice])

    # -- constructors ----------------------------------------------------------------------
    @classmethod
    def from_centers(
        cls,
        lat: np.ndarray,
        lon: np.ndarray,
        lat_bounds: np.ndarray | None = None,
        lon_bounds: np.ndarray | None = None,
        *,
        lat_name: str = "lat",
        lon_name: str = "lon",
        lat_dtype: np.dtype | str | None = None,
    ) -> CellBounds:
        """Build canonical bounds from a file's centres and (optional) bounds variables.

        Latitudes may be ascending or descending (the result is ascending: reverse the data's
        latitude axis when ``is_descending(lat)``); bounds rows may be in either order; longitudes
        may start anywhere and cross 0 or the dateline (they are unwrapped to increase).
        Missing bounds are inferred (see :func:`infer_lat_bounds`, :func:`infer_lon_bounds`);
        ``lat_dtype`` is the dtype the file stores its latitudes with (Gaussian recognition to
        that precision: :func:`latitude_precision`).
        """
        lat = _as_1d(lat, lat_name)
        lon = _as_1d(lon, lon_name)
        _check_centres(lat, lat_name, allow_descending=True)
        if np.any(np.abs(lat) > 90.0 + _EDGE_TOL):
            bad = lat[np.abs(lat) > 90.0 + _EDGE_TOL][0]
            raise GridError(f"latitude {bad:g} is beyond +-90 degrees", variable=lat_name)
        lon = unwrap_longitudes(lon, lon_name)

        if lat_bounds is None:
            lat_b = infer_lat_bounds(lat, latitude_precision(lat, lat_dtype))
        else:
            lat_b = _as_bounds(lat_bounds, lat.size, f"{lat_name}_bnds")
        if lon_bounds is None:
            lon_b = infer_lon_bounds(lon)
        else:
            lon_b = _as_bounds(lon_bounds, lon.size, f"{lon_name}_bnds")
            lon_b = align_lon_bounds(lon_b, lon)

        lat_b = np.sort(lat_b, axis=1)
        lon_b = np.sort(lon_b, axis=1)
        if is_descending(lat):
            lat_b = lat_b[::-1]
        try:
            _check_lat_bounds(lat_b, f"{lat_name}_bnds")
            _check_lon_bounds(lon_b, f"{lon_name}_bnds")
        except GridError:
            raise
        return cls(lat_b, lon_b)


# -- checks ---------------------------------------------------------------------------------
def is_descending(lat: np.ndarray) -> bool:
    """True when a coordinate runs from north to south (strictly decreasing)."""
    lat = np.asarray(lat)
    return lat.size > 1 and bool(lat[1] < lat[0])


def _as_1d(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise GridError(
            f"expected a non-empty 1-D coordinate, got shape {arr.shape}", variable=name
        )
    if not np.all(np.isfinite(arr)):
        raise GridError("contains non-finite values", variable=name)
    return arr


def _as_bounds(bounds: np.ndarray, n: int, name: str) -> np.ndarray:
    b = np.asarray(bounds, dtype=np.float64)
    if b.shape != (n, 2):
        raise GridError(f"expected shape ({n}, 2), got {b.shape}", variable=name)
    if not np.all(np.isfinite(b)):
        raise GridError("contains non-finite values", variable=name)
    return b


def _check_centres(c: np.ndarray, name: str, *, allow_descending: bool) -> None:
    if c.size < 2:
        return
    d = np.diff(c)
    if np.any(d == 0):
        i = int(np.flatnonzero(d == 0)[0])
        raise GridError(
            f"duplicate coordinate value {c[i]:g} at positions {i} and {i + 1}", variable=name
        )
    if not (np.all(d > 0) or (allow_descending and np.all(d < 0))):
        wrong = (
            np.flatnonzero(np.sign(d) != np.sign(d[0]))
            if allow_descending
            else np.flatnonzero(d < 0)
        )
        i = int(wrong[0]) if wrong.size else 0
        i = max(0, min(i, c.size - 2))
        raise GridError(
            f"coordinate is not monotonic: {c[i]:g}, {c[i + 1]:g}, "
            f"{c[i + 2] if i + 2 < c.size else c[i + 1]:g} "
            f"at positions {i}..{i + 2}; expected strictly increasing or decreasing values",
            variable=name,
        )


def _check_lat_bounds(b: np.ndarray, name: str) -> None:
    if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] == 0:
        raise GridError(f"expected shape (nlat, 2), got {b.shape}", variable=name)
    if not np.all(np.isfinite(b)):
        raise GridError("contains non-finite values", variable=name)
    if np.any(b[:, 1] <= b[:, 0]):
        i = int(np.flatnonzero(b[:, 1] <= b[:, 0])[0])
        raise GridError(
            f"row {i} has south edge {b[i, 0]:g} >= north edge {b[i, 1]:g}", variable=name
        )
    if b.min() < -90.0 - _EDGE_TOL or b.max() > 90.0 + _EDGE_TOL:
        bad = b.min() if b.min() < -90 else b.max()
        raise GridError(f"latitude edge {bad:g} is beyond +-90 degrees", variable=name)
    _check_contiguous(b, name)


def _check_lon_bounds(b: np.ndarray, name: str) -> None:
    if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] == 0:
        raise GridError(f"expected shape (nlon, 2), got {b.shape}", variable=name)
    if not np.all(np.isfinite(b)):
        raise GridError("contains non-finite values", variable=name)
    if np.any(b[:, 1] <= b[:, 0]):
        i = int(np.flatnonzero(b[:, 1] <= b[:, 0])[0])
        raise GridError(
            f"column {i} has west edge {b[i, 0]:g} >= east edge {b[i, 1]:g}", variable=name
        )
    _check_contiguous(b, name)
    span = b[-1, 1] - b[0, 0]
    if span > 360.0 + _EDGE_TOL:
        raise GridError(
            f"longitudes span {span:g} degrees (> 360): cells overlap around the globe",
            variable=name,
        )


def _check_contiguous(b: np.ndarray, name: str) -> None:
    if b.shape[0] < 2:
        return
    gap = b[1:, 0] - b[:-1, 1]
    tol = _EDGE_TOL * np.maximum(1.0, np.abs(b[1:, 0]))
    if np.any(np.abs(gap) > tol):
        i = int(np.flatnonzero(np.abs(gap) > tol)[0])
        what = "overlap" if gap[i] < 0 else "leave a gap"
        raise GridError(
            f"cells {i} [{b[i, 0]:g}, {b[i, 1]:g}] and {i + 1} [{b[i + 1, 0]:g}, {b[i + 1, 1]:g}] "
            f"{what}; "
            "expected each cell to start where the previous one ends",
            variable=name,
        )


# -- inference --------------------------------------------------------------------------------
def unwrap_longitudes(lon: np.ndarray, name: str = "lon") -> np.ndarray:
    """Return longitudes made strictly increasing by adding multiples of 360 where they wrap.

    ``[350, 0, 10]`` becomes ``[350, 360, 370]``; ``[10, 0, -10]`` (decreasing) is an error.
    """
    lon = _as_1d(lon, name)
    if lon.size < 2:
        return lon
    d = np.diff(lon)
    if np.any(d == 0):
        _check_centres(lon, name, allow_descending=False)
    # a wrap is a step down by ~360 - dlon; add 360 after each
    wraps = d < -180.0
    if np.any(wraps):
        lon = lon + 360.0 * np.concatenate([[0], np.cumsum(wraps)])
    _check_centres(lon, name, allow_descending=False)
    if lon[-1] - lon[0] >= 360.0:
        raise GridError(
            f"longitudes cover {lon[-1] - lon[0]:g} degrees between first and last centre (>= 360)",
            variable=name,
        )
    return lon


def infer_lat_bounds(lat: np.ndarray, tol: float | None = None) -> np.ndarray:
    """Latitude bounds from centres, in the order of the input.

    Gaussian latitudes (recognised to ``tol`` degrees; default :func:`latitude_precision` of the
    values) get the exact Gaussian-grid edges, whose ``sin`` differences are the Gauss weights;
    otherwise edges are the midpoints between centres, the outer edges half a step beyond the
    outer centres, clipped to +-90 (so a pole-centred grid gets half polar cells).
    """
    lat = _as_1d(lat, "lat")
    _check_centres(lat, "lat", allow_descending=True)
    desc = is_descending(lat)
    asc = lat[::-1] if desc else lat
    tol = latitude_precision(lat) if tol is None else tol
    gauss = _gaussian_edges_if_gaussian(asc, tol)
    if gauss is not None:
        edges = gauss
    else:
        edges = _midpoint_edges(asc)
        edges = np.clip(edges, -90.0, 90.0)
    b = np.column_stack([edges[:-1], edges[1:]])
    return b[::-1].copy() if desc else b


def infer_lon_bounds(lon: np.ndarray) -> np.ndarray:
    """Longitude bounds from centres: midpoints, outer edges half a step out (cyclic if global).

    If the centres make a global grid (the outer edges would span 360 degrees to within 1e-6),
    the last east edge is set to exactly the first west edge + 360.
    """
    lon = unwrap_longitudes(lon)
    edges = _midpoint_edges(lon)
    if abs((edges[-1] - edges[0]) - 360.0) < 1e-6 * 360.0:
        edges[-1] = edges[0] + 360.0
    elif edges[-1] - edges[0] > 360.0:
        # irregular global grid: split the wrap gap evenly between first and last cells
        mid = 0.5 * (lon[-1] + lon[0] + 360.0)
        edges[-1] = mid
        edges[0] = mid - 360.0
    return np.column_stack([edges[:-1], edges[1:]])


def _midpoint_edges(c: np.ndarray) -> np.ndarray:
    if c.size == 1:
        raise GridError(
            "cannot infer bounds from a single centre; provide bounds", variable="coordinate"
        )
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


@lru_cache(maxsize=64)
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)  # x ascending in (-1, 1), sum(w) == 2
    return x, w


def gaussian_latitudes(nlat: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian latitudes (degrees, ascending) and their cell edges (degrees, nlat + 1).

    The edges satisfy ``sin(edge[k+1]) - sin(edge[k]) = w_k``, the Gauss weights, so cell areas
    are proportional to the quadrature weights, as in ECMWF/MPI spectral models. (CDO 2.1.1 puts the
    edges of a Gaussian grid *without* bounds at the midpoints between latitudes instead; with
    explicit bounds both agree.)
    """
    x, w = _gauss_legendre(nlat)
    centres = np.degrees(np.arcsin(x))
    # accumulate from each pole towards the equator and mirror, so that rounding does not pile up
    # in the last row (the grid is symmetric: w[k] == w[n-1-k])
    sin_edges = np.empty(nlat + 1)
    half = nlat // 2
    sin_edges[: half + 1] = np.concatenate([[-1.0], -1.0 + np.cumsum(w[:half])])
    sin_edges[nlat - half :] = -sin_edges[: half + 1][::-1]
    if nlat % 2:  # odd: the equatorial row straddles 0 symmetrically
        sin_edges[half + 1] = -sin_edges[half]
    sin_edges = np.clip(sin_edges, -1.0, 1.0)
    edges = np.degrees(np.arcsin(sin_edges))
    return centres, edges


def latitude_precision(lat: np.ndarray, dtype: np.dtype | str | None = None) -> float:
    """How close (degrees) stored latitudes may be to the Gauss nodes and still be them.

    The tolerance follows the precision the file stores its latitudes with:

    - float32 (the variable's ``dtype``, or every value a float32 number inside a float64
      variable, as NESM3's): :data:`GAUSS_TOL_FLOAT32` = 2 ulps of float32 at 64..90 deg
      (1.5e-5 deg). Rounding to float32 costs half an ulp (3.8e-6 deg); nodes computed in
      single precision are off by about one (NESM3: 4.4e-6 deg);
    - float64 values written with ``k`` <= 7 decimals (MRI-ESM2-0's ``89.14152``): ``10**-k``
      (half a unit of the last decimal from rounding, the other half for the node's own error;
      MRI-ESM2-0: 1.1e-6 deg at ``k = 5``);
    - full float64: :data:`GAUSS_TOL_FLOAT64` (1e-6 deg).

    Never more than :data:`GAUSS_TOL_MAX` (1e-4 deg), far below the 6.7e-4 deg or more by which
    any regular grid of 4..4000 rows differs from the Gaussian grid of as many rows.
    """
    vals = np.asarray(lat, dtype=np.float64)
    if (dtype is not None and np.dtype(dtype) == np.float32) or np.array_equal(
        vals.astype(np.float32).astype(np.float64), vals
    ):
        return min(GAUSS_TOL_FLOAT32, GAUSS_TOL_MAX)
    for k in range(4, 8):
        scaled = vals * 10.0**k
        if np.all(np.abs(scaled - np.round(scaled)) <= 8 * _EPS * np.maximum(1.0, np.abs(scaled))):
            return min(10.0**-k, GAUSS_TOL_MAX)
    return GAUSS_TOL_FLOAT64


def _gaussian_edges_if_gaussian(
    asc: np.ndarray, tol: float = GAUSS_TOL_FLOAT64
) -> np.ndarray | None:
    n = asc.size
    if n < 4 or n > 4000 or abs(asc[0] + asc[-1]) > 2 * tol:
        return None
    centres, edges = gaussian_latitudes(n)
    if np.max(np.abs(centres - asc)) <= tol:
        return edges
    return None


def is_gaussian(lat: np.ndarray, tol: float | None = None) -> bool:
    """Whether latitudes (either order) are the Gauss nodes of their count, to ``tol`` degrees
    (default :func:`latitude_precision`)."""
    lat = _as_1d(lat, "lat")
    asc = np.sort(lat)
    tol = latitude_precision(lat) if tol is None else tol
    return _gaussian_edges_if_gaussian(asc, tol) is not None


# -- areas and standard grids ------------------------------------------------------------------
def cell_areas(grid: CellBounds, radius: float = EARTH_RADIUS) -> np.ndarray:
    """Exact spherical cell areas (m2), shape ``grid.shape``: ``R^2 * dlon * (sin n - sin s)``."""
    return radius**2 * np.outer(sin_band_widths(grid), lon_widths_radians(grid))


def sin_band_widths(grid: CellBounds) -> np.ndarray:
    """``sin(north) - sin(south)`` of each row (dimensionless)."""
    s = np.sin(np.radians(grid.lat_bounds))
    return s[:, 1] - s[:, 0]


def lon_widths_radians(grid: CellBounds) -> np.ndarray:
    """Width of each column in radians."""
    return np.radians(grid.lon_bounds[:, 1] - grid.lon_bounds[:, 0])


def band_cap_area(lat_south: float, lat_north: float, radius: float = EARTH_RADIUS) -> float:
    """Closed-form area (m2) of the full latitude band between two parallels (degrees)."""
    return 2.0 * np.pi * radius**2 * (np.sin(np.radians(lat_north)) - np.sin(np.radians(lat_south)))


def regional_grid(
    south: float, north: float, west: float, east: float, dlat: float, dlon: float
) -> CellBounds:
    """A regular grid of ``dlat x dlon`` cells covering ``[south, north] x [west, east]``
    (degrees)."""
    nlat = int(round((north - south) / dlat))
    nlon = int(round((east - west) / dlon))
    if (
        nlat < 1
        or nlon < 1
        or abs(nlat * dlat - (north - south)) > 1e-9
        or abs(nlon * dlon - (east - west)) > 1e-9
    ):
        raise GridError(
            f"[{south}, {north}] x [{west}, {east}] is not a whole number of {dlat} x {dlon} cells",
            variable="target-grid",
        )
    lat_e = south + dlat * np.arange(nlat + 1)
    lon_e = west + dlon * np.arange(nlon + 1)
    lat_e[-1], lon_e[-1] = north, east
    return CellBounds(
        np.column_stack([lat_e[:-1], lat_e[1:]]), np.column_stack([lon_e[:-1], lon_e[1:]])
    )


def global_grid(dlat: float, dlon: float | None = None, lon0: float = -180.0) -> CellBounds:
    """A regular global grid with cells of ``dlat x dlon`` degrees, first column starting at
    ``lon0``."""
    dlon = dlat if dlon is None else dlon
    return regional_grid(-90.0, 90.0, lon0, lon0 + 360.0, dlat, dlon)


def gaussian_grid(nlat: int, nlon: int | None = None, lon0: float = 0.0) -> CellBounds:
    """A regular Gaussian grid (e.g. T63: ``nlat=96, nlon=192``), first column centred at
    ``lon0``."""
    nlon = 2 * nlat if nlon is None else nlon
    _, edges = gaussian_latitudes(nlat)
    dlon = 360.0 / nlon
    lon_e = lon0 - dlon / 2 + dlon * np.arange(nlon + 1)
    lon_e[-1] = lon_e[0] + 360.0
    return CellBounds(
        np.column_stack([edges[:-1], edges[1:]]), np.column_stack([lon_e[:-1], lon_e[1:]])
    )


def align_lon_bounds(lon_b: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Shift each bounds row by multiples of 360 so that it contains its (unwrapped) centre.

    A row like ``[359.5, 0.5]`` around a centre at 0 wraps: it means ``[-0.5, 0.5]``. Whether a
    row wraps is decided by its centre, not its width, so genuinely wide cells stay wide.
    """
    lo = np.minimum(lon_b[:, 0], lon_b[:, 1])
    hi = np.maximum(lon_b[:, 0], lon_b[:, 1])
    c_in = lon - 360.0 * np.floor((lon - lo) / 360.0)  # the centre moved into [lo, lo + 360)
    inside = c_in <= hi + _EDGE_TOL
    new_lo = np.where(inside, lo, hi)
    new_hi = np.where(inside, hi, lo + 360.0)
    shift = 360.0 * np.round((lon - 0.5 * (new_lo + new_hi)) / 360.0)
    return np.column_stack([new_lo + shift, new_hi + shift])


# -- defects of a file's bounds and their repair ------------------------------------------------
#: How a file's bounds of one axis are taken: ``None`` = the generic rules (:func:`repair_bounds`),
#: ``clip`` = latitude edges clipped to +-90, ``centres`` = the file's bounds dropped and inferred
#: from the centres (:func:`infer_lat_bounds` / :func:`infer_lon_bounds`), ``file`` = as they are.
BOUNDS_RULES = ("clip", "centres", "file")


def bounds_defects(centres: np.ndarray, bounds: np.ndarray, axis: str) -> list[tuple[str, str]]:
    """The defects of one axis' bounds, as ``(kind, description)``; none for good bounds.

    Parameters
    ----------
    centres : (n,) degrees, latitude ascending / longitude unwrapped to increase
    bounds : (n, 2) degrees in the same order, each row sorted (longitude rows aligned to their
        centres: :func:`align_lon_bounds`)
    axis : ``lat`` or ``lon``

    Kinds: ``beyond-pole`` (a latitude edge beyond +-90), ``gaps`` (cells that leave gaps or
    overlap), ``outside`` (a centre not strictly inside its cell; a latitude centre at a pole may
    sit on that pole's edge).
    """
    c = np.asarray(centres, dtype=np.float64)
    b = np.asarray(bounds, dtype=np.float64)
    out: list[tuple[str, str]] = []
    if axis == "lat" and (b.max() > 90.0 + _EDGE_TOL or b.min() < -90.0 - _EDGE_TOL):
        bad = b.max() if b.max() > 90.0 + _EDGE_TOL else b.min()
        out.append(("beyond-pole", f"edge {bad:.6g} beyond +-90"))
    if b.shape[0] > 1:
        gap = b[1:, 0] - b[:-1, 1]
        tol = _EDGE_TOL * np.maximum(1.0, np.abs(b[1:, 0]))
        bad_i = np.flatnonzero(np.abs(gap) > tol)
        if bad_i.size:
            i = int(bad_i[0])
            what = "overlap" if gap[i] < 0 else "leave gaps"
            out.append(
                (
                    "gaps",
                    f"{bad_i.size} pair(s) of cells {what}, first cells {i} "
                    f"[{b[i, 0]:.6g}, {b[i, 1]:.6g}] and {i + 1} [{b[i + 1, 0]:.6g}, "
                    f"{b[i + 1, 1]:.6g}]",
                )
            )
    tol_c = _EDGE_TOL * np.maximum(1.0, np.abs(c))
    inside = (c - b[:, 0] > tol_c) & (b[:, 1] - c > tol_c)
    if axis == "lat":
        at_pole = (
            (np.abs(np.abs(c) - 90.0) <= _EDGE_TOL) & (b[:, 0] < c + tol_c) & (b[:, 1] > c - tol_c)
        )
        inside |= at_pole
    bad_c = np.flatnonzero(~inside)
    if bad_c.size:
        i = int(bad_c[0])
        out.append(
            (
                "outside",
                f"{bad_c.size} centre(s) not inside their cells, first {c[i]:.6g} in "
                f"[{b[i, 0]:.6g}, {b[i, 1]:.6g}]",
            )
        )
    return out


def repair_bounds(
    centres: np.ndarray,
    bounds: np.ndarray | None,
    axis: str,
    *,
    rule: str | None = None,
    strict: bool = False,
    lat_tol: float | None = None,
) -> tuple[np.ndarray | None, list[str]]:
    """A file's bounds of one axis, repaired by a stated rule; and what was done.

    Generic rules (``rule=None``): latitude edges beyond +-90 are clipped to +-90 (when that
    leaves no other defect); bounds with gaps or overlaps, or that do not surround their centres
    (:func:`bounds_defects`), are dropped and inferred from the centres: the exact Gaussian edges
    when the centres are Gauss nodes to their stored precision (:func:`latitude_precision`),
    else midpoints between centres (outer edges half a step out, clipped to +-90). A ``rule``
    (from a fix table) is applied whatever the detection says: ``clip``, ``centres`` or ``file``
    (keep the file's bounds; any defect is then an error later).

    Parameters
    ----------
    centres : (n,) degrees, latitude ascending / longitude unwrapped to increase
    bounds : (n, 2) the file's bounds in the same order (None: none, nothing to repair)
    axis : ``lat`` or ``lon``
    rule : None (generic) or one of :data:`BOUNDS_RULES`
    strict : refuse any repair: :class:`GridError` naming the defect
    lat_tol : Gaussian recognition tolerance (degrees) of the latitudes

    Returns
    -------
    bounds, notes
        The bounds to use (None: infer from the centres) and one note per repair done (empty
        when the file's bounds are used as they are).
    """
    if rule is not None and rule not in BOUNDS_RULES:
        raise GridError(
            f"unknown bounds rule {rule!r}; expected one of {BOUNDS_RULES}", variable=axis
        )
    if bounds is None or rule == "file":
        return bounds, []
    c = np.asarray(centres, dtype=np.float64)
    b = np.sort(np.asarray(bounds, dtype=np.float64), axis=1)
    if axis == "lon":
        b = align_lon_bounds(b, c)
    defects = bounds_defects(c, b, axis)
    name = f"{axis}_bnds"
    how = "fix table" if rule is not None else "generic rule"
    if rule is None:
        if not defects:
            return bounds, []
        kinds = {k for k, _ in defects}
        rule = "clip" if kinds == {"beyond-pole"} else "centres"
    elif not defects and _same_as_repaired(c, b, axis, rule, lat_tol):
        return bounds, []  # a tabled defect these files do not have (e.g. a corrected version)
    said = ", ".join(d for _, d in defects) or "known defect"
    if strict:
        raise GridError(
            f"{said}; refused (strict): without strict gridflux would "
            + ("clip them to +-90" if rule == "clip" else "infer them from the centres"),
            variable=name,
        )
    if rule == "clip":
        if axis != "lat":
            raise GridError("the rule 'clip' is for latitude bounds only", variable=name)
        clipped = np.clip(b, -90.0, 90.0)
        if np.array_equal(clipped, b):
            return bounds, []
        rest = bounds_defects(c, clipped, axis)
        if rest:
            raise GridError(
                f"{said}: clipped to +-90 they still have defects ({rest[0][1]})", variable=name
            )
        return clipped, [f"{axis} bounds: {said}: clipped to +-90 ({how})"]
    if axis == "lat":
        tol = latitude_precision(c) if lat_tol is None else lat_tol
        kind = "exact Gaussian edges" if is_gaussian(c, tol) else "midpoints between centres"
    else:
        kind = "midpoints between centres"
    return None, [f"{axis} bounds: {said}: dropped, inferred from the centres ({kind}, {how})"]


def _same_as_repaired(
    c: np.ndarray, b: np.ndarray, axis: str, rule: str, lat_tol: float | None
) -> bool:
    """Whether a tabled rule would leave these (defect-free) bounds as they are, to 1e-6 deg."""
    if rule == "clip":
        return bool(np.array_equal(np.clip(b, -90.0, 90.0), b)) or axis != "lat"
    if axis == "lat":
        new = infer_lat_bounds(c, latitude_precision(c) if lat_tol is None else lat_tol)
    else:
        new = infer_lon_bounds(c)
    return bool(np.all(np.abs(new - b) <= _EDGE_TOL * np.maximum(1.0, np.abs(b))))
