"""From monthly region totals to annual values and multi-year period means.

The store's ``totals`` hold, per member, the mass of each month already computed in the member's
own calendar (rate x seconds of that month: 30-day months for ``360_day``, 28-day Februaries for
``noleap``...). So an annual flux is the plain sum of a year's 12 monthly masses, and a stock's
annual value is the mean of its 12 monthly means. A year with fewer than 12 finite months is
*incomplete*: it is excluded (NaN) and listed in the report, never silently summed.

Period means are the means of the complete annual values inside a period (PAPER.md). Periods are
data (:data:`DEFAULT_PERIODS`): ``(first_year, last_year)``, with ``last_year=None`` meaning
"to the end of each member's own series" (the paper's "1980 to the end of each simulation").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from gridflux.errors import BudgetError

#: period name -> (first year, last year or None = end of each member's series)
DEFAULT_PERIODS: dict[str, tuple[int, int | None]] = {
    "1980-end": (1980, None),
    "2000-2009": (2000, 2009),
    "2010-2020": (2010, 2020),
    "2010-2017": (2010, 2017),
    "2010-2019": (2010, 2019),
    "2000-2017": (2000, 2017),
    "2000-2019": (2000, 2019),
    "2000-2020": (2000, 2020),
}

#: canonical stock variables (used when the store has no ``variable_kind`` coordinate)
STOCK_VARIABLES = ("cSoil", "cLitter", "cVeg")


def parse_period(name: str) -> tuple[int, int | None]:
    """``"2000-2009"`` -> (2000, 2009); ``"1980-end"`` -> (1980, None)."""
    if name in DEFAULT_PERIODS:
        return DEFAULT_PERIODS[name]
    try:
        a, b = name.split("-")
        return int(a), (None if b == "end" else int(b))
    except ValueError as exc:
        raise BudgetError(f"period {name!r} is not 'YYYY-YYYY' or 'YYYY-end'") from exc


# ----------------------------------------------------------------------------- kernels (numpy)
def annual_kernel(
    values: np.ndarray, years: np.ndarray, how: str = "sum", months_required: int = 12
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aggregate a trailing monthly axis to years.

    Parameters
    ----------
    values : ndarray (..., ntime), float
        Monthly values (Tg per month for fluxes, monthly-mean Tg for stocks); NaN = no data.
    years : ndarray (ntime,), int
        Calendar year of each month.
    how : {"sum", "mean"}
        Sum for fluxes, mean for stocks.
    months_required : int
        Finite months a year needs to count as complete (12).

    Returns
    -------
    out : ndarray (..., nyear) float64, NaN for incomplete years
    counts : ndarray (..., nyear) int, finite months per year
    uyears : ndarray (nyear,) int
    """
    if how not in ("sum", "mean"):
        raise BudgetError(f"annual aggregation {how!r} is unknown; expected 'sum' or 'mean'")
    v = np.asarray(values, dtype=np.float64)
    uyears, inv = np.unique(np.asarray(years), return_inverse=True)
    finite = np.isfinite(v)
    vz = np.where(finite, v, 0.0)
    shape = v.shape[:-1] + (uyears.size,)
    sums = np.zeros(shape)
    counts = np.zeros(shape, dtype=np.int64)
    for k in range(uyears.size):
        sel = inv == k
        sums[..., k] = vz[..., sel].sum(axis=-1)
        counts[..., k] = finite[..., sel].sum(axis=-1)
    out = sums if how == "sum" else sums / np.maximum(counts, 1)
    out = np.where(counts >= months_required, out, np.nan)
    return out, counts, uyears


