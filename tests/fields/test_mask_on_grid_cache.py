"""``RegionMask.to_grid`` is memoised per mask by the target grid's content: a hit for an equal
grid built anew, a miss when one edge moves (checked against closed-form fractions), and the
checks catch a deliberately too-coarse key."""

from __future__ import annotations

import numpy as np

from gridflux.fields import masks
from gridflux.fields.masks import RegionMask
from gridflux.kernels.grids import CellBounds, global_grid


def _band_mask() -> RegionMask:
    """One region: every cell between 0 and 30N (10 deg grid), fraction 1."""
    g = global_grid(10.0)
    f = np.zeros((1, g.nlat, g.nlon))
    lat = g.lat_bounds
    f[0, (lat[:, 0] >= 0.0) & (lat[:, 1] <= 30.0), :] = 1.0
    return RegionMask(("band",), f, g)


def _target(moved: float = 0.0) -> CellBounds:
    """A 15 deg grid (built anew each call); ``moved`` shifts the edge at 30N."""
    edges = np.arange(-90.0, 90.1, 15.0)
    edges[8] += moved  # 30N
    lon = np.arange(-180.0, 180.1, 30.0)
    return CellBounds(np.stack([edges[:-1], edges[1:]], 1), np.stack([lon[:-1], lon[1:]], 1))


def _truth(grid: CellBounds) -> np.ndarray:
    """Fraction of each row inside 0-30N: the sine-of-latitude share of the overlap."""
    s = np.sin(np.radians(grid.lat_bounds))
    lo = np.sin(np.radians(np.clip(grid.lat_bounds[:, 0], 0.0, 30.0)))
    hi = np.sin(np.radians(np.clip(grid.lat_bounds[:, 1], 0.0, 30.0)))
    return (hi - lo) / (s[:, 1] - s[:, 0])


def _wrong(mask: RegionMask, grids: list[CellBounds]) -> list[int]:
    out = []
    for i, g in enumerate(grids):
        got = mask.to_grid(g).fractions[0]
        if not np.allclose(got, _truth(g)[:, None], rtol=0, atol=1e-12):
            out.append(i)
    return out


def test_to_grid_memo_by_content():
    mask = _band_mask()
    a = mask.to_grid(_target())
    assert mask.to_grid(_target()) is a  # an equal grid, another object: a hit
    moved = mask.to_grid(_target(5.0))
    assert moved is not a  # one edge moved: a miss
    assert not _wrong(mask, [_target(), _target(5.0), _target()])
    assert len(masks._ON_GRID[mask]) == 2
    # another mask (other fractions) on the same grid: its own entry
    other = RegionMask(("band",), 1.0 - mask.fractions, mask.grid)
    expected = np.broadcast_to(1.0 - _truth(_target())[:, None], (12, 12))
    np.testing.assert_allclose(other.to_grid(_target()).fractions[0], expected, atol=1e-12)


def test_to_grid_checks_catch_a_too_coarse_key(monkeypatch):
    monkeypatch.setattr(masks, "grid_content_key", lambda g: repr(g.lat_bounds.shape))
    mask = _band_mask()
    assert _wrong(mask, [_target(), _target(5.0)]) == [1]
