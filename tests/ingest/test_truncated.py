"""A truncated local netCDF says "truncated", naming the file (issue 20 point 7).

netCDF-C reports a cut netCDF-4 file as "NetCDF: HDF error" and reads a cut netCDF-3 file as if the
missing bytes were zeros. gridflux compares the file's size with the size its own header expects
(HDF5 superblock end-of-file address; the end of the last variable of a classic header) before it
opens the file. The truth of every expected size here is the size netCDF-C wrote.
"""

from __future__ import annotations

import os

import netCDF4
import numpy as np
import pytest

from gridflux.errors import InputError
from gridflux.ingest.catalog import SeriesRecord, load_series
from gridflux.ingest.chunkread import ChunkReader, expected_size, truncation

from .conftest import write_file

FORMATS = [
    "NETCDF4",
    "NETCDF4_CLASSIC",
    "NETCDF3_CLASSIC",
    "NETCDF3_64BIT_OFFSET",
    "NETCDF3_64BIT_DATA",
]


def _write_any(path, fmt, record: bool, extra_record_var: bool):
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        nc.createDimension("time", None if record else 3)
        nc.createDimension("lat", 5)
        nc.createDimension("lon", 7)
        nc.title = "odd length title"  # attribute padding
        v = nc.createVariable("a", "f4", ("time", "lat", "lon"))
        v.units = "kg"
        v[:] = np.arange(105, dtype=np.float32).reshape(3, 5, 7)
        if extra_record_var:
            nc.createVariable("b", "i1", ("time", "lat"))[:] = np.ones((3, 5))
            nc.createVariable("time", "f8", ("time",))[:] = [1.0, 2.0, 3.0]
        nc.createVariable("lat", "f8", ("lat",))[:] = np.arange(5.0)
        nc.createVariable("s", "i2", ())
    return str(path)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("record, extra", [(False, False), (True, False), (True, True)])
def test_expected_size_of_complete_files_is_their_size(tmp_path, fmt, record, extra):
    path = _write_any(tmp_path / "f.nc", fmt, record, extra)
    size = os.path.getsize(path)
    kind, want = expected_size(path)
    assert kind == ("HDF5" if fmt.startswith("NETCDF4") else "netCDF classic")
    # classic files may end with up to 3 bytes of padding after the last variable
    assert want == size if kind == "HDF5" else size - 3 <= want <= size
    assert truncation(path) is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_cut_files_are_truncated_with_sizes(tmp_path, fmt):
    path = _write_any(tmp_path / "f.nc", fmt, True, True)
    _, want = expected_size(path)
    data = open(path, "rb").read()
    for keep in (len(data) // 2, want - 1):
        cut = tmp_path / f"cut-{keep}.nc"
        cut.write_bytes(data[:keep])
        msg = truncation(str(cut))
        assert msg is not None and msg.startswith(f"truncated: the file has {keep} bytes")
        assert f"ends at byte {want} ({want - keep} bytes missing)" in msg


def test_not_netcdf_or_cut_inside_the_header_is_not_a_size_claim(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("plain text, no header\n")
    assert expected_size(str(other)) is None and truncation(str(other)) is None
    path = _write_any(tmp_path / "f.nc", "NETCDF3_CLASSIC", True, True)
    head = tmp_path / "head.nc"
    head.write_bytes(open(path, "rb").read()[:20])  # inside the dimension list
    assert expected_size(str(head)) is None


@pytest.mark.parametrize("fmt", ["NETCDF4", "NETCDF3_CLASSIC"])
def test_a_truncated_input_fails_its_series_saying_truncated(tmp_path, fmt):
    """netCDF-4: was "NetCDF: HDF error"; netCDF-3: was read with zeros for the missing bytes."""
    full = tmp_path / "full.nc"
    write_file(full, var="rh")
    if fmt != "NETCDF4":  # the same content as netCDF-3
        with netCDF4.Dataset(full) as src, netCDF4.Dataset(tmp_path / "c.nc", "w", format=fmt) as d:
            for name, dim in src.dimensions.items():
                d.createDimension(name, None if dim.isunlimited() else len(dim))
            for name, var in src.variables.items():
                out = d.createVariable(name, var.dtype, var.dimensions)
                out.setncatts({k: var.getncattr(k) for k in var.ncattrs() if k != "_FillValue"})
                out[:] = var[:]
        full = tmp_path / "c.nc"
    data = full.read_bytes()
    bad = tmp_path / "truncated.nc"
    bad.write_bytes(data[: len(data) - 24])
    rec = SeriesRecord(
        key="E.M.x.r1.rh", member="E.M.x.r1", variable="rh", raw_variable="rh", paths=[str(bad)]
    )
    with pytest.raises(InputError) as info:
        load_series(rec).load()
    msg = str(info.value)
    assert msg.startswith(
        f"{bad}, attribute 'size': truncated: the file has {len(data) - 24} bytes"
    )
    assert "HDF error" not in msg and info.value.attribute == "size"


def test_a_deflated_file_cut_while_open_is_truncated_not_fill(tmp_path):
    """A chunk the index says is stored but that is beyond the end of the file: an error, never
    the fill value."""
    path = str(tmp_path / "d.nc")
    with netCDF4.Dataset(path, "w") as nc:
        for d, n in (("time", 6), ("lat", 8), ("lon", 9)):
            nc.createDimension(d, n)
        v = nc.createVariable("x", "f4", ("time", "lat", "lon"), zlib=True, chunksizes=(1, 8, 9))
        v[:] = np.random.default_rng(0).normal(size=(6, 8, 9))
    with ChunkReader(path, "x") as r:
        first = r.read((slice(0, 1), slice(0, 8), slice(0, 9)))
        assert np.isfinite(first).all()
        size = os.path.getsize(path)
        cut = r.file["x"].id.get_chunk_info_by_coord((3, 0, 0)).byte_offset  # chunks 3-5 gone
        os.truncate(path, cut)
        with pytest.raises(InputError) as info:
            r.read((slice(5, 6), slice(0, 8), slice(0, 9)))
    assert str(info.value).startswith(
        f"{path}, variable 'x', attribute 'size': truncated: the file has {cut} bytes but its "
        f"HDF5 header says it ends at byte {size}"
    ), str(info.value)
