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
