"""Budget figures that match the tables (matplotlib, Agg backend, imported inside each function).

The figures are analogues of Hugelius et al. (2024) Figs. 3-6 and read the same selections as the
tables: the members an input *used* (``members.csv`` status ``used``: exclusions, coverage and
forcing restrictions applied), averaged group-first where the input is, with the input's own
interval method for the bands. What each figure shows is data in the recipe (``figures:``):

* ``seasonal_cycle`` / ``annual_series`` - bottom-up vs top-down per gas (Fig. 3);
* ``component_bars`` - the budget's components per gas (Fig. 4);
* ``integrated_budget`` - model side, data-driven side, their mean, the integrated bottom-up and
  the inversions by period (Fig. 5);
* ``gwp_bars`` - the CO2-eq contributions of each gas and the total (Fig. 6);
* ``map_<gas>_<side>`` - the mean flux of the used members in a north-polar azimuthal
  equidistant projection (drawn on matplotlib's polar axes: radius = 90 - latitude), masked to
  the region with its outline.

Every figure is written as PNG (200 dpi) and SVG; titles name the region. Sign convention as in
the tables: positive = flux to the atmosphere (a land sink is negative).
"""

from __future__ import annotations

import os
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from gridflux.budget.annual import parse_period
from gridflux.budget.components import UNITS
from gridflux.budget.ensemble import Estimate, interval
from gridflux.budget.gwp import Metric, metric_label, resolve_metric
from gridflux.budget.recipes import RecipeResult
from gridflux.errors import BudgetError

GAS_COLORS = {"CO2": "#4d4d4d", "CH4": "#d95f02", "N2O": "#1b9e77", "total": "#7570b3"}
SIDE_COLORS = {"bottom-up": "#1f78b4", "top-down": "#e31a1c"}
SECONDS_PER_YEAR = 365.25 * 86400.0
DPI = 200
#: figure defaults when a recipe has no ``figures:`` key
DEFAULT_FIGURES: dict[str, Any] = {
    "series": {
        "CO2": {"bottom-up": "model_nbp", "top-down": "inversions_full_period"},
        "CH4": {"bottom-up": "wetland_models_ch4", "top-down": "inversions_full_period"},
        "N2O": {"top-down": "inversions_full_period"},
    },
    "components": [],
    "integrated": [],
    "gwp": [],
}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def tick_overlaps(fig: Any) -> list[str]:
    """Pairs of tick labels whose drawn boxes overlap (within an axis, and across the axes of the
    figure, e.g. the 90E of one polar map and the 90W of the next), as ``'a' / 'b'`` strings."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    labels = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            span = (hi - lo) * 1e-9
            labels += [
                t.label1
                for t in axis.get_major_ticks()
                if t.label1.get_visible()
                and t.label1.get_text()
                and lo - span <= t.get_loc() <= hi + span  # ticks outside the view are not drawn
            ]
    boxes = [t.get_window_extent(r) for t in labels]
    out = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if boxes[i].overlaps(boxes[j]):
                out.append(f"{labels[i].get_text()!r} / {labels[j].get_text()!r}")
    return out


def save_figure(fig: Any, path: str, check_overlap: bool = True) -> dict[str, str]:
    """Write ``fig`` as ``<path>.png`` (200 dpi) and ``<path>.svg``; returns ``{filename: path}``.

    With ``check_overlap`` a figure whose tick labels overlap is an error (a layout bug).
    """
    plt = _plt()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    base = os.path.splitext(path)[0]
    try:
        if check_overlap:
            bad = tick_overlaps(fig)
            if bad:
                raise BudgetError(f"{base}: overlapping tick labels {bad[:3]}")
        fig.savefig(base + ".png", dpi=DPI, bbox_inches="tight")
        fig.savefig(base + ".svg", bbox_inches="tight")
    finally:
        plt.close(fig)
    return {
        os.path.basename(base) + ".png": base + ".png",
        os.path.basename(base) + ".svg": base + ".svg",
    }


def _nan_est() -> Estimate:
    return Estimate(np.nan, np.nan, np.nan)


def _wrap(s: str, width: int = 34) -> str:
    return "\n".join(textwrap.wrap(s, width)) or s


def _hbar(ax: Any, labels: list[str], est: list[Estimate], color: Any, unit: str) -> None:
    y = np.arange(len(labels))[::-1]
    means = np.array([e.mean for e in est], dtype=float)
    lo = np.array([e.lo for e in est], dtype=float)
    hi = np.array([e.hi for e in est], dtype=float)
    ax.barh(y, np.nan_to_num(means), color=color, alpha=0.75, height=0.6)
    ok = np.isfinite(means)
    ax.errorbar(
        means[ok],
        y[ok],
        xerr=[means[ok] - lo[ok], hi[ok] - means[ok]],
        fmt="none",
        ecolor="black",
        capsize=3,
        lw=1,
    )
    for yy, m in zip(y, means, strict=True):
        if not np.isfinite(m):
            ax.text(0, yy, " not given", va="center", fontsize=7, color="0.4")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel(unit, fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.xaxis.get_major_locator().set_params(nbins=5)
    ax.grid(axis="x", alpha=0.3)


def figure_spec(run: Any) -> dict[str, Any]:
    """The recipe's ``figures:`` (with defaults)."""
    spec = dict(DEFAULT_FIGURES)
    spec.update(getattr(run.recipe, "figures", None) or {})
    return spec


