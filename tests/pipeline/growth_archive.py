"""A tiny archive that changes between runs, and a comparison of stores by label (growth tests).

Each member is one npp file (or several) on its own coarse grid with deterministic values, so a
store grown over several runs can be compared with a store built in one run from the final
catalog: by label (members, variables and regions keep their places in a grown store, new ones are
appended), bit for bit.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from gridflux.fields.masks import RegionMask
from gridflux.ingest.catalog import write_catalog
from gridflux.kernels.grids import global_grid, regional_grid

from .conftest import BOXES, box_mask_fractions, write_series

GRIDS = {
    "A": global_grid(10.0, 12.0, 0.0),
    "B": global_grid(6.0, 7.5, -180.0),
    "C": regional_grid(30.0, 90.0, -180.0, 180.0, 5.0, 5.0),
    "D": global_grid(9.0, 9.0, 0.0),
}
CALENDARS = {"A": "noleap", "B": "360_day", "C": "noleap", "D": "360_day"}
TARGET = "2"  # a coarse target grid: small cubes
#: regions a store may gain: BOXES and more inside their bounding box (40-80N), so that adding
#: them keeps the store's cube grid
REGION_BOXES = {
    **BOXES,
    "east": [(42.0, 58.0, 90.0, 150.0, 0.6), (58.0, 62.0, 90.0, 150.0, 1.0)],
    "west": [(45.0, 75.0, -130.0, -70.0, 1.0), (40.0, 45.0, -130.0, -70.0, 0.25)],
}


def write_mask(root: Path, regions: tuple[str, ...] = tuple(BOXES)) -> str:
    grid = global_grid(1.0)
    f = box_mask_fractions(grid, {r: REGION_BOXES[r] for r in regions})
    path = root / f"mask-{'-'.join(regions)}.nc"
    RegionMask(tuple(regions), f, grid).to_netcdf(path)
    return str(path)


def member_file(root: Path, src: str, variable: str, start: int, years: int, version: str) -> str:
    """One file of ``years`` years from ``start``; values depend on (src, variable, version, year)
    only, so the same year of two releases is the same field."""
    name = f"{variable}_{src}_{version}_{start}-{start + years - 1}.nc"
    if (root / name).exists():  # the same file of an earlier release (its name says what it holds)
        return name
    grid = GRIDS[src]
    blocks = []
    for y in range(start, start + years):
        seed = int(hashlib.sha1(f"{src}{variable}{version}{y}".encode()).hexdigest()[:8], 16)
        rng = np.random.default_rng(seed)
        blocks.append((rng.random((12,) + grid.shape) * 2e-8).astype("f4"))
    write_series(root / name, grid, np.concatenate(blocks), CALENDARS[src], start)
    return name


def write_release(root: Path, name: str, series: dict) -> str:
    """A catalog ``name`` of ``series``: {(src, variable): (start, years, version)}."""
    rows = []
    for (src, variable), (start, years, version) in sorted(series.items()):
        path = member_file(root, src, variable, start, years, version)
        rows.append(
            dict(
                ensemble="TEST",
                source_id=src,
                experiment="hist",
                member_id="r1",
                variable=variable,
                raw_variable="npp",
                path=path,
                version=version,
                fire=src in ("B", "D"),
                time_range=f"{start}01-{start + years - 1}12",
            )
        )
    return str(write_catalog(rows, root / f"{name}.json"))


def chunk_hashes(store: str | os.PathLike) -> dict[str, str]:
    """sha1 of every file of a store (chunks and metadata), by path relative to the store."""
    out = {}
    for dirpath, _dirs, files in os.walk(store):
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, store)] = hashlib.sha1(fh.read()).hexdigest()
    return out


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(np.uint64 if a.dtype.itemsize == 8 else np.uint32)


def array_shapes(store: str | os.PathLike, consolidated: bool) -> dict[str, tuple]:
    """The shape of every array of a store, by path: from each array's own metadata, or from the
    consolidated metadata (what xarray reads)."""
    import warnings

    import zarr

    root = zarr.open_group(str(store), mode="r", use_consolidated=consolidated or False)
    with warnings.catch_warnings():  # the manifest and marker live beside the hierarchy
        warnings.filterwarnings("ignore", message="Object at .* is not recognized")
        members = root.members(max_depth=None)
    return {path: tuple(node.shape) for path, node in members if isinstance(node, zarr.Array)}


def assert_same_store(grown: str | os.PathLike, once: str | os.PathLike) -> None:
    """Every array of two stores equal bit for bit, compared by label (member, variable, region,
    time): totals, every coordinate, every cube and the grid group; every array of the grown store
    of the shape its consolidated metadata says (what xarray reads) and of the same shape as in
    the store built once."""
    from gridflux.pipeline.store import open_store

    shapes = array_shapes(grown, consolidated=False)
    assert shapes == array_shapes(grown, consolidated=True), "consolidated metadata is stale"
    assert shapes == array_shapes(once, consolidated=False), "array shapes"

    a, b = open_store(grown), open_store(once)
    for dim in ("member", "variable", "region", "time"):
        assert sorted(a[dim].values.tolist()) == sorted(b[dim].values.tolist()), dim
    b = b.reindex(member=a.member, variable=a.variable, region=a.region)
    assert np.array_equal(a["time"].values, b["time"].values)
    assert np.array_equal(_bits(a["totals"].values), _bits(b["totals"].values)), "totals"
    for name in a.coords:
        if name in ("member", "variable", "region", "time"):
            continue
        assert np.array_equal(a[name].values, b[name].values), name
    assert set(a.coords) == set(b.coords)
    for var in a["variable"].values.tolist():
        ca = open_store(grown, group=f"cubes/{var}")
        cb = open_store(once, group=f"cubes/{var}").reindex(member=ca.member)
        assert np.array_equal(ca["time"].values, cb["time"].values)
        assert np.array_equal(_bits(ca[var].values), _bits(cb[var].values)), f"cube {var}"
    ga, gb = open_store(grown, group="grid"), open_store(once, group="grid")
    gb = gb.reindex(region=ga.region)
    for name in ("lat_bnds", "lon_bnds", "cell_area", "mask"):
        assert np.array_equal(_bits(ga[name].values), _bits(gb[name].values)), name


# -- a driver that kills itself at its n-th write -----------------------------------------------
#: writes a growth can be killed at: zarr array writes and resizes, the direct chunk writer of the
#: workers' totals and cubes, the manifest
STORE_WRITES = (
    "zarr.Array.__setitem__",
    "zarr.Array.resize",
    "store_mod.DirectChunks.write",
    "store_mod.Store.write_manifest",
)


def killer_script(
    at: int, call: str, writes: tuple[str, ...] = STORE_WRITES, report: bool = False
) -> str:
    """Python source of a driver that runs ``call`` (e.g. ``run(CAT, MASK, STORE, ...)``, with
    ``run`` and ``gridflux`` imported) and SIGKILLs itself at the ``at``-th call of any of
    ``writes`` (dotted names reachable from ``os``, ``zarr``, ``store_mod`` =
    ``gridflux.pipeline.store``, ``Attributes`` = zarr's group/array attributes); a run with fewer
    writes is not killed. ``report``: print ``WRITES n`` at the end (how many there were)."""
    hooks = "".join(f"{name} = hook({name})\n" for name in writes)
    return (
        "import os, signal, zarr\n"
        "from zarr.core.attributes import Attributes\n"
        "import gridflux\n"
        "import gridflux.pipeline.store as store_mod\n"
        "from gridflux.pipeline.runner import run\n"
        "n = [0]\n"
        "def hook(f):\n"
        "    def g(*a, **k):\n"
        "        n[0] += 1\n"
        f"        if n[0] == {int(at)}:\n"
        "            os.kill(os.getpid(), signal.SIGKILL)\n"
        "        return f(*a, **k)\n"
        "    return g\n"
        f"{hooks}"
        f"s = {call}\n" + ('print("WRITES", n[0])\n' if report else "")
    )


def run_call(cat: str, mask: str, store: str, target: str) -> str:
    """The ``run(...)`` call of :func:`killer_script` for a growth test's catalog and mask."""
    return f"run({cat!r}, {mask!r}, {store!r}, target={target!r}, progress=False)"
