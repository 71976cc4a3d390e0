"""One test per bad input: each gives an error naming file, variable/field and what was expected."""

import os

import numpy as np
import pytest

from gridflux.errors import CatalogError, InputError
from gridflux.ingest.catalog import (
    SeriesRecord,
    check_catalog,
    load_catalog,
    load_series,
    write_catalog,
)


def _rec(paths, variable="rh", raw=None, **kw):
    return SeriesRecord(
        key=f"E.M.x.r1.{variable}",
        member="E.M.x.r1",
        variable=variable,
        raw_variable=raw or variable,
        paths=list(paths),
        **kw,
    )


def test_truncated_netcdf(ncfile, tmp_path):
    p = ncfile(var="rh")
    data = open(p, "rb").read()
    bad = tmp_path / "truncated.nc"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="truncated: the file has") as info:
        load_series(_rec([str(bad)]))
    assert str(bad) in str(info.value) and info.value.attribute == "size"
    assert "HDF error" not in str(info.value)  # netCDF-C's words for it (issue 20 point 7)


def test_not_a_netcdf_file(tmp_path):
    bad = tmp_path / "notes.nc"
    bad.write_text("this is not netCDF\n")
    with pytest.raises(InputError, match="expected a readable netcdf file"):
        load_series(_rec([str(bad)]))


def test_missing_variable(ncfile):
    p = ncfile(var="npp")
    with pytest.raises(InputError, match="not in the file") as info:
        load_series(_rec([p], variable="rh", raw="rh"))
    assert info.value.variable == "rh" and "npp" in str(info.value) and p in str(info.value)


def test_unknown_units(ncfile):
    p = ncfile(var="rh", units="furlongs per fortnight")
    with pytest.raises(InputError, match="expected a flux") as info:
        load_series(_rec([p]))
    assert info.value.attribute == "units" and p in str(info.value)


def test_missing_calendar(ncfile):
    p = ncfile(var="rh", calendar=None)
    with pytest.raises(InputError, match="no calendar") as info:
        load_series(_rec([p]))
    assert info.value.attribute == "calendar" and p in str(info.value)
    # a calendar declared in the catalog fixes it
    out = load_series(_rec([p], calendar="noleap"))
    assert out["rh"].attrs["gridflux_calendar"] == "noleap"


def test_unparseable_time(ncfile):
    p = ncfile(var="rh", time_units="days after the harvest")
    with pytest.raises(InputError, match="not a CF time unit") as info:
        load_series(_rec([p]))
    assert info.value.variable == "time" and info.value.attribute == "units"


def test_gaps(ncfile):
    p = ncfile(var="rh", time=[15.0, 45.0, 135.0])  # Jan, Feb, May
    with pytest.raises(InputError, match="missing months 2000-03..2000-04"):
        load_series(_rec([p]))
    out = load_series(_rec([p]), allow_gaps=True)
    assert out["rh"].attrs["gridflux_gaps"] == "2000-03..2000-04"


def test_overlapping_files(ncfile):
    a = ncfile("a.nc", var="rh", time=[15.0, 45.0, 75.0])
    b = ncfile("b.nc", var="rh", time=[75.0, 105.0, 135.0])
    with pytest.raises(InputError, match="overlaps") as info:
        load_series(_rec([a, b]))
    assert a in str(info.value) and b in str(info.value)


def test_duplicated_month(ncfile):
    p = ncfile(var="rh", time=[15.0, 20.0, 45.0])
    with pytest.raises(InputError, match="appears twice"):
        load_series(_rec([p]))


def test_non_monotonic_coordinates(ncfile):
    p = ncfile(var="rh", lat=[-45.0, 45.0, 0.0])
    with pytest.raises(InputError, match="monotonic") as info:
        load_series(_rec([p]))
    assert info.value.variable == "lat" and p in str(info.value)


def test_sftlf_absent_for_per_land_variable(ncfile):
    p = ncfile(var="rh", cell_methods="area: mean where land")
    with pytest.raises(InputError, match="no land fraction") as info:
        load_series(_rec([p]))
    assert info.value.attribute == "cell_methods" and "sftlf" in str(info.value)