def _items_panels(
    result: RecipeResult,
    items: Sequence[str],
    gases: Sequence[str],
    title: str,
    path: str,
) -> dict[str, str]:
    plt = _plt()
    rows = {g: [i for i in items if g in result.items.get(i, {})] for g in gases}
    gases = [g for g in gases if rows[g]]
    if not gases:
        gases, rows = list(gases[:1]) or ["CO2"], {"CO2": []}
    n = max(len(v) for v in rows.values()) or 1
    lines = max((_wrap(result.recipe.label(i)).count("\n") + 1 for i in items), default=1)
    fig, axes = plt.subplots(
        1, len(gases), figsize=(5.6 * len(gases), 1.2 + (0.14 * lines + 0.16) * n), squeeze=False
    )
    for ax, g in zip(axes.flat, gases, strict=True):
        its = rows[g]
        _hbar(
            ax,
            [_wrap(result.recipe.label(i)) for i in its],
            [result.items[i][g] for i in its],
            GAS_COLORS.get(g, "#666666"),
            UNITS[g],
        )
        ax.set_title(g)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_component_bars(run: Any, path: str) -> dict[str, str]:
    """Fig. 4 analogue: every component of the budget per gas, mean and 95 % interval."""
    items = figure_spec(run)["components"] or [
        n for n in run.recipe.inputs if "component" in run.recipe.inputs[n]
    ]
    return _items_panels(
        run.result,
        items,
        ("CO2", "CH4", "N2O"),
        f"Budget components, region {run.region!r} (positive = to the atmosphere; 95 % intervals)",
        path,
    )


def plot_integrated_budget(run: Any, path: str) -> dict[str, str]:
    """Fig. 5 analogue: model side, data-driven side, their mean, the integrated bottom-up budget
    and the inversions by period, per gas."""
    items = figure_spec(run)["integrated"] or ["bottom_up", "top_down"]
    return _items_panels(
        run.result,
        items,
        ("CO2", "CH4", "N2O"),
        f"Integrated budget, bottom-up vs top-down, region {run.region!r} (95 % intervals)",
        path,
    )


