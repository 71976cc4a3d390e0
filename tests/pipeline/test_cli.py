"""The run / store info / export commands, through the real console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd


def _gridflux(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "gridflux", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_run_info_export(mini_archive, tmp_path):
    store = tmp_path / "s.zarr"
    r = _gridflux(
        "run",
        mini_archive["catalog"],
        "--mask",
        mini_archive["mask"],
        "--store",
        store,
        "--cluster",
        "none",
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    import re

    # the summary table's row: 3 done, 0 skipped, 0 failed
    assert re.search(r"│\s+3\s+│\s+0\s+│\s+0\s+│", r.stderr), r.stderr
    info = _gridflux("store", "info", store)
    assert info.returncode == 0 and info.stdout.count("done") >= 3
    out = tmp_path / "totals.csv"
    ex = _gridflux("export", store, "--totals", out)
    assert ex.returncode == 0, ex.stderr
    df = pd.read_csv(out, dtype={"time": str})
    assert list(df.columns) == [
        "source_id",
        "variable",
        "region",
        "time",
        "statistic",
        "value",
        "unit",
        "protocol",
        "frequency",
    ]
    assert set(df["frequency"]) == {"month"}
    assert set(df["unit"]) == {"Tg C"} and set(df["statistic"]) == {"total"}
    assert set(df["protocol"]) == {"regrid-data"}
    assert info.stdout.count("regrid-data") >= 3  # store info shows each series' protocol
    for (member, region), (months, expected) in mini_archive["truth"].items():
        sel = df[(df.source_id == member) & (df.region == region)].sort_values("time")
        assert list(sel["time"]) == [f"{y:04d}-{m:02d}" for y, m in months]
        assert np.abs(sel["value"].to_numpy() - expected).max() <= 1e-10 * np.abs(expected).max()


def test_run_exit_status_and_summary_name_failures(mini_archive, tmp_path):
    root = tmp_path / "arch"
    shutil.copytree(mini_archive["root"], root)
    (root / "npp_A.nc").write_bytes(b"not a netCDF file")
    summary = tmp_path / "summary.json"
    r = _gridflux(
        "run",
        root / "catalog.json",
        "--mask",
        root / "mask.nc",
        "--store",
        tmp_path / "s.zarr",
        "--cluster",
        "none",
        "--no-progress",
        "--summary-json",
        summary,
    )
    assert r.returncode == 1
    assert "failed TEST.A.hist.r1/npp" in r.stderr.replace("\n", " ") and "npp_A.nc" in r.stderr

    s = json.loads(summary.read_text())
    assert (s["done"], s["failed"], s["skipped"]) == (2, 1, 0)
    assert "npp_A.nc" in s["failures"]["TEST.A.hist.r1/npp"]
    assert 0 < s["compute_seconds"] <= s["seconds"]


def test_run_on_a_local_cluster_prints_a_localhost_dashboard(mini_archive, tmp_path):
    r = _gridflux(
        "run",
        mini_archive["catalog"],
        "--mask",
        mini_archive["mask"],
        "--store",
        tmp_path / "s.zarr",
        "--cluster",
        "local",
        "--workers",
        "2",
        "--no-cubes",
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    assert "dask dashboard: http://127.0.0.1:" in r.stderr


def test_run_takes_several_catalogs_and_prunes_on_request(mini_archive, tmp_path):
    import re

    from gridflux.ingest.catalog import load_catalog, write_catalog

    rows = load_catalog(mini_archive["catalog"]).rows
    a = write_catalog([r for r in rows if r.source_id == "A"], mini_archive["root"] / "cli-a.json")
    bc = write_catalog(
        [r for r in rows if r.source_id != "A"], mini_archive["root"] / "cli-bc.json"
    )
    store = tmp_path / "s.zarr"
    common = ["--mask", mini_archive["mask"], "--store", store, "--cluster", "none"]
    r = _gridflux("run", a, bc, *common, "--no-progress", "--protocol", "regrid-mask")
    assert r.returncode == 0, r.stderr
    info = _gridflux("store", "info", store)
    assert len(re.findall(r"│\s*regrid-mask\s*│", info.stdout)) == 3, info.stdout
    # B and C left the catalogs: kept and named, then pruned on request
    r = _gridflux("run", a, *common, "--no-progress", "--protocol", "regrid-mask")
    assert r.returncode == 0 and "in none of the catalogs" in r.stderr, r.stderr
    r = _gridflux("run", a, *common, "--no-progress", "--protocol", "regrid-mask", "--prune")
    assert r.returncode == 0 and "pruned 2 series" in r.stderr, r.stderr
    info = _gridflux("store", "info", store)
    assert "TEST.B" not in info.stdout and "TEST.A.hist.r1/npp" in info.stdout


# -- the front door on a real store (issue 15) ---------------------------------------------------
import os  # noqa: E402
import re  # noqa: E402

import pytest  # noqa: E402


def _env(**extra):
    """The environment of a subprocess: this one without DASK_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    env["DASK_CONFIG"] = os.devnull  # no ~/.config/dask of the machine
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _run(archive, store, *args, env=None, columns=100):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gridflux",
            "run",
            archive["catalog"],
            "--mask",
            archive["mask"],
            "--store",
            str(store),
            *map(str, args),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(COLUMNS=columns, **(env or {})),
    )


