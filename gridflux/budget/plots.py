"""Budget figures (matplotlib with the Agg backend, imported inside each function).

Every function writes one PNG and returns its path. Sign convention as in the tables: positive =
flux to the atmosphere (a land sink is negative).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from gridflux.budget.components import UNITS
from gridflux.budget.gwp import co2eq_factor, metric_label, normalize_metric
from gridflux.budget.recipes import RecipeResult, combine
from gridflux.fields.units import VARIABLES

GAS_COLORS = {"CO2": "#4d4d4d", "CH4": "#d95f02", "N2O": "#1b9e77", "total": "#7570b3"}
SECONDS_PER_YEAR = 365.25 * 86400.0


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def _hbar(ax: Any, labels: list[str], est: list[Any], color: str, unit: str) -> None:
    y = np.arange(len(labels))[::-1]
    means = np.array([e.mean for e in est])
    lo = np.array([e.lo for e in est])
    hi = np.array([e.hi for e in est])
    ax.barh(y, means, color=color, alpha=0.75, height=0.6)
    ax.errorbar(
        means, y, xerr=[means - lo, hi - means], fmt="none", ecolor="black", capsize=3, lw=1
    )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.set_xlabel(unit)
    ax.grid(axis="x", alpha=0.3)


BAR_ITEMS = (
    "bottom_up",
    "top_down",
    "anthropogenic",
    "bottom_up_plus_anthropogenic",
    "top_down_plus_anthropogenic",
)
SHORT = {
    "bottom_up": "Bottom-up natural",
    "top_down": "Top-down natural",
    "anthropogenic": "Anthropogenic",
    "bottom_up_plus_anthropogenic": "Bottom-up + anthrop.",
    "top_down_plus_anthropogenic": "Top-down + anthrop.",
    "bottom_up_vegetated": "Vegetated (mean)",
    "inland_waters": "Inland waters",
}


def plot_budget_bars(
    result: RecipeResult, path: str, metric: str = "GWP100", items: Sequence[str] = BAR_ITEMS
) -> str:
    """Paper Fig. 6 style: one panel per gas (native units) and one in CO2-C eq, bars = means,
    whiskers = 95 % intervals."""
    plt = _plt()
    metric = normalize_metric(metric)
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2), sharey=True)
    for ax, gas in zip(axes[:3], ("CO2", "CH4", "N2O"), strict=False):
        rows = [(SHORT.get(i, i), result.items.get(i, {}).get(gas)) for i in items]
        labels = [r[0] for r in rows]
        est = [r[1] if r[1] is not None else _nan_est() for r in rows]
        _hbar(ax, labels, est, GAS_COLORS[gas], UNITS[gas])
        ax.set_title(gas)
    tot = []
    for i in items:
        it = result.items.get(i, {})
        eq = [(it[g], co2eq_factor(g, metric)) for g in ("CO2", "CH4", "N2O") if g in it]
        tot.append(combine(eq, "linear") if eq else _nan_est())
    _hbar(axes[3], [SHORT.get(i, i) for i in items], tot, GAS_COLORS["total"], metric_label(metric))
    axes[3].set_title(f"All gases, CO2-C eq ({metric})")
    fig.suptitle(
        f"{result.recipe.title}: budget with 95 % intervals (positive = source to the atmosphere)"
    )
    return _save(fig, path)


def _nan_est():
    from gridflux.budget.ensemble import Estimate

    return Estimate(np.nan, np.nan, np.nan)


def plot_bottom_up_vs_top_down(
    result: RecipeResult,
    path: str,
    decades: Sequence[str] = (
        "inversions_first_decade",
        "inversions_second_decade",
        "inversions_full_period",
    ),
) -> str:
    """Per gas: the bottom-up natural budget beside the inversions of each decade (and full period)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, gas in zip(axes, ("CO2", "CH4", "N2O"), strict=False):
        labels, est, colors = [], [], []
        bu = result.items.get("bottom_up", {}).get(gas)
        if bu is not None:
            labels.append("bottom-up\n(integrated)")
            est.append(bu)
            colors.append("#1f78b4")
        for d in decades:
            e = result.items.get(d, {}).get(gas)
            if e is not None:
                labels.append(f"top-down\n{e.period or d}")
                est.append(e)
                colors.append("#e31a1c")
        x = np.arange(len(est))
        if est:
            m = np.array([e.mean for e in est])
            ax.bar(x, m, color=colors, alpha=0.75)
            ax.errorbar(
                x,
                m,
                yerr=[m - np.array([e.lo for e in est]), np.array([e.hi for e in est]) - m],
                fmt="none",
                ecolor="black",
                capsize=4,
            )
            ax.set_xticks(x)
            ax.set_xticklabels(labels, fontsize=8)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel(UNITS[gas])
        ax.set_title(gas)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Bottom-up vs top-down by gas and period (95 % intervals)")
    return _save(fig, path)