def plot_gwp_bars(run: Any, path: str, metric: Metric | str | None = None) -> dict[str, str]:
    """Fig. 6 analogue: per headline item the CO2-eq of each gas and the total (with interval);
    a total that cannot be given (a gas missing) is marked ``not given``."""
    from gridflux.budget.recipes import co2eq_estimate
    from gridflux.budget.tables import headline_total

    plt = _plt()
    m = resolve_metric(metric or run.metric)
    items = figure_spec(run)["gwp"] or list(run.recipe.headline)
    items = [i for i in items if any(g in run.result.items.get(i, {}) for g in UNITS)]
    items = [i for i in items if any(g in run.result.items[i] for g in ("CO2", "CH4", "N2O"))]
    fig, ax = plt.subplots(figsize=(9.5, 1.4 + 0.9 * max(len(items), 1)))
    y0 = np.arange(len(items))[::-1] * 1.0
    keys = ("CO2", "CH4", "N2O", "total")
    h = 0.19
    for k, key in enumerate(keys):
        est = []
        for i in items:
            if key == "total":
                t, _ = headline_total(run.result, i, m)
            else:
                t = co2eq_estimate(run.result, i, key, m)
            est.append(t or _nan_est())
        yy = y0 + (1.5 - k) * h
        means = np.array([e.mean for e in est], dtype=float)
        ax.barh(yy, np.nan_to_num(means), height=h, color=GAS_COLORS[key], alpha=0.8, label=key)
        ok = np.isfinite(means)
        lo = np.array([e.lo for e in est], dtype=float)
        hi = np.array([e.hi for e in est], dtype=float)
        ax.errorbar(
            means[ok],
            yy[ok],
            xerr=[means[ok] - lo[ok], hi[ok] - means[ok]],
            fmt="none",
            ecolor="black",
            capsize=2,
            lw=0.8,
        )
        if key == "total":
            for y_, mm in zip(yy, means, strict=True):
                if not np.isfinite(mm):
                    ax.text(0, y_, " total not given (a gas is missing)", va="center", fontsize=7)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y0)
    ax.set_yticklabels([_wrap(run.recipe.label(i), 30) for i in items], fontsize=8)
    ax.set_xlabel(metric_label(m), fontsize=8)
    ax.xaxis.get_major_locator().set_params(nbins=6)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(
        f"CO2-C equivalents ({m.label}), region {run.region!r}; bars = gases, total with 95 % "
        f"interval ({run.result.propagation})",
        fontsize=9,
    )
    fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- series (Fig. 3)
def series_selection(run: Any, input_name: str, gas: str) -> dict[str, Any] | None:
    """What a figure must average for one input and gas, as the table did: the variable, the
    period, the used members and their groups, group-first or not, and the interval method."""
    if run.store is None or input_name not in run.recipe.inputs:
        return None
    spec = run.recipe.inputs[input_name].get("store")
    if not spec:
        return None
    s = spec if "variable" in spec else spec.get(gas)
    if not s or ("gas" in s and s["gas"] != gas):
        return None
    mem = run.store.members
    used = mem[(mem["input"] == input_name) & (mem["gas"] == gas) & (mem["status"] == "used")]
    if used.empty:
        return None
    ispec = dict(run.recipe.interval)
    ispec.update(s.get("interval") or {})
    method = str(ispec.get("method", "percentile"))
    est = run.result.items.get(input_name, {}).get(gas)
    return {
        "variable": s["variable"],
        "period": s["period"],
        "period_label": est.period if est is not None and est.period else s["period"],
        "members": list(used["member"]),
        "groups": dict(zip(used["member"], used["group"], strict=True)),
        "group_first": bool(s.get("group_first")),
        "method": "percentile" if method == "quantile-layers" else method,
        "label": run.recipe.label(input_name),
    }


def _group_rows(values: np.ndarray, members: list[str], sel: Mapping[str, Any]) -> np.ndarray:
    """(member, x) -> (group, x) means when the selection averages group-first."""
    if not sel["group_first"]:
        return values
    labels = [sel["groups"].get(m) or f"member:{m}" for m in members]
    out = []
    for g in dict.fromkeys(labels):
        rows = values[[lab == g for lab in labels]]
        out.append(_nanmean(rows, axis=0))
    return np.array(out)


