"""Unit factors against hand-computed numbers (molar masses of PAPER.md)."""

import numpy as np
import pytest

from gridflux.errors import InputError
from gridflux.fields.units import ALIASES, VARIABLES, unit_factor

DAY = 86400.0


@pytest.mark.parametrize(
    ("units", "variable", "kwargs", "expected"),
    [
        ("kg m-2 s-1", "npp", {}, 1.0),
        ("kg C m-2 s-1", "rh", {}, 1.0),
        ("kgC m-2 s-1", "rh", {}, 1.0),
        ("kg/m2/s", "gpp", {}, 1.0),
        ("g m-2 day-1", "rh", {}, 1e-3 / DAY),
        ("g C m-2 d-1", "nbp", {}, 1e-3 / DAY),
        ("gC m^-2 day^-1", "nbp", {}, 1e-3 / DAY),
        ("mol m-2 s-1", "fco2", {}, 12.011e-3),
        ("mol m-2 s-1", "fco2", {"gas": "CO2"}, 12.011e-3),
        ("mol m-2 s-1", "fch4", {"gas": "CH4"}, 12.011e-3),
        ("mol m-2 s-1", "fn2o", {"gas": "N2O"}, 2 * 14.007e-3),
        ("umol m-2 s-1", "fco2", {}, 12.011e-9),
        ("kg CH4 m-2 s-1", "fch4", {}, 12.011 / 16.043),
        ("kg m-2 s-1", "fch4", {"mass_basis": "CH4"}, 12.011 / 16.043),
        ("kg N2O m-2 s-1", "fn2o", {}, 2 * 14.007 / 44.013),
        ("kg m-2", "cSoil", {}, 1.0),
        ("g C m-2", "cVeg", {}, 1e-3),
    ],
)
def test_scalar_factors(units, variable, kwargs, expected):
    f = unit_factor(units, variable, **kwargs)
    assert not f.per_month
    assert f.scale == pytest.approx(expected, rel=1e-12)
    assert units in f.description


def test_month_units_give_per_month_factor():
    f = unit_factor("g N m-2 month-1", "fn2o")
    assert f.per_month
    secs = np.array([31, 28, 30]) * DAY
    np.testing.assert_allclose(f.values(secs), 1e-3 / secs, rtol=1e-12)
    assert not f.is_identity


@pytest.mark.parametrize(
    ("units", "variable"),
    [
        ("W m-2", "npp"),
        ("kg m-2", "npp"),
        ("kg m-2 s-1", "cSoil"),
        ("bananas m-2 s-1", "npp"),
        ("", "npp"),
        ("kg N2O m-2 s-1", "fch4"),
        ("g m-2 month-2", "fn2o"),
    ],
)
def test_bad_units_name_file_variable_attribute(units, variable):
    with pytest.raises(InputError) as info:
        unit_factor(units, variable, path="model.nc", raw_name="RAW")
    msg = str(info.value)
    assert "model.nc" in msg and "'RAW'" in msg and "'units'" in msg and "expected" in msg
    assert info.value.attribute == "units"


def test_sign_table():
    flip = {n for n, s in VARIABLES.items() if s.into_land}
    assert flip == {"gpp", "npp", "nbp", "nep"}
    assert (
        ALIASES["netAtmosLandCO2Flux"].canonical == "nbp"
        and ALIASES["netAtmosLandCO2Flux"].into_land
    )
    assert ALIASES["SHR"].canonical == "rh" and not ALIASES["SHR"].into_land
    assert ALIASES["wetlandCH4"].canonical == "fch4"
    assert VARIABLES["fch4"].element == "C" and VARIABLES["fn2o"].element == "N"


# -- pint's definition cache (gridflux.fields.units.unit_registry) ----------------------------
CACHE_CASES = [
    ("g C m-2 d-1", "nbp", 1e-3 / DAY),
    ("umol m-2 s-1", "fco2", 12.011e-9),
    ("kg N2O m-2 s-1", "fn2o", 2 * 14.007 / 44.013),
    ("Mg ha-1", "cVeg", 1e3 / 1e4),
]


def _factors_with(monkeypatch, folder: str | None) -> list[float]:
    from gridflux.fields import units

    if folder is None:
        monkeypatch.delenv("GRIDFLUX_PINT_CACHE", raising=False)
    else:
        monkeypatch.setenv("GRIDFLUX_PINT_CACHE", folder)
    units.unit_registry.cache_clear()
    try:
        return [float(unit_factor(u, v).scale) for u, v, _ in CACHE_CASES]
    finally:
        units.unit_registry.cache_clear()


def test_pint_cache_folder_gives_the_same_factors(monkeypatch, tmp_path):
    from gridflux.fields.units import pint_cache_folder

    folder = tmp_path / "pint"
    monkeypatch.setenv("GRIDFLUX_PINT_CACHE", str(folder))
    assert pint_cache_folder() == str(folder)
    expected = [e for _, _, e in CACHE_CASES]
    first = _factors_with(monkeypatch, str(folder))  # writes the cache
    assert any(p.suffix == ".pickle" for p in folder.iterdir())
    second = _factors_with(monkeypatch, str(folder))  # reads it
    assert first == second
    np.testing.assert_allclose(second, expected, rtol=1e-12)


def test_pint_cache_falls_back_when_unusable(monkeypatch, tmp_path):
    from gridflux.fields.units import pint_cache_folder

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GRIDFLUX_PINT_CACHE", str(blocker / "pint"))
    assert pint_cache_folder() is None  # cannot be created: no cache, no error
    monkeypatch.setenv("GRIDFLUX_PINT_CACHE", "")
    assert pint_cache_folder() is None
    expected = [e for _, _, e in CACHE_CASES]
    np.testing.assert_allclose(_factors_with(monkeypatch, str(blocker / "pint")), expected)
    # a torn cache file (another process writing it): parsed again, the same factors
    folder = tmp_path / "torn"
    _factors_with(monkeypatch, str(folder))
    for p in folder.glob("*.pickle"):
        p.write_bytes(p.read_bytes()[:10])
    np.testing.assert_allclose(_factors_with(monkeypatch, str(folder)), expected, rtol=1e-12)


def test_pint_cache_folder_is_private_and_outside_home(monkeypatch, tmp_path):
    """By default a 0700 folder of this user under the temporary directory (nothing in $HOME);
    a folder others can write to is not trusted (pint reads it with pickle)."""
    import os
    import stat
    import tempfile

    from gridflux.fields.units import pint_cache_folder

    monkeypatch.delenv("GRIDFLUX_PINT_CACHE", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    folder = pint_cache_folder()
    assert folder == os.path.join(str(tmp_path), f"gridflux-{os.getuid()}", "pint")
    assert stat.S_IMODE(os.stat(folder).st_mode) & 0o077 == 0
    os.chmod(os.path.dirname(folder), 0o777)  # someone else could swap the folder
    assert pint_cache_folder() is None
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    monkeypatch.setenv("GRIDFLUX_PINT_CACHE", str(shared))
    assert pint_cache_folder() is None
    os.chmod(shared, 0o700)
    assert pint_cache_folder() == str(shared)