def _cube_time_chunk(store, variable="npp"):
    import zarr

    return zarr.open_array(str(store), path=f"cubes/{variable}/{variable}", mode="r").chunks[1]


@pytest.fixture(scope="module")
def done_store(mini_archive, tmp_path_factory):
    store = tmp_path_factory.mktemp("done") / "s.zarr"
    r = _run(mini_archive, store, "--cluster", "none", "--no-progress")
    assert r.returncode == 0, r.stderr
    return store


def test_settings_reach_gridflux_run_from_env_yaml_and_option(mini_archive, tmp_path):
    # packaged default: 12 months per store chunk, zarr format 3, cubes on a 0.5 deg grid
    # environment variable
    r = _run(
        mini_archive,
        tmp_path / "env.zarr",
        "--cluster",
        "none",
        "--no-progress",
        env={"DASK_GRIDFLUX__PIPELINE__CHUNK_MONTHS": 6, "DASK_GRIDFLUX__STORE__ZARR_FORMAT": 2},
    )
    assert r.returncode == 0, r.stderr
    assert _cube_time_chunk(tmp_path / "env.zarr") == 6
    assert (tmp_path / "env.zarr" / ".zgroup").exists()
    # a YAML file in the user's dask config
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "gridflux.yaml").write_text(
        "gridflux:\n  pipeline:\n    chunk-months: 4\n  target-grid:\n    dlat: 2.0\n"
    )
    r = _run(
        mini_archive,
        tmp_path / "yaml.zarr",
        "--cluster",
        "none",
        "--no-progress",
        env={"DASK_CONFIG": conf},
    )
    assert r.returncode == 0, r.stderr
    assert _cube_time_chunk(tmp_path / "yaml.zarr") == 4
    lat = np.diff(
        __import__("xarray").open_zarr(tmp_path / "yaml.zarr", group="grid")["lat"].values
    )
    assert np.allclose(lat, 2.0)
    # --option, and a command-line flag over the environment
    r = _run(
        mini_archive,
        tmp_path / "opt.zarr",
        "--cluster",
        "none",
        "--no-progress",
        "--option",
        "pipeline.cubes=false",
        "--chunk-months",
        3,
        env={"DASK_GRIDFLUX__PIPELINE__CHUNK_MONTHS": 6},
    )
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "opt.zarr" / "cubes").exists()
    r = _run(
        mini_archive,
        tmp_path / "flag.zarr",
        "--cluster",
        "none",
        "--no-progress",
        "--chunk-months",
        3,
        env={"DASK_GRIDFLUX__PIPELINE__CHUNK_MONTHS": 6},
    )
    assert r.returncode == 0, r.stderr
    assert _cube_time_chunk(tmp_path / "flag.zarr") == 3


@pytest.mark.skipif(os.access("/sys", os.W_OK) and os.geteuid() != 0, reason="/sys writable?")
def test_run_into_a_read_only_place_is_a_store_error(mini_archive):
    r = _run(mini_archive, "/sys/gridflux-test.zarr", "--cluster", "none", "--no-progress")
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("error: /sys/gridflux-test.zarr") and "permission" in line.lower()


