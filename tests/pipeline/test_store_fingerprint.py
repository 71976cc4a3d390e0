"""Every catalog field that can change a series' result is in its fingerprint: changing one makes
the next run recompute the series, with the new field's values (issue 16, point 7). Before, flipping
``into_land`` left a done series skipped with its old sign (resumed -227 Tg, fresh +227 Tg)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gridflux.ingest.catalog import SeriesRecord, load_catalog, write_catalog
from gridflux.pipeline.fingerprint import (
    NOT_RESULT_FIELDS,
    RESULT_FIELDS,
    series_fingerprint,
    unchanged,
)
from gridflux.pipeline.runner import run

B = "TEST.B.hist.r1"
RTOL = 1e-10
# standard atomic weights (IUPAC 2021, abridged): C 12.011, O 15.999
KG_C_PER_KG_CO2 = 12.011 / (12.011 + 2 * 15.999)


def test_every_record_field_is_classified():
    """A field added to SeriesRecord must be put in RESULT_FIELDS or NOT_RESULT_FIELDS."""
    # properties: gas (trait or variable's), statistic_options (the traits that change a statistic)
    fields = set(SeriesRecord.model_fields) | {"gas", "statistic_options"}
    assert fields == set(RESULT_FIELDS) | set(NOT_RESULT_FIELDS)
    assert not set(RESULT_FIELDS) & set(NOT_RESULT_FIELDS)


@pytest.fixture
def archive(mini_archive, tmp_path):
    """A copy of the mini archive whose catalog rows can be edited: ``write(**fields_of_B)``."""
    root = tmp_path / "arch"
    shutil.copytree(mini_archive["root"], root)
    rows = pd.read_csv(root / "catalog.csv", dtype=str, keep_default_na=False).to_dict("records")

    def write(**fields_of_b):
        out = [dict(r, **fields_of_b) if r["source_id"] == "B" else dict(r) for r in rows]
        return str(write_catalog(out, root / "catalog.json"))

    return root, write


def _b_record(archive, **fields):
    root, write = archive
    return next(r for r in load_catalog(write(**fields)).series() if r.member == B)


@pytest.mark.parametrize(
    "field,value",
    [
        ("into_land", False),
        ("mass_basis", "CO2"),
        ("units", "g m-2 s-1"),
        ("per_land_area", False),
        ("calendar", "360_day"),
        ("raw_variable", "NPP_raw"),
        ("time_ranges", ["200001-200212"]),
        ("format", "zarr"),
        ("fx_paths", {"sftlf": "OTHER"}),
        ("paths", "OTHER"),
        ("variable", "gpp"),
        ("strict", True),
        ("table_id", "Lmon"),
        (
            "fixes",
            [{"match": {"source_id": ["B"]}, "defect": "d", "repair": {"lat_bounds": "clip"}}],
        ),
    ],
)
def test_each_result_field_changes_the_fingerprint(archive, field, value):
    rec = _b_record(archive)
    other = str(archive[0] / "npp_A.nc")
    if value == "OTHER":
        value = [other]
    elif isinstance(value, dict):
        value = {k: other for k in value}
    changed = rec.model_copy(update={field: value})
    assert getattr(changed, field) != getattr(rec, field)
    assert not unchanged(series_fingerprint(changed), series_fingerprint(rec))
    assert unchanged(series_fingerprint(rec), series_fingerprint(rec))


def test_gas_changes_the_fingerprint(archive):
    rec = _b_record(archive)
    changed = rec.model_copy(update={"traits": {**rec.traits, "gas": "CH4"}})
    assert changed.gas == "CH4" and rec.gas == "CO2"
    assert not unchanged(series_fingerprint(changed), series_fingerprint(rec))


def _b_north(store):
    da = xr.open_zarr(store)["totals"].sel(member=B, variable="npp", region="north").load()
    return da.dropna("time").values


@pytest.mark.parametrize(
    "field,value,factor",
    [
        ("into_land", "false", -1.0),  # npp is positive into the land unless told otherwise
        ("mass_basis", "CO2", KG_C_PER_KG_CO2),  # kg CO2 m-2 s-1 -> kg C
        ("units", "g m-2 s-1", 1e-3),
    ],
)
def test_changing_a_catalog_field_recomputes_the_series_with_the_new_values(
    mini_archive, archive, tmp_path, field, value, factor
):
    root, write = archive
    store = str(tmp_path / "s.zarr")
    first = run(write(), str(root / "mask.nc"), store, progress=False)
    assert len(first.done) == 3
    again = run(write(**{field: value}), str(root / "mask.nc"), store, progress=False)
    assert again.done == [f"{B}/npp"] and len(again.skipped) == 2, (again.done, again.failed)
    _months, expected = mini_archive["truth"][(B, "north")]
    got = _b_north(store)
    assert np.abs(got - factor * expected).max() / np.abs(expected).max() < 1e-9
    # and back: recomputed again, the original values
    back = run(write(), str(root / "mask.nc"), store, progress=False)
    assert back.done == [f"{B}/npp"]
    assert np.abs(_b_north(store) - expected).max() / np.abs(expected).max() < RTOL