def test_catalog_path_escaping_root(tmp_path):
    root = tmp_path / "cat"
    root.mkdir()
    (root / "c.csv").write_text(
        "ensemble,source_id,experiment,member_id,variable,path\nE,M,x,r1,rh,ok.nc\nE,M,x,r1,rh,../../etc/passwd\n"
    )
    with pytest.raises(CatalogError, match="escapes the catalog root") as info:
        load_catalog(str(root / "c.csv"))
    assert "line 3" in str(info.value) and "'path'" in str(info.value)


def test_bad_catalog_field_names_line_and_field(tmp_path):
    (tmp_path / "c.csv").write_text(
        "ensemble,source_id,experiment,member_id,variable,path,fire\nE,M,x,r1,rh,a.nc,True\nE,M,x,r1,rh,b.nc,maybe\n"
    )
    with pytest.raises(CatalogError) as info:
        load_catalog(str(tmp_path / "c.csv"))
    assert "line 3" in str(info.value) and "'fire'" in str(info.value)
    (tmp_path / "d.csv").write_text(
        "ensemble,source_id,experiment,member_id,variable,path\nE,M,x,r1,2 m air,a.nc\n"
    )
    with pytest.raises(CatalogError, match="line 2.*'variable'.*not a variable name"):
        load_catalog(str(tmp_path / "d.csv"))


def test_a_variable_gridflux_does_not_compute_is_catalogued_and_fails_by_name(ncfile, tmp_path):
    """tas is a valid catalog row (issue 17: every CMIP variable is catalogued); computing it is
    refused with the reason (a mean, not computed yet), not with a KeyError."""
    p = ncfile("tas.nc", var="tas", units="K")
    (tmp_path / "t.csv").write_text(
        f"ensemble,source_id,experiment,member_id,variable,path\nE,M,x,r1,tas,{p}\n"
    )
    (rec,) = load_catalog(str(tmp_path / "t.csv")).series()
    assert rec.variable == "tas" and rec.gas == ""
    with pytest.raises(InputError, match="mean.*not computed yet: temperature") as info:
        load_series(rec)
    assert info.value.variable == "tas" and p in str(info.value)
    (chk,) = check_catalog(str(tmp_path / "t.csv"))
    assert chk.ok and chk.statistic.startswith("mean (not computed yet")


def test_failing_series_never_stops_the_check(ncfile, tmp_path):
    good = ncfile("good.nc", var="rh")
    bad = tmp_path / "bad.nc"
    bad.write_text("garbage")
    gap = ncfile("gap.nc", var="npp", time=[15.0, 105.0])
    rows = [
        {
            "ensemble": "E",
            "source_id": "BAD",
            "experiment": "x",
            "member_id": "r1",
            "variable": "rh",
            "path": str(bad),
        },
        {
            "ensemble": "E",
            "source_id": "GAP",
            "experiment": "x",
            "member_id": "r1",
            "variable": "npp",
            "path": gap,
        },
        {
            "ensemble": "E",
            "source_id": "GOOD",
            "experiment": "x",
            "member_id": "r1",
            "variable": "rh",
            "path": good,
        },
    ]
    cat = write_catalog(rows, os.path.join(tmp_path, "cat.json"))
    res = {r.key: r for r in check_catalog(cat)}
    assert not res["E.BAD.x.r1/rh"].ok and "cannot be opened" in res["E.BAD.x.r1/rh"].problems[0]
    assert not res["E.GAP.x.r1/npp"].ok and "2000-02..2000-03" in res["E.GAP.x.r1/npp"].problems[0]
    assert res["E.GOOD.x.r1/rh"].ok and res["E.GOOD.x.r1/rh"].calendar == "noleap"
    assert res["E.GOOD.x.r1/rh"].coverage.startswith("2000-01..2000-03")
    np.testing.assert_equal(len(res), 3)