def period_mean_kernel(
    annual: np.ndarray, years: np.ndarray, first: int, last: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean of the finite annual values within [first, last] (last=None: each series' last year).

    Returns (mean, n_years, first_used, last_used); first/last_used are -1 where nothing is used.
    """
    a = np.asarray(annual, dtype=np.float64)
    yrs = np.asarray(years)
    finite = np.isfinite(a)
    if last is None:
        # each series to its own last finite year
        last_finite = np.where(finite, yrs, -1).max(axis=-1, initial=-1)
        inwin = (yrs >= first) & (yrs <= last_finite[..., None])
    else:
        inwin = np.broadcast_to((yrs >= first) & (yrs <= last), a.shape)
    use = finite & inwin
    n = use.sum(axis=-1)
    mean = np.where(n > 0, np.where(use, a, 0.0).sum(axis=-1) / np.maximum(n, 1), np.nan)
    first_used = np.where(n > 0, np.where(use, yrs, 10**6).min(axis=-1), -1)
    last_used = np.where(n > 0, np.where(use, yrs, -1).max(axis=-1), -1)
    return mean, n, first_used, last_used


# ----------------------------------------------------------------------------- xarray wrappers
@dataclass
class AnnualResult:
    """Annual values and the report of incomplete years.

    Attributes
    ----------
    annual : xr.DataArray (member, variable, region, year)
        Tg of element per year for fluxes; annual-mean Tg for stocks.
    incomplete : pandas.DataFrame
        One row per (member, variable, region, year) with 1-11 finite months: columns
        ``member, variable, region, year, n_months``.
    """

    annual: xr.DataArray
    incomplete: pd.DataFrame


def variable_kinds(totals: xr.DataArray) -> list[str]:
    """``variable_kind`` per variable ('flux' | 'stock'), from the coord or from the name."""
    if "variable_kind" in totals.coords:
        return [str(k) for k in totals["variable_kind"].values]
    return ["stock" if str(v) in STOCK_VARIABLES else "flux" for v in totals["variable"].values]


def annual_totals(totals: xr.DataArray, months_required: int = 12) -> AnnualResult:
    """Annual sums (fluxes) / means (stocks) of a store's monthly ``totals``.

    Parameters
    ----------
    totals : xr.DataArray (member, variable, region, time)
        Monthly masses in each member's own calendar (Tg of element), positive to the atmosphere.
    months_required : int
        Finite months needed for a complete year.
    """
    for d in ("member", "variable", "region", "time"):
        if d not in totals.dims:
            raise BudgetError(
                f"totals: dimension {d!r} missing; expected (member, variable, region, time), "
                f"got {totals.dims}"
            )
    t = totals.transpose("member", "variable", "region", "time")
    years = (
        pd.DatetimeIndex(t["time"].values).year.to_numpy()
        if np.issubdtype(t["time"].dtype, np.datetime64)
        else np.array([d.year for d in t["time"].values])
    )
    kinds = variable_kinds(t)
    vals = np.asarray(t.values, dtype=np.float64)
    uy = np.unique(years)
    out = np.full(vals.shape[:3] + (uy.size,), np.nan)
    cnt = np.zeros(vals.shape[:3] + (uy.size,), dtype=np.int64)
    for j, kind in enumerate(kinds):
        o, c, _ = annual_kernel(
            vals[:, j], years, "mean" if kind == "stock" else "sum", months_required
        )
        out[:, j], cnt[:, j] = o, c
    coords = {k: v for k, v in t.coords.items() if "time" not in v.dims}
    annual = xr.DataArray(
        out,
        dims=("member", "variable", "region", "year"),
        coords={**coords, "year": uy},
        name="annual",
        attrs={
            "units": "Tg of element per year (fluxes); annual-mean Tg (stocks)",
            "sign": "fluxes positive to the atmosphere",
        },
    )
    idx = np.argwhere((cnt > 0) & (cnt < months_required))
    inc = pd.DataFrame(
        {
            "member": t["member"].values[idx[:, 0]].astype(str),
            "variable": t["variable"].values[idx[:, 1]].astype(str),
            "region": t["region"].values[idx[:, 2]].astype(str),
            "year": uy[idx[:, 3]].astype(int),
            "n_months": cnt[tuple(idx.T)].astype(int),
        }
    )
    return AnnualResult(annual, inc)


@dataclass
class PeriodResult:
    """Per-member period means and their coverage.

    ``means`` (member, variable, region, period); ``coverage`` DataFrame with columns
    ``member, variable, region, period, n_years, first, last, expected`` for every series that has
    data anywhere (n_years = 0: no data inside the period).
    """

    means: xr.DataArray
    coverage: pd.DataFrame


def period_means(
    annual: xr.DataArray, periods: Mapping[str, tuple[int, int | None]] | list[str] | None = None
) -> PeriodResult:
    """Means of complete annual values over each period, per member / variable / region.

    Periods without any data for a series give NaN and a coverage row with ``n_years = 0``;
    partially covered periods use the years available (reported in ``coverage``).
    """
    if periods is None:
        periods = DEFAULT_PERIODS
    if not isinstance(periods, Mapping):
        periods = {p: parse_period(p) for p in periods}
    a = annual.transpose("member", "variable", "region", "year")
    vals = np.asarray(a.values, dtype=np.float64)
    years = np.asarray(a["year"].values)
    has_data = np.isfinite(vals).any(axis=-1)
    means, frames = [], []
    for name, (first, last) in periods.items():
        m, n, f, lst = period_mean_kernel(vals, years, first, last)
        means.append(m)
        idx = np.argwhere(has_data)
        expected = (
            np.full(len(idx), (last - first + 1))
            if last is not None
            else np.maximum(lst[tuple(idx.T)] - first + 1, 0)
        )
        frames.append(
            pd.DataFrame(
                {
                    "member": a["member"].values[idx[:, 0]].astype(str),
                    "variable": a["variable"].values[idx[:, 1]].astype(str),
                    "region": a["region"].values[idx[:, 2]].astype(str),
                    "period": name,
                    "n_years": n[tuple(idx.T)].astype(int),
                    "first": f[tuple(idx.T)].astype(int),
                    "last": lst[tuple(idx.T)].astype(int),
                    "expected": expected.astype(int),
                }
            )
        )
    coords = {k: v for k, v in a.coords.items() if "year" not in v.dims}
    out = xr.DataArray(
        np.stack(means, axis=-1),
        dims=("member", "variable", "region", "period"),
        coords={**coords, "period": list(periods)},
        name="period_mean",
        attrs=dict(annual.attrs),
    )
    cov = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return PeriodResult(out, cov)