def test_run_refuses_a_json_mask_and_a_misspelled_column(mini_archive, tmp_path):
    js = tmp_path / "regions.json"
    js.write_text("{}")
    r = _gridflux("run", mini_archive["catalog"], "--mask", js, "--store", tmp_path / "s.zarr")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "startswith" not in r.stderr and "gridflux mask" in r.stderr
    r = _run(
        mini_archive,
        tmp_path / "s.zarr",
        "--cluster",
        "none",
        "--select",
        "ensembel=TEST",
        columns=300,
    )
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert "ensembel" in line and "no such catalog column" in line
    assert re.search(r"columns are .*\bensemble\b.*\bsource_id\b", line)
    r = _run(
        mini_archive,
        tmp_path / "s.zarr",
        "--cluster",
        "none",
        "--select",
        "source_id=Z",
        columns=300,
    )
    assert r.returncode == 2 and "source_id: A, B, C" in r.stderr
    assert not (tmp_path / "s.zarr").exists()  # refused before anything was written


def _column(table: str, index: int) -> str:
    """The text of one column of a rich table, its folded pieces joined in order."""
    cells = []
    for line in table.splitlines():
        parts = line.split("│")
        if len(parts) > index + 1:
            cells.append(parts[index + 1].strip())
    return "".join(cells)


