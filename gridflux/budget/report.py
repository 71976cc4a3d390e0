"""One self-contained HTML report of a budget run (``report.html``).

Everything is inline: the figures as SVG (no external file, no script, no network), the tables
as HTML tables. Sections: headline (with the totals that could not be given and why), all items,
members and their traits, exclusions and coverage, Mann-Whitney comparisons, warming-potential
values, figures, and provenance (recipe name and version, store fingerprint, package versions).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import importlib.metadata
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from gridflux.budget.gwp import values_table

PACKAGES = ("gridflux", "numpy", "pandas", "xarray", "zarr", "scipy", "matplotlib", "dask")
CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1300px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.85em}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f0f0f0}
.warn{background:#fff3cd;border:1px solid #e0c060;padding:.5em 1em}
figure{margin:1em 0;border:1px solid #ddd;padding:.5em}
figure svg{max-width:100%;height:auto}
figcaption{font-size:.85em;color:#555}
"""


def _table(df: pd.DataFrame, css_class: str = "") -> str:
    """An HTML table; missing values (NaN, <NA>) as empty cells, numbers to 6 significant digits."""

    def cell(v: object) -> str:
        if v is None or v is pd.NA or (isinstance(v, float) and v != v):
            return ""
        if isinstance(v, (float, np.floating)):
            return f"{float(v):.6g}"
        return str(v)

    shown = df.map(cell) if len(df) else df
    return shown.to_html(index=False, na_rep="", classes=css_class, border=0, escape=True)


def store_fingerprint(path: str | None) -> str:
    """sha256 (first 16 hex digits) of the store's manifest (or of its totals' metadata), so a
    reader can tell which store a report came from."""
    if not path:
        return "-"
    for name in ("manifest.json", "zarr.json", ".zmetadata", "totals/zarr.json"):
        p = os.path.join(path, name)
        if os.path.exists(p):
            with open(p, "rb") as f:
                return f"sha256:{hashlib.sha256(f.read()).hexdigest()[:16]} ({name})"
    return "-"


def package_versions() -> dict[str, str]:
    """Installed versions of the packages the budget depends on."""
    out = {}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def _svg(path: str) -> str:
    with open(path) as f:
        s = f.read()
    i = s.find("<svg")
    return s[i:] if i >= 0 else s


def write_report(run: Any, path: str, files: Mapping[str, str] | None = None) -> str:
    """Write ``report.html`` for ``run`` (figures inlined from ``files``' SVGs); returns path."""
    files = files or {}
    e = html.escape
    title = run.title
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<p>"
        + e(
            f"Inputs: {run.source}; region: {run.region}; metric: {run.metric.label}; interval "
            f"propagation: {run.result.propagation}. Fluxes positive to the atmosphere (lateral "
            "fluxes and stock changes: positive = loss from land)."
        )
        + "</p>",
        '<h2 id="headline">Headline</h2>',
        _table(run.headline, "headline"),
    ]
    if run.blank_totals:
        parts.append('<div class="warn"><b>Totals not given (inputs missing):</b><ul>')
        parts += [f"<li>{e(m['item'])}: {e(m['reason'])}</li>" for m in run.blank_totals]
        parts.append("</ul></div>")
    parts += [
        f'<h2 id="gwp">Warming potentials ({e(run.metric.label)})</h2>',
        _table(values_table(run.metric), "gwp"),
        '<h2 id="budget">All items</h2>',
        _table(run.table.assign(label=[run.recipe.label(i) for i in run.table["item"]]), "budget"),
    ]
    if run.missing:
        parts += [
            '<h2 id="missing">Not computed</h2>',
            _table(pd.DataFrame(run.missing, columns=["item", "gas", "reason"]), "missing"),
        ]
    if run.result.by_design:
        parts += ["<h2>Gases absent by design</h2>", _table(pd.DataFrame(run.result.by_design))]
    if run.store is not None:
        s = run.store
        traits = s.extra.get("member_traits")
        parts += ['<h2 id="members">Members and their use</h2>', _table(s.members, "members")]
        excl = s.members[s.members["status"] != "used"]
        parts += [
            '<h2 id="exclusions">Exclusions, partial coverage, no data</h2>',
            _table(excl) if not excl.empty else "<p>none</p>",
        ]
        if traits is not None:
            parts += [
                '<h2 id="traits">Member traits</h2>',
                _table(traits.reset_index(), "traits"),
            ]
        if not s.incomplete_years.empty:
            parts += [
                "<h2>Incomplete years (excluded)</h2>",
                _table(s.incomplete_years, "incomplete_years"),
            ]
        parts += [
            '<h2 id="comparisons">Mann-Whitney U tests between sub-ensembles</h2>',
            _table(s.comparisons, "comparisons"),
            '<h2 id="coverage">Period coverage per member</h2>',
            _table(s.coverage, "period_coverage"),
        ]
    svgs = [(n, p) for n, p in files.items() if n.endswith(".svg")]
    if svgs:
        parts.append('<h2 id="figures">Figures</h2>')
        for name, p in svgs:
            parts.append(
                f'<figure class="fig" id="fig-{e(os.path.splitext(name)[0])}">{_svg(p)}'
                f"<figcaption>{e(name)} (region {e(run.region)})</figcaption></figure>"
            )
    prov = {
        "recipe": f"{run.recipe.name} version {run.recipe.version or '-'} ({run.recipe.path})",
        "store": run.store_path or run.source,
        "store fingerprint": store_fingerprint(run.store_path),
        "written": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        **{f"package {k}": v for k, v in package_versions().items()},
    }
    parts += [
        '<h2 id="provenance">Provenance</h2>',
        _table(pd.DataFrame({"what": list(prov), "value": list(prov.values())}), "provenance"),
        "</body></html>",
    ]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    return path
