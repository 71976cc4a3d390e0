"""Tidy exports of a store (read-only)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd


def totals_table(store: str | os.PathLike, storage_options: dict | None = None) -> pd.DataFrame:
    """Tidy statistics: ``source_id, variable, region, time (YYYY-MM, or YYYY-MM-DD for daily
    series), statistic, value, unit, protocol, frequency (month or day)`` without NaN rows.

    ``source_id`` is the member key (ensemble.source.experiment.member), unique per series;
    ``statistic`` is ``total`` or ``mean``; ``value`` is Tg of the element in the month (fluxes:
    unit ``Tg C``, ``Tg CH4-C``, ``Tg N2O-N``), Tg at the month (stocks) or the region mean in
    the variable's unit (``K``). Stores written before statistics existed: every variable a
    total, units as stored. ``protocol`` the series' protocol (``regrid-data`` or
    ``regrid-mask``, from the manifest; "" for a store written before protocols were kept).
    The daily series of the store's ``daily/`` group follow the monthly rows
    (:func:`gridflux.pipeline.daily.daily_table`: values per day, Tg of the element in the day
    for fluxes).
    """
    from gridflux.fields.timeaxis import month_labels
    from gridflux.pipeline.daily import daily_table
    from gridflux.pipeline.store import Store, open_store

    daily = daily_table(store, storage_options)
    ds = open_store(store, storage_options)
    if "totals" not in ds:  # a store of daily series only
        return daily
    tot = ds["totals"].load()
    df = tot.to_dataframe(name="value").reset_index()
    df = df[np.isfinite(df["value"])]
    names = [str(v) for v in ds["variable"].values]
    units = dict(zip(names, map(str, ds["variable_units"].values), strict=True))
    stats = (
        dict(zip(names, map(str, ds["variable_statistic"].values), strict=True))
        if "variable_statistic" in ds.coords
        else dict.fromkeys(names, "total")
    )
    series = Store(os.fspath(store), storage_options).read_manifest().get("series", {})
    by_member = (
        dict(zip(ds["member"].values, ds["protocol"].values, strict=True))
        if "protocol" in ds.coords
        else {}
    )
    protocols = [  # each series' own (the manifest), else its member's (the coordinate)
        series.get(f"{m}/{v}", {}).get("protocol") or by_member.get(m, "")
        for m, v in zip(df["member"], df["variable"], strict=True)
    ]
    out = pd.DataFrame(
        {
            "source_id": df["member"].astype(str),
            "variable": df["variable"].astype(str),
            "region": df["region"].astype(str),
            "time": month_labels(df["time"].to_numpy()),
            "statistic": df["variable"].astype(str).map(stats),
            "value": df["value"].astype(float),
            "unit": df["variable"].astype(str).map(units),
            "protocol": np.asarray(protocols, dtype=str),
            "frequency": "month",
        }
    )
    if len(daily):
        out = pd.concat([out, daily], ignore_index=True)
    return out.reset_index(drop=True)