@pytest.mark.parametrize("columns", [80, 120])
def test_store_info_names_every_series_and_error_whole(done_store, tmp_path, columns):
    store = tmp_path / "s.zarr"
    shutil.copytree(done_store, store)
    man = json.loads((store / "manifest.json").read_text())
    long_key = (
        "RECCAP2-very-long-ensemble.A-model-with-a-long-name.historical-and-ssp585.r1i1p1f1/npp"
    )
    long_error = (
        "InputError: /data/a/very/long/path/to/the/archive/of/one/model/npp_Lmon_"
        "model_historical_r1i1p1f1_gn_185001-201412.nc, variable 'npp': bad units"
    )
    man["series"][long_key] = {"status": "failed", "seconds": 1.0, "error": long_error}
    (store / "manifest.json").write_text(json.dumps(man))
    r = subprocess.run(
        [sys.executable, "-m", "gridflux", "store", "info", str(store)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(COLUMNS=columns),
    )
    assert r.returncode == 0, r.stderr
    table = [line for line in r.stdout.splitlines() if not line.startswith("{")]  # not the JSON
    assert max(len(line) for line in table) <= columns
    assert "…" not in r.stdout
    keys, errors = _column(r.stdout, 0), _column(r.stdout, 4)
    for key in [*man["series"]]:
        assert key in keys
    assert long_error.replace(" ", "") in errors.replace(" ", "")  # wrapped at its spaces
    assert "/data/a/very/long/path/to/the/archive/of/one/model/npp_Lmon_model_" in errors


def test_export_names_the_series(done_store, tmp_path):
    r = _gridflux("export", done_store, "--totals", tmp_path / "t.csv")
    assert r.returncode == 0 and r.stdout == ""
    for src in "ABC":
        assert f"TEST.{src}.hist.r1/npp" in r.stderr


def test_plain_xarray_and_open_store_select_and_group_by_trait(done_store):
    import xarray as xr

    from gridflux.pipeline.store import open_store

    ds = open_store(done_store)
    for name in ("ensemble", "source_id", "layered_c", "fire", "variable_kind"):
        assert isinstance(ds[name].data, np.ndarray), name
    assert ds.totals.chunks is not None  # the data stay lazy
    a = ds.totals.where(ds.source_id == "A", drop=True)
    assert list(a.member.values) == ["TEST.A.hist.r1"]
    fire = ds.totals.groupby("fire").sum(skipna=True)
    # truth: the B and C series (fire=True) summed, independently of gridflux's reader
    for region in fire.region.values:
        want = sum(
            np.nansum(np.asarray(v[1]))
            for (m, r), v in _truths(region).items()
            if m != "TEST.A.hist.r1"
        )
        got = float(fire.sel(fire=True, region=region).sum())
        assert abs(got - want) <= 1e-9 * abs(want)
    plain = xr.open_zarr(done_store, chunks=None)  # the route docs/store.md gives for xarray
    assert plain.totals.where(plain.source_id == "B", drop=True).sizes["member"] == 1
    assert set(plain.totals.groupby("ensemble").groups) == {"TEST"}


def test_plain_open_zarr_with_defaults_gives_dask_traits(done_store):
    """The limit docs/store.md states, pinned so that an xarray release that lifts it is noticed:
    ``xr.open_zarr(path)`` (``chunks={}``) turns every variable that is not in memory into dask
    (xarray/backends/api.py ``_chunk_ds``: only ``var._in_memory`` variables are kept as they
    are), and only the dimension coordinates (``member``, ``variable``, ``region``, ``time``)
    become in-memory indexes (``_maybe_create_default_indexes``); no zarr layout of a 1-d
    coordinate on ``member`` is read into memory. ``open_store`` (or ``chunks=None``) is the
    route for selecting and grouping by a trait."""
    import xarray as xr

    plain = xr.open_zarr(done_store)
    assert plain["member"].chunks is None and plain["totals"].chunks is not None
    for name in ("ensemble", "source_id", "fire", "variable_kind"):
        assert plain[name].chunks is not None, f"{name}: now in memory: update docs/store.md"
    loaded = plain.assign_coords(  # the fix docs/store.md gives
        {k: plain[k].compute() for k in plain.coords if k not in plain.indexes}
    )
    assert loaded.totals.where(loaded.source_id == "B", drop=True).sizes["member"] == 1


_TRUTH: dict = {}


def _truths(region):
    return {k: v for k, v in _TRUTH.items() if k[1] == region}


@pytest.fixture(autouse=True)
def _share_truth(mini_archive):
    _TRUTH.update(mini_archive["truth"])


def test_failed_series_on_a_cluster_one_clean_line_and_streams(mini_archive, tmp_path):
    root = tmp_path / "arch"
    shutil.copytree(mini_archive["root"], root)
    # the header stays readable (the driver plans A), its deflated chunks do not: A fails in a
    # task on a worker
    size = (root / "npp_A.nc").stat().st_size
    with open(root / "npp_A.nc", "r+b") as f:
        f.seek(size // 2)
        f.write(b"\xff" * (size * 3 // 10))
    archive = {"catalog": root / "catalog.json", "mask": root / "mask.nc"}
    r = _run(archive, tmp_path / "s.zarr", "--cluster", "local", "--workers", 1, "--no-cubes")
    assert r.returncode == 1, r.stderr
    assert "Compute Failed" not in r.stderr and "Traceback" not in r.stderr
    assert "failed TEST.A.hist.r1/npp" in r.stderr.replace("\n", " ")
    assert "cannot be inflated" in r.stderr  # it did fail in a task on the worker
    assert r.stdout == ""  # progress and summary both on stderr
    # resumed: nothing read, and nothing claimed read
    (root / "npp_A.nc").unlink()
    shutil.copy(mini_archive["root"] / "npp_A.nc", root / "npp_A.nc")
    r = _run(archive, tmp_path / "s.zarr", "--cluster", "none", "--no-cubes")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and "MB/s" in r.stderr  # the summary's column
    assert not re.search(r"[1-9][0-9.]* MB read", r.stderr)
    assert re.search(r"│\s+1\s+│\s+2\s+│\s+0\s+│", r.stderr), r.stderr  # 1 done, 2 skipped


@pytest.mark.parametrize("columns", [80, 120])
def test_catalog_check_fits_the_terminal(mini_archive, columns):
    r = subprocess.run(
        [sys.executable, "-m", "gridflux", "catalog", "check", mini_archive["catalog"]],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(COLUMNS=columns),
    )
    assert r.returncode == 0, r.stderr
    assert max(len(line) for line in r.stdout.splitlines()) <= columns
    assert "…" not in r.stdout
    keys = _column(r.stdout, 0)
    for src in "ABC":
        assert f"TEST.{src}.hist.r1" in keys
