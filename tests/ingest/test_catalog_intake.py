"""intake for real (issue 17, point 4): gridflux's catalogs open with
``intake.open_esm_datastore``, and an ``esm_datastore`` (or a subset after ``.search``) is a
catalog for ``load_catalog`` and ``gridflux.run``."""

import math

import numpy as np
import pytest

from gridflux.errors import CatalogError
from gridflux.ingest.catalog import load_catalog, write_catalog
from gridflux.kernels.grids import EARTH_RADIUS, global_grid

from .conftest import write_file

intake = pytest.importorskip("intake")

GRID = global_grid(30.0, 30.0, 0.0)
# npp (positive into the land in the file) of each source, kg m-2 s-1, constant in space and time
VALUES = {"A": 1e-8, "B": 3e-8}
NOLEAP_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


@pytest.fixture
def archive(tmp_path):
    rows = []
    for src, v in VALUES.items():
        name = f"npp_{src}.nc"
        write_file(
            tmp_path / name,
            var="npp",
            data=np.full((12,) + GRID.shape, v, dtype=np.float32),
            lat=GRID.lat,
            lon=GRID.lon,
            time=15.0 + 30.0 * np.arange(12),
        )
        rows.append(
            dict(
                ensemble="E", source_id=src, experiment="hist", member_id="r1", variable="npp",
                path=name,
            )
        )  # fmt: skip
    return tmp_path, write_catalog(rows, tmp_path / "catalog.json")


def test_our_catalog_opens_with_intake_and_the_datastore_is_a_catalog(archive, monkeypatch):
    root, path = archive
    esm = intake.open_esm_datastore(path)
    assert sorted(esm.df["source_id"]) == ["A", "B"]
    # relative paths of a datastore: the root passed, else the current directory (as intake-esm)
    mine = {s.key: s.paths for s in load_catalog(path).series()}
    assert {s.key: s.paths for s in load_catalog(esm, root=root).series()} == mine
    monkeypatch.chdir(root)
    assert {s.key: s.paths for s in load_catalog(esm).series()} == mine
    (only_b,) = load_catalog(esm.search(source_id="B")).series()
    assert (only_b.member, only_b.variable) == ("E.B.hist.r1", "npp")
    assert only_b.paths == mine[only_b.key]


def test_a_datastore_is_confined_to_its_root_too(archive):
    root, _ = archive
    rows = [
        dict(ensemble="E", source_id="A", variable="npp", path=str(root / "npp_A.nc")),
    ]  # an absolute path outside the catalog's directory ``sub``
    esm = intake.open_esm_datastore(write_catalog(rows, root / "sub" / "c.json"))
    with pytest.raises(CatalogError, match="is outside the catalog root"):
        load_catalog(esm, root=root / "sub")
    assert len(load_catalog(esm, root=root / "sub", allow_outside_root=[str(root)]).rows) == 1
    assert len(load_catalog(esm, root=root / "sub", allow_outside_root=True).rows) == 1


def test_run_takes_a_datastore_subset(archive, tmp_path_factory, monkeypatch):
    import gridflux
    from gridflux.fields.masks import RegionMask
    from gridflux.pipeline.store import open_store

    root, path = archive
    monkeypatch.chdir(root)
    out = tmp_path_factory.mktemp("out")
    mask = out / "mask.nc"
    RegionMask(("globe",), np.ones((1,) + GRID.shape), GRID).to_netcdf(mask)
    sub = intake.open_esm_datastore(path).search(source_id="B")
    summary = gridflux.run(
        sub, str(mask), str(out / "store.zarr"), target="30", cubes=False, progress=False
    )
    assert summary.done == ["E.B.hist.r1/npp"] and not summary.failed
    ds = open_store(out / "store.zarr")
    assert list(ds["source_id"].values) == ["B"]
    got = ds["totals"].sel(region="globe", variable="npp").values[0]
    # canonical sign: to the atmosphere (npp into the land in the file), Tg C per month
    area = 4.0 * math.pi * EARTH_RADIUS**2
    want = [-VALUES["B"] * area * d * 86400.0 / 1e9 for d in NOLEAP_DAYS]
    np.testing.assert_allclose(got, want, rtol=1e-6)
