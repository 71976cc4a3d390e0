"""Tidy exports of a store (read-only)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd


def totals_table(store: str | os.PathLike, storage_options: dict | None = None) -> pd.DataFrame:
    """Tidy totals: ``source_id, variable, region, time (YYYY-MM), value, unit, protocol`` without
    NaN rows.

    ``source_id`` is the member key (ensemble.source.experiment.member), unique per series;
    ``value`` is Tg of element per month (fluxes) or Tg (stocks); ``protocol`` the series'
    protocol (``regrid-data`` or ``regrid-mask``, from the manifest; "" for a store written
    before protocols were kept).
    """
    from gridflux.pipeline.store import Store, open_store

    ds = open_store(store, storage_options)
    tot = ds["totals"].load()
    df = tot.to_dataframe(name="value").reset_index()
    df = df[np.isfinite(df["value"])]
    units = dict(zip(ds["variable"].values, ds["variable_units"].values, strict=True))
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
            "time": pd.to_datetime(df["time"]).dt.strftime("%Y-%m"),
            "value": df["value"].astype(float),
            "unit": df["variable"].map(units).astype(str),
            "protocol": np.asarray(protocols, dtype=str),
        }
    )
    return out.reset_index(drop=True)
