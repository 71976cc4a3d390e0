"""A catalog reads only inside its root unless the user allows more (issue 20, point 5): every
door (relative escapes, absolute paths, file:// URLs, cache chains, symlinks, catalog_file,
gridflux.root) is shut by default, opened by allow_outside_root / --allow-outside-root /
--allowed-prefix, and remote URLs are not local doors."""

import json
import os

import pytest
from typer.testing import CliRunner

from gridflux.errors import CatalogError
from gridflux.ingest.catalog import load_catalog

from .conftest import write_file

HEADER = "ensemble,source_id,variable,path\n"


@pytest.fixture
def tree(tmp_path):
    """``cat/`` (the catalog's root, with ``in.nc``) and ``secret/`` beside it (``out.nc``)."""
    (tmp_path / "cat").mkdir()
    (tmp_path / "secret").mkdir()
    inside = write_file(tmp_path / "cat" / "in.nc", var="rh")
    outside = write_file(tmp_path / "secret" / "out.nc", var="rh")
    return tmp_path, os.path.realpath(inside), os.path.realpath(outside)


def _csv(path, *paths):
    path.write_text(HEADER + "".join(f"E,S{i},rh,{p}\n" for i, p in enumerate(paths)))
    return path


def _doors(tmp_path, outside):
    """Catalogs in ``cat/`` that each reach ``outside`` through one door."""
    cat = tmp_path / "cat"
    os.symlink(os.path.dirname(outside), cat / "link")
    spec = {
        "esmcat_version": "0.1.0",
        "assets": {"column_name": "path"},
        "catalog_dict": [{"ensemble": "E", "source_id": "S", "variable": "rh", "path": "out.nc"}],
    }
    from_slash = {**spec["catalog_dict"][0], "path": outside.lstrip("/")}
    slash = {**spec, "catalog_dict": [from_slash]}
    (cat / "root.json").write_text(json.dumps({**slash, "gridflux": {"root": "/"}}))
    (cat / "rootdir.json").write_text(
        json.dumps({**spec, "gridflux": {"root": os.path.dirname(outside)}})
    )
    (cat / "rooturl.json").write_text(json.dumps({**slash, "gridflux": {"root": "file:///"}}))
    # rows resolve against the catalog's root, not the CSV's folder: the door is the CSV itself
    (tmp_path / "secret" / "rows.csv").write_text(HEADER + f"E,S,rh,{outside}\n")
    (cat / "csvfile.json").write_text(
        json.dumps(
            {
                "esmcat_version": "0.1.0",
                "assets": {"column_name": "path"},
                "catalog_file": str(tmp_path / "secret" / "rows.csv"),
            }
        )
    )
    (cat / "yaml.yaml").write_text(
        "sources:\n  s:\n    driver: netcdf\n"
        f"    args: {{urlpath: '{outside}'}}\n"
        "    metadata: {ensemble: E, source_id: S, variable: rh}\n"
    )
    return {
        "relative ../": _csv(cat / "rel.csv", "../secret/out.nc"),
        "absolute": _csv(cat / "abs.csv", outside),
        "file:// URL": _csv(cat / "url.csv", f"file://{outside}"),
        "file://localhost URL": _csv(cat / "host.csv", f"file://localhost{outside}"),
        "cache chain": _csv(cat / "chain.csv", f"simplecache::file://{outside}"),
        "symlink": _csv(cat / "sym.csv", "link/out.nc"),
        "gridflux.root /": cat / "root.json",
        "gridflux.root dir": cat / "rootdir.json",
        "gridflux.root file://": cat / "rooturl.json",
        "catalog_file": cat / "csvfile.json",
        "yaml urlpath": cat / "yaml.yaml",
    }


DOORS = [
    "relative ../",
    "absolute",
    "file:// URL",
    "file://localhost URL",
    "cache chain",
    "symlink",
    "gridflux.root /",
    "gridflux.root dir",
    "gridflux.root file://",
    "catalog_file",
    "yaml urlpath",
]


