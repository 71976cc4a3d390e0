"""Hypothesis strategies for rectilinear lat-lon grids (canonical ``CellBounds``).

Edges are random strictly increasing sequences with a minimum spacing (so cells are not
degenerate), random longitude origins anywhere in [-360, 360), and optional partial coverage.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from gridflux.kernels.grids import CellBounds

MIN_WIDTH = 1e-3  # degrees


@st.composite
def monotone_edges(draw, lo: float, hi: float, max_cells: int = 12) -> np.ndarray:
    """Strictly increasing edges from ``lo`` to ``hi`` (inclusive), cells at least MIN_WIDTH
    wide."""
    n = draw(st.integers(1, max_cells))
    # random positive widths, scaled to fill [lo, hi]
    w = np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=n, max_size=n)))
    w = w / w.sum() * (hi - lo)
    if np.any(w < MIN_WIDTH):
        w = np.full(n, (hi - lo) / n)
    e = lo + np.concatenate([[0.0], np.cumsum(w)])
    e[-1] = hi
    return e


@st.composite
def lat_ranges(draw, full: bool) -> tuple[float, float]:
    if full:
        return -90.0, 90.0
    s = draw(st.floats(-90.0, 80.0))
    n = draw(st.floats(min(s + 1.0, 90.0), 90.0))
    return s, n


@st.composite
def grids(draw, full: bool | None = None, max_cells: int = 12) -> CellBounds:
    """A random grid; ``full=True`` forces global coverage, ``False`` partial, ``None`` either."""
    if full is None:
        full = draw(st.booleans())
    s, n = draw(lat_ranges(full))
    lat_e = draw(monotone_edges(s, n, max_cells))
    lon0 = draw(st.floats(-360.0, 360.0))
    span = 360.0 if full else draw(st.floats(1.0, 360.0))
    lon_e = draw(monotone_edges(lon0, lon0 + span, max_cells))
    return CellBounds(
        np.column_stack([lat_e[:-1], lat_e[1:]]), np.column_stack([lon_e[:-1], lon_e[1:]])
    )
