"""The paper's printed numbers and the tolerance each printed cell deserves.

A cell printed as ``597`` is known to +-0.5, one printed as ``0.54`` to +-0.005: the tolerance of
a reproduced cell is half a unit of its last printed digit plus the rounding its inputs carry
through the recipe: ``sum_i |w_i f_i| * halfunit(input_i)`` over the inputs it is a linear
combination of (``w_i`` the recipe weight, ``f_i`` the CO2-eq factor; the bound of an input
that enters a lower bound is the input's lower bound, or its upper bound when ``w_i < 0``).
Input precision is read from the component tables as written (trailing zeros dropped: ``12.0``
counts as printed ``12``).
"""

from __future__ import annotations

import functools
import glob
import os

import pandas as pd

from gridflux.budget.components import COMPONENT_DIR, PAPER_ENSEMBLES
from gridflux.budget.gwp import co2eq_factor, resolve_metric
from gridflux.budget.recipes import input_origin

DATA = os.path.join(os.path.dirname(__file__), "data")


def halfunit(printed: str | float) -> float:
    """Half a unit of the last printed digit (``'597'`` -> 0.5, ``'0.54'`` -> 0.005)."""
    s = str(printed).strip().lstrip("-")
    if "." in s:
        dec = s.split(".", 1)[1].rstrip("0")
        return 0.5 * 10.0 ** (-len(dec)) if dec else 0.5
    return 0.5


@functools.lru_cache(maxsize=1)
def printed_inputs() -> dict[tuple[str, str], dict[str, str]]:
    """(component, gas) -> {mean, lo, hi} as the strings written in the packaged tables."""
    out = {}
    for p in [*glob.glob(os.path.join(COMPONENT_DIR, "*.csv")), PAPER_ENSEMBLES]:
        for r in pd.read_csv(p, dtype=str).itertuples(index=False):
            out[(r.component, r.gas)] = {"mean": r.mean, "lo": r.lo, "hi": r.hi}
    return out


def _input_printed(recipe, name: str, gas: str, stat: str) -> str:
    spec = recipe.inputs[name]
    comp = spec.get("component", spec.get("paper"))
    return printed_inputs()[(comp, gas)][stat]


def input_rounding(result, item: str, gas: str, stat: str, metric=None) -> float:
    """Rounding of the printed inputs carried into ``item``/``gas``/``stat`` (CO2-eq when
    ``metric`` is given; ``gas='total'`` sums the greenhouse gases of a co2eq row's item)."""
    gases = ("CO2", "CH4", "N2O") if gas == "total" else (gas,)
    tol = 0.0
    for g in gases:
        e = result.items.get(item, {}).get(g)
        if e is None:
            continue
        for (name, pg), w in (e.parts or {}).items():
            f = 1.0
            if metric is not None:
                f = co2eq_factor(
                    pg, resolve_metric(metric), input_origin(result.recipe, name, pg), item=item
                )
            st = stat
            if stat != "mean" and w < 0:
                st = "hi" if stat == "lo" else "lo"
            tol += abs(w * f) * halfunit(_input_printed(result.recipe, name, pg, st))
    return tol


@functools.cache
def table(name: str) -> pd.DataFrame:
    """A paper table fixture, index = row, cells as printed strings (cached: do not modify)."""
    return pd.read_csv(os.path.join(DATA, name), dtype=str).set_index("row")


#: the totals printed in the paper's text (Conclusions, Section 3.6): (mean, lo, hi) as strings
PRINTED_TOTALS = {
    ("GWP100", "bottom_up_plus_anthropogenic"): ("597", "-355", "1342"),
    ("GWP100", "top_down_plus_anthropogenic"): ("-285", "-668", "86"),
    ("GWP20", "bottom_up_plus_anthropogenic"): ("1394", "129", "2427"),
    ("GWP20", "top_down_plus_anthropogenic"): ("81", "-399", "533"),
    ("GWP500", "bottom_up_plus_anthropogenic"): ("196", "-579", "772"),
    ("GWP500", "top_down_plus_anthropogenic"): ("-451", "-789", "-116"),
}