@pytest.mark.parametrize("door", DOORS)
def test_each_door_is_shut_by_default_and_opens_when_allowed(tree, door):
    tmp_path, _, outside = tree
    path = _doors(tmp_path, outside)[door]
    with pytest.raises(CatalogError, match="outside the catalog root|escapes the catalog root"):
        load_catalog(path)
    secret = [str(tmp_path / "secret")]
    whole_fs = door.startswith("gridflux.root") and door != "gridflux.root dir"
    # a root of "/" is itself outside: only allowing "/" (or everything) opens it
    allows = (True, ["/"]) if whole_fs else (True, secret, [secret[0] + "/"])
    for allow in allows:
        (row,) = load_catalog(path, allow_outside_root=allow).rows
        assert row.path == outside
    if whole_fs:
        with pytest.raises(CatalogError, match="'gridflux.root'"):
            load_catalog(path, allow_outside_root=secret)
    # a prefix that does not hold the file does not open the door
    with pytest.raises(CatalogError):
        load_catalog(path, allow_outside_root=[str(tmp_path / "cat")])


def test_inside_the_root_needs_nothing(tree):
    tmp_path, inside, _ = tree
    cat = tmp_path / "cat"
    for p in ("in.nc", "./in.nc", inside, f"file://{inside}"):
        (row,) = load_catalog(_csv(cat / "ok.csv", p)).rows
        assert row.path == inside
    (cat / "sub").mkdir()
    spec = {
        "esmcat_version": "0.1.0",
        "assets": {"column_name": "path"},
        "gridflux": {"root": "sub/.."},
        "catalog_dict": [{"ensemble": "E", "source_id": "S", "variable": "rh", "path": "in.nc"}],
    }
    (cat / "r.json").write_text(json.dumps(spec))
    assert load_catalog(cat / "r.json").rows[0].path == inside


def test_remote_urls_are_not_outside_the_root(tree):
    tmp_path, _, _ = tree
    urls = ["s3://bucket/a.nc", "https://example.org/data/b.nc", "simplecache::s3://bucket/c.nc"]
    rows = load_catalog(_csv(tmp_path / "cat" / "remote.csv", *urls)).rows
    assert [r.path for r in rows] == urls


def test_the_cli_passes_the_flags(tree):
    from gridflux.cli import app

    tmp_path, _, outside = tree
    path = str(_csv(tmp_path / "cat" / "abs.csv", outside))
    runner = CliRunner()
    shut = runner.invoke(app, ["catalog", "check", path])
    assert shut.exit_code == 2 and "outside the catalog root" in shut.output
    for flags in (["--allow-outside-root"], ["--allowed-prefix", str(tmp_path / "secret")]):
        res = runner.invoke(app, ["catalog", "check", path, *flags])
        assert res.exit_code == 0 and "1 ok, 0 with problems" in res.output
    help_text = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    assert "--allow-outside-root" in help_text and "--allowed-prefix" in help_text


def test_gridflux_run_passes_the_flags(tmp_path):
    import numpy as np

    from gridflux.cli import app
    from gridflux.fields.masks import RegionMask
    from gridflux.kernels.grids import global_grid

    grid = global_grid(30.0, 30.0, 0.0)
    (tmp_path / "cat").mkdir()
    data = write_file(
        tmp_path / "npp.nc",
        var="npp",
        data=np.full((12,) + grid.shape, 1e-8, dtype=np.float32),
        lat=grid.lat,
        lon=grid.lon,
        time=15.0 + 30.0 * np.arange(12),
    )
    cat = str(tmp_path / "cat" / "c.csv")
    with open(cat, "w") as f:
        f.write(HEADER + f"E,S,npp,{os.path.realpath(data)}\n")
    mask = tmp_path / "mask.nc"
    RegionMask(("globe",), np.ones((1,) + grid.shape), grid).to_netcdf(mask)
    args = ["run", cat, "--mask", str(mask), "--cluster", "none", "--target-grid", "30"]
    args += ["--no-cubes", "--no-progress"]
    runner = CliRunner()
    shut = runner.invoke(app, [*args, "--store", str(tmp_path / "a.zarr")])
    assert shut.exit_code == 2 and "outside the catalog root" in shut.output
    ok = runner.invoke(
        app, [*args, "--store", str(tmp_path / "b.zarr"), "--allowed-prefix", str(tmp_path)]
    )
    assert ok.exit_code == 0, ok.output
    assert os.path.isdir(tmp_path / "b.zarr") and not os.path.exists(tmp_path / "a.zarr")