#: ensemble -> variable shown in the time-series / seasonal-cycle figures (first one present)
SERIES_VARIABLES = ("nbp", "nep", "fco2", "fch4", "fn2o")


def _ensemble_variable(da: xr.DataArray, members: pd.Index) -> str | None:
    """The first of :data:`SERIES_VARIABLES` that ``members`` of ``da`` have values of."""
    sub = da.sel(member=members)
    for v in SERIES_VARIABLES:
        if (
            v in [str(x) for x in sub["variable"].values]
            and np.isfinite(sub.sel(variable=v).values).any()
        ):
            return v
    return None


def _ensembles(da: xr.DataArray, max_panels: int) -> list[str]:
    """The ensembles of ``da``'s members in order of appearance, at most ``max_panels``."""
    return list(dict.fromkeys(str(e) for e in da["ensemble"].values))[:max_panels]


def _panel_grid(plt, n_panels: int):
    """A figure of ``n_panels`` small panels, 4 per row; the unused ones hidden."""
    ncol = 4
    nrow = max(1, int(np.ceil(n_panels / ncol)))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.0 * nrow), squeeze=False)
    for ax in list(axes.flat)[n_panels:]:
        ax.set_visible(False)
    return fig, axes


def _mean_and_band(vals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per column of ``vals`` (member, x): mean, 2.5 and 97.5 % of the members (NaN where no member
    has a value), and where some member has one."""
    ok = np.isfinite(vals).any(axis=0)
    mean, lo, hi = (np.full(vals.shape[1], np.nan) for _ in range(3))
    if ok.any():
        mean[ok] = np.nanmean(vals[:, ok], axis=0)
        lo[ok], hi[ok] = np.nanpercentile(vals[:, ok], [2.5, 97.5], axis=0)
    return mean, lo, hi, ok


def plot_annual_series(annual: xr.DataArray, path: str, max_panels: int = 12) -> str:
    """Annual totals per ensemble: ensemble mean and 2.5-97.5 % member spread (band), members thin.

    ``annual`` is (member, variable, year) for one region, with an ``ensemble`` member coordinate.
    """
    plt = _plt()
    ens = _ensembles(annual, max_panels)
    fig, axes = _panel_grid(plt, len(ens))
    for ax, e in zip(axes.flat, ens, strict=False):
        members = annual["member"].values[annual["ensemble"].values.astype(str) == e]
        var = _ensemble_variable(annual, members)
        if var is None:
            ax.set_visible(False)
            continue
        d = annual.sel(member=members, variable=var).transpose("member", "year")
        yrs = d["year"].values
        vals = np.asarray(d.values, dtype=float)
        for row in vals:
            ax.plot(yrs, row, color="0.7", lw=0.6)
        mean, lo, hi, _ = _mean_and_band(vals)
        ax.fill_between(yrs, lo, hi, color="#1f78b4", alpha=0.25, label="2.5-97.5 %")
        ax.plot(yrs, mean, color="#1f78b4", lw=2, label="mean")
        ax.set_title(f"{e}: {var} (n={len(members)})", fontsize=9)
        ax.set_ylabel(UNITS[VARIABLES[var].gas], fontsize=8)
        ax.axhline(0, color="black", lw=0.6)
        ax.tick_params(labelsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes.flat[0].legend(fontsize=7, loc="best")
    fig.suptitle("Annual totals per ensemble (positive = to the atmosphere)")
    fig.tight_layout()
    return _save(fig, path)


def plot_seasonal_cycle(totals: xr.DataArray, path: str, region: str, max_panels: int = 12) -> str:
    """Mean seasonal cycle per ensemble: monthly totals (Tg per month) averaged over years, then the
    ensemble mean with the 2.5-97.5 % member spread."""
    plt = _plt()
    from gridflux.budget.derived import derive

    t = totals.sel(region=region)
    clim = t.groupby("time.month").mean("time")  # (member, variable, month), Tg per month
    clim = derive(clim, ("nep", "nbp"))
    ens = _ensembles(clim, max_panels)
    fig, axes = _panel_grid(plt, len(ens))
    for ax, e in zip(axes.flat, ens, strict=False):
        members = clim["member"].values[clim["ensemble"].values.astype(str) == e]
        var = _ensemble_variable(clim, members)
        if var is None:
            ax.set_visible(False)
            continue
        d = np.asarray(
            clim.sel(member=members, variable=var).transpose("member", "month").values, dtype=float
        )
        mo = clim["month"].values
        mean, lo, hi, ok = _mean_and_band(d)
        if ok.any():
            ax.fill_between(mo, lo, hi, color="#33a02c", alpha=0.25)
        ax.plot(mo, mean, color="#33a02c", lw=2, marker="o", ms=3)
        ax.set_title(f"{e}: {var} (n={len(members)})", fontsize=9)
        ax.set_ylabel(UNITS[VARIABLES[var].gas].replace("/yr", "/month"), fontsize=8)
        ax.set_xticks(range(1, 13))
        ax.set_xticklabels("JFMAMJJASOND", fontsize=8)
        ax.axhline(0, color="black", lw=0.6)
        ax.tick_params(labelsize=8)
    fig.suptitle(
        f"Mean seasonal cycle per ensemble, region {region!r} (mean and 2.5-97.5 % of members)"
    )
    fig.tight_layout()
    return _save(fig, path)


def plot_flux_map(cube: xr.DataArray, path: str, title: str | None = None) -> str:
    """Map of the mean flux over members and time from a cube (member, time, lat, lon) in
    kg m-2 s-1 of element, shown in g m-2 yr-1 (positive to the atmosphere)."""
    plt = _plt()
    mean = cube.mean(("member", "time"), skipna=True) * 1000.0 * SECONDS_PER_YEAR  # g m-2 yr-1
    vals = np.asarray(mean.transpose("lat", "lon").values, dtype=float)
    lat = np.asarray(cube["lat"].values, dtype=float)
    lon = np.asarray(cube["lon"].values, dtype=float)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.set_facecolor("0.85")  # grey = outside the region / no data
    finite = vals[np.isfinite(vals)]
    vmax = float(np.nanpercentile(np.abs(finite), 98)) if finite.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    im = ax.pcolormesh(
        lon, lat, np.ma.masked_invalid(vals), cmap="RdBu_r", vmin=-vmax, vmax=vmax, shading="auto"
    )
    cb = fig.colorbar(im, ax=ax, shrink=0.85)
    element = "N" if str(cube.name) == "fn2o" else "C"
    cb.set_label(f"g {element} m-2 yr-1 (positive to the atmosphere)")
    ax.set_xlabel("longitude (deg E)")
    ax.set_ylabel("latitude (deg N)")
    ax.set_title(title or f"{cube.name}: mean over members and time")
    return _save(fig, path)
