"""RegionMask from zarr and GeoJSON files, against closed-form areas."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gridflux.errors import MaskError
from gridflux.fields.masks import RegionMask
from gridflux.kernels.grids import EARTH_RADIUS, global_grid


def _cap_area(s, n, w, e):
    return EARTH_RADIUS**2 * np.radians(e - w) * (np.sin(np.radians(n)) - np.sin(np.radians(s)))


def test_zarr_round_trip(tmp_path):
    g = global_grid(2.0)
    f = np.zeros((2,) + g.shape)
    f[0, 70:80, :] = 0.25
    f[1, 80:, 10:20] = 1.0
    RegionMask(("a", "b"), f, g).to_dataarray().to_dataset().to_zarr(tmp_path / "m.zarr")
    m = RegionMask.from_file(tmp_path / "m.zarr")
    assert m.names == ("a", "b")
    areas = m.areas()
    assert np.isclose(areas["a"], 0.25 * _cap_area(50, 70, -180, 180), rtol=1e-12)
    assert np.isclose(areas["b"], _cap_area(70, 90, -160, -140), rtol=1e-12)


def test_geojson_regions_exact_fractions(tmp_path):
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "yamal"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[60.5, 66.25], [75.3, 66.25], [75.3, 72.6], [60.5, 72.6], [60.5, 66.25]]
                    ],
                },
            },
            {
                "type": "Feature",
                "properties": {"name": "chukotka"},  # across the dateline
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[170.0, 62.0], [190.0, 62.0], [190.0, 70.0], [170.0, 70.0], [170.0, 62.0]]
                    ],
                },
            },
        ],
    }
    path = tmp_path / "regions.geojson"
    path.write_text(json.dumps(doc))
    m = RegionMask.from_geojson(path, global_grid(1.0))
    areas = m.areas()
    assert np.isclose(areas["yamal"], _cap_area(66.25, 72.6, 60.5, 75.3), rtol=1e-12)
    assert np.isclose(areas["chukotka"], _cap_area(62, 70, 170, 190), rtol=1e-12)
    assert m.fractions.max() <= 1.0


def test_shapefile_regions_exact_fractions(tmp_path):
    """The same two boxes as ESRI shapefile records (written with pyshp); one region in two
    records."""
    shapefile = pytest.importorskip("shapefile", reason="pyshp (gridflux[geo]) not installed")
    with shapefile.Writer(str(tmp_path / "regions"), shapeType=shapefile.POLYGON) as w:
        w.field("name", "C")
        w.poly([[[60.5, 66.25], [60.5, 72.6], [75.3, 72.6], [75.3, 66.25], [60.5, 66.25]]])
        w.record("yamal")
        for lon0, lon1 in ((170.0, 180.0), (-180.0, -170.0)):  # chukotka split at the dateline
            w.poly([[[lon0, 62.0], [lon0, 70.0], [lon1, 70.0], [lon1, 62.0], [lon0, 62.0]]])
            w.record("chukotka")
    m = RegionMask.from_shapefile(tmp_path / "regions.shp", global_grid(1.0))
    assert m.names == ("yamal", "chukotka")
    areas = m.areas()
    assert np.isclose(areas["yamal"], _cap_area(66.25, 72.6, 60.5, 75.3), rtol=1e-12)
    assert np.isclose(areas["chukotka"], _cap_area(62, 70, 170, 190), rtol=1e-12)
    with pytest.raises(MaskError, match=r"no attribute 'region'.*the records have name"):
        RegionMask.from_shapefile(tmp_path / "regions.shp", global_grid(1.0), name_field="region")
    (tmp_path / "bad.shp").write_bytes(b"not a shapefile")
    with pytest.raises(MaskError, match=r"bad\.shp: not a readable shapefile"):
        RegionMask.from_shapefile(tmp_path / "bad.shp", global_grid(1.0))


def test_cli_mask_from_geojson_and_bad_input(tmp_path):
    from typer.testing import CliRunner

    from gridflux.cli import app

    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"id": "box"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[10, 50], [40, 50], [40, 65.3], [10, 65.3], [10, 50]]],
                },
            }
        ],
    }
    (tmp_path / "r.geojson").write_text(json.dumps(doc))
    res = CliRunner().invoke(
        app,
        [
            "mask",
            str(tmp_path / "r.geojson"),
            "--out",
            str(tmp_path / "m.nc"),
            "--resolution",
            "1",
            "--name-field",
            "id",
        ],
    )
    assert res.exit_code == 0, res.output
    m = RegionMask.from_file(tmp_path / "m.nc")
    assert m.names == ("box",) and m.grid.shape == (180, 360)
    assert np.isclose(m.areas()["box"], _cap_area(50, 65.3, 10, 40), rtol=1e-12)
    assert f"{_cap_area(50, 65.3, 10, 40) / 1e12:.4f} million km2" in res.output
    (tmp_path / "r.txt").write_text("x")
    res = CliRunner().invoke(
        app, ["mask", str(tmp_path / "r.txt"), "--out", str(tmp_path / "n.nc")]
    )
    assert res.exit_code != 0 and "expected a .geojson, .json or .shp file" in res.output
    assert not (tmp_path / "n.nc").exists()


def test_mask_file_with_two_variables_reads_both(tmp_path):
    """Two 2-D variables are two regions named by the variable (no longer an error)."""
    import xarray as xr

    g = global_grid(10.0)
    a = np.zeros(g.shape)
    a[-2:] = 1.0  # 70..90 N
    ds = xr.Dataset(
        {"a": (("lat", "lon"), a), "b": (("lat", "lon"), np.ones(g.shape))},
        coords={"lat": g.lat, "lon": g.lon},
    )
    ds.to_netcdf(tmp_path / "two.nc")
    m = RegionMask.from_file(tmp_path / "two.nc")
    assert m.names == ("a", "b")
    assert np.isclose(m.areas()["a"], _cap_area(70, 90, -180, 180), rtol=1e-12)
    assert RegionMask.from_file(tmp_path / "two.nc", variable="b").names == ("b",)


def test_netcdf_round_trip_keeps_exact_bounds(tmp_path):
    """Irregular bounds (not the midpoints of the centres) survive a write and a read exactly."""
    from gridflux.kernels.grids import CellBounds

    lat_e = np.array([-90.0, -30.0, 10.0, 12.5, 90.0])
    lon_e = np.array([0.0, 100.0, 101.0, 360.0])
    g = CellBounds(
        np.column_stack([lat_e[:-1], lat_e[1:]]), np.column_stack([lon_e[:-1], lon_e[1:]])
    )
    m = RegionMask(("r",), np.linspace(0, 1, 12).reshape(1, 4, 3), g)
    m.to_netcdf(tmp_path / "m.nc")
    back = RegionMask.from_file(tmp_path / "m.nc")
    assert back.grid == g
    np.testing.assert_array_equal(back.fractions, m.fractions)