def _max_n_locator(n: int) -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(n)


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmean`` that gives NaN for all-NaN slices without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def _band(values: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = values.shape[1]
    mean, lo, hi = (np.full(n, np.nan) for _ in range(3))
    for j in range(n):
        col = values[:, j]
        col = col[np.isfinite(col)]
        if col.size:
            mean[j] = col.mean()
            lo[j], hi[j] = interval(col, method)
    return mean, lo, hi


def _years_in(period: str, years: np.ndarray) -> np.ndarray:
    first, last = parse_period(period)
    return (years >= first) & (years <= (last if last is not None else years.max()))


def seasonal_values(run: Any, sel: Mapping[str, Any]) -> np.ndarray:
    """(member or group, 12) mean monthly totals (Tg per month) over the period's years."""
    from gridflux.budget.derived import derive

    t = run.totals.sel(region=run.region)
    t = t.sel(member=[m for m in sel["members"] if m in t["member"].values])
    if sel["variable"] in ("nep", "nbp"):  # as the tables: the formula, stored values as fill
        t = derive(t, ("nep", "nbp"))
    da = t.sel(variable=sel["variable"])
    years = np.array([d.year for d in pd.to_datetime(_as_datetimes(da["time"].values))])
    da = da.isel(time=np.flatnonzero(_years_in(sel["period"], years)))
    months = np.array([d.month for d in pd.to_datetime(_as_datetimes(da["time"].values))])
    vals = np.asarray(da.transpose("member", "time").values, dtype=float)
    clim = np.full((vals.shape[0], 12), np.nan)
    for k in range(12):
        cols = vals[:, months == k + 1]
        if cols.size:
            clim[:, k] = _nanmean(cols, axis=1)
    return _group_rows(clim, list(da["member"].values.astype(str)), sel)


def _as_datetimes(values: np.ndarray) -> list[Any]:
    if np.issubdtype(np.asarray(values).dtype, np.datetime64):
        return list(pd.DatetimeIndex(values))
    return [pd.Timestamp(v.year, v.month, 1) for v in values]


def annual_values(run: Any, sel: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(years, (member or group, year) annual totals in Tg/yr) within the period."""
    a = run.store.annual
    a = a.sel(member=[m for m in sel["members"] if m in a["member"].values])
    da = a.sel(variable=sel["variable"]).transpose("member", "year")
    years = np.asarray(da["year"].values)
    keep = _years_in(sel["period"], years)
    vals = np.asarray(da.values, dtype=float)[:, keep]
    return years[keep], _group_rows(vals, list(da["member"].values.astype(str)), sel)


def _series_figure(run: Any, path: str, kind: str) -> dict[str, str]:
    plt = _plt()
    spec = figure_spec(run)["series"]
    gases = [g for g in ("CO2", "CH4", "N2O") if g in spec]
    fig, axes = plt.subplots(1, len(gases), figsize=(5.0 * len(gases), 3.8), squeeze=False)
    for ax, gas in zip(axes.flat, gases, strict=True):
        drawn = 0
        for side, name in spec[gas].items():
            sel = series_selection(run, name, gas)
            if sel is None:
                continue
            if kind == "seasonal":
                x = np.arange(1, 13)
                vals = seasonal_values(run, sel)
            else:
                x, vals = annual_values(run, sel)
            if vals.size == 0 or not np.isfinite(vals).any():
                continue
            mean, lo, hi = _band(vals, sel["method"])
            c = SIDE_COLORS.get(side, "0.3")
            unit = "groups" if sel["group_first"] else "members"
            ax.fill_between(x, lo, hi, color=c, alpha=0.2, lw=0)
            ax.plot(
                x,
                mean,
                color=c,
                lw=2,
                marker="o",
                ms=3,
                label=f"{side}: {sel['variable']}, n={vals.shape[0]} {unit}",
            )
            drawn += 1
        if not drawn:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.axhline(0, color="black", lw=0.6)
        per = "month" if kind == "seasonal" else "yr"
        ax.set_ylabel(UNITS[gas].replace("/yr", f"/{per}"), fontsize=8)
        ax.set_title(gas, fontsize=10)
        ax.tick_params(labelsize=8)
        if kind == "seasonal":
            ax.set_xticks(range(1, 13))
            ax.set_xticklabels("JFMAMJJASOND")
        else:
            ax.xaxis.get_major_locator().set_params(integer=True, nbins=5)
        if drawn:
            ax.legend(fontsize=7, loc="best")
    what = "Mean seasonal cycle" if kind == "seasonal" else "Annual totals"
    fig.suptitle(
        f"{what}, bottom-up vs top-down, region {run.region!r}: ensemble mean and 95 % band of "
        "the members the tables use",
        fontsize=10,
    )
    fig.tight_layout()
    return save_figure(fig, path)


def plot_seasonal_cycle(run: Any, path: str) -> dict[str, str]:
    """Fig. 3 analogue: mean seasonal cycle (Tg per month) bottom-up vs top-down per gas."""
    return _series_figure(run, path, "seasonal")


def plot_annual_series(run: Any, path: str) -> dict[str, str]:
    """Annual totals (Tg/yr) bottom-up vs top-down per gas, same members as the tables."""
    return _series_figure(run, path, "annual")


# ----------------------------------------------------------------------------- maps
def polar_map(
    ax: Any,
    lat: np.ndarray,
    lon: np.ndarray,
    values: np.ndarray,
    mask: np.ndarray | None,
    vmax: float,
    south: float,
) -> Any:
    """Draw ``values`` (lat, lon) on a polar axes as a north-polar azimuthal equidistant map:
    radius = 90 - latitude (degrees), angle = longitude (0 deg E at the bottom, 90 deg E to the
    right). Cells outside ``mask > 0`` are blank; the mask's outline (its 0.5 contour) is drawn."""
    dlat = np.median(np.diff(lat)) if lat.size > 1 else 0.5
    dlon = np.median(np.diff(lon)) if lon.size > 1 else 0.5
    lat_e = np.concatenate([lat - dlat / 2, [lat[-1] + dlat / 2]])
    lon_e = np.concatenate([lon - dlon / 2, [lon[-1] + dlon / 2]])
    shown = np.where(mask > 0, values, np.nan) if mask is not None else values
    im = ax.pcolormesh(
        np.radians(lon_e),
        90.0 - lat_e,
        np.ma.masked_invalid(shown),
        cmap="RdBu_r",
        vmin=-vmax,
        vmax=vmax,
        shading="flat",
        rasterized=True,  # the SVG embeds the mesh as an image (small, fast); vectors stay vectors
    )
    if mask is not None and np.any(mask > 0):
        ax.contour(
            np.radians(lon),
            90.0 - lat,
            (mask > 0).astype(float),
            levels=[0.5],
            colors="black",
            linewidths=0.8,
        )
    ax.set_theta_zero_location("S")
    ax.set_theta_direction(1)
    ax.set_rlim(0, 90.0 - south)
    rt = [r for r in (10, 20, 30, 40) if r < 90.0 - south]
    ax.set_rticks(rt)
    ax.set_yticklabels([f"{90 - r:.0f}N" for r in rt], fontsize=6)
    ax.set_xticks(np.radians([0, 90, 180, 270]))
    ax.set_xticklabels(["0E", "90E", "180", "90W"], fontsize=7)
    ax.set_facecolor("0.93")
    return im


def plot_maps(run: Any, out_dir: str) -> dict[str, str]:
    """One polar map per gas: bottom-up and top-down side by side, each the mean flux of the used
    members (group-first where the table is) over the input's period, g m-2 yr-1, masked to the
    region with its outline. Gases without a cube of the input's variable are skipped."""
    if not run.store_path:
        return {}
    import zarr

    try:
        g = zarr.open_group(run.store_path, mode="r")
        cube_vars = set(g["cubes"].group_keys()) if "cubes" in g else set()
    except Exception:  # noqa: BLE001 - a store without readable cubes simply gets no map
        return {}
    if not cube_vars:
        return {}
    from gridflux.pipeline.store import open_store

    grid = open_store(run.store_path, group="grid") if "grid" in g else None
    plt = _plt()
    files: dict[str, str] = {}
    for gas, sides in figure_spec(run)["series"].items():
        panels = []
        for side, name in sides.items():
            sel = series_selection(run, name, gas)
            if sel is None or sel["variable"] not in cube_vars:
                continue
            cube = open_store(run.store_path, group=f"cubes/{sel['variable']}")[sel["variable"]]
            members = [m for m in sel["members"] if m in cube["member"].values.astype(str)]
            if not members:
                continue
            c = cube.sel(member=members)
            years = np.array([d.year for d in _as_datetimes(c["time"].values)])
            c = c.isel(time=np.flatnonzero(_years_in(sel["period"], years)))
            per_member = np.asarray(c.mean("time", skipna=True).values, dtype=float)
            vals = _group_rows(per_member.reshape(len(members), -1), members, sel)
            field = _nanmean(vals, axis=0).reshape(per_member.shape[1:])
            field = field * 1000.0 * SECONDS_PER_YEAR  # kg m-2 s-1 -> g m-2 yr-1
            mask = None
            if grid is not None and run.region in grid["region"].values.astype(str):
                mk = grid["mask"].sel(region=run.region)
                mask = np.asarray(mk.sel(lat=c["lat"], lon=c["lon"]).values, dtype=float)
            if not np.isfinite(field).any():
                continue  # the cube holds no value of these members (e.g. a derived variable)
            panels.append((side, sel, field, mask, c))
        if not panels:
            continue
        fin = np.concatenate(
            [
                np.abs(p[2][np.isfinite(p[2]) & ((p[3] > 0) if p[3] is not None else True)])
                for p in panels
            ]
        )
        vmax = float(np.percentile(fin, 98)) if fin.size else 1.0
        vmax = vmax if vmax > 0 else 1.0
        fig, axes = plt.subplots(
            1,
            len(panels),
            figsize=(5.2 * len(panels), 5.2),
            subplot_kw={"projection": "polar"},
            squeeze=False,
        )
        im = None
        for ax, (side, sel, field, mask, c) in zip(axes.flat, panels, strict=True):
            lat = np.asarray(c["lat"].values, dtype=float)
            lon = np.asarray(c["lon"].values, dtype=float)
            south = float(min(lat.min(), 40.0))
            im = polar_map(ax, lat, lon, field, mask, vmax, south)
            unit = "groups" if sel["group_first"] else "members"
            n = (
                len(set(sel["groups"].get(m) or m for m in sel["members"]))
                if sel["group_first"]
                else len(sel["members"])
            )
            ax.set_title(
                f"{side}: {sel['variable']} ({n} {unit}, {sel['period_label']})", fontsize=9, pad=14
            )
        element = "N" if gas == "N2O" else "C"
        cb = fig.colorbar(
            im, ax=list(axes.flat), shrink=0.6, pad=0.08, orientation="horizontal", aspect=40
        )
        cb.ax.xaxis.set_major_locator(_max_n_locator(5))
        cb.set_label(f"g {element} m-2 yr-1 (positive to the atmosphere)", fontsize=8)
        cb.ax.tick_params(labelsize=7)
        fig.suptitle(
            f"{gas}: mean flux, region {run.region!r} (outline = region mask)", fontsize=10, y=1.02
        )
        files.update(save_figure(fig, os.path.join(out_dir, f"map_{gas}.png")))
    return files


def budget_figures(run: Any, out_dir: str) -> dict[str, str]:
    """Every figure of a budget run (PNG + SVG each); returns ``{filename: path}``."""
    files: dict[str, str] = {}
    files.update(plot_gwp_bars(run, os.path.join(out_dir, "gwp_bars.png")))
    files.update(plot_component_bars(run, os.path.join(out_dir, "component_bars.png")))
    files.update(plot_integrated_budget(run, os.path.join(out_dir, "integrated_budget.png")))
    if run.store is not None and run.totals is not None:
        files.update(plot_seasonal_cycle(run, os.path.join(out_dir, "seasonal_cycle.png")))
        files.update(plot_annual_series(run, os.path.join(out_dir, "annual_series.png")))
        files.update(plot_maps(run, out_dir))
    return files


def plot_flux_map(cube: xr.DataArray, path: str, title: str | None = None) -> dict[str, str]:
    """A polar map of the mean of ``cube`` (member, time, lat, lon; kg m-2 s-1) in g m-2 yr-1,
    over all its members and times (no region mask)."""
    plt = _plt()
    field = np.asarray(cube.mean(("member", "time"), skipna=True).values, dtype=float)
    field = field * 1000.0 * SECONDS_PER_YEAR
    lat = np.asarray(cube["lat"].values, dtype=float)
    lon = np.asarray(cube["lon"].values, dtype=float)
    fin = np.abs(field[np.isfinite(field)])
    vmax = float(np.percentile(fin, 98)) if fin.size else 1.0
    fig, ax = plt.subplots(figsize=(5.5, 5.5), subplot_kw={"projection": "polar"})
    im = polar_map(ax, lat, lon, field, None, vmax or 1.0, float(min(lat.min(), 40.0)))
    fig.colorbar(im, ax=ax, shrink=0.7, pad=0.08)
    ax.set_title(title or f"{cube.name}: mean over members and time", fontsize=9, pad=14)
    return save_figure(fig, path)
