"""Ensemble statistics: mean, 95 % interval, sub-ensembles, group-first averaging, exclusions.

Kernels here work on plain numpy arrays / pandas objects of *per-member* values (one number per
member, e.g. a period mean in Tg CO2-C/yr); nothing here reads files.

Interval methods (``INTERVAL_METHODS``, selectable by name):

``percentile`` (default, the paper's choice)
    the 2.5th and 97.5th percentiles of the member values, linear interpolation between order
    statistics (Hyndman & Fan 1996 type 7, numpy's ``"linear"``): with sorted values
    ``x_(1) <= ... <= x_(n)`` the p-quantile is ``x_(k) + f (x_(k+1) - x_(k))`` where
    ``h = (n - 1) p + 1``, ``k = floor(h)``, ``f = h - k``. It describes the spread of the
    members, not the uncertainty of the mean.
``percentile-hazen``, ``percentile-weibull``, ``percentile-median_unbiased``
    the same with the other Hyndman & Fan definitions (numpy ``method=`` names ``hazen``,
    ``weibull``, ``median_unbiased``), for comparison with tools that use them.
``normal``
    ``mean -/+ z sd`` with the sample standard deviation (ddof = 1) and ``z = 1.959964``
    (the 97.5 % point of the standard normal): a Gaussian model of the member spread (the
    paper's inversion intervals are symmetric and fit this to 1 Tg in all nine Table 5 cells).
``student-t``
    ``mean -/+ t sd`` with ``t`` the 97.5 % point of Student's t with n - 1 degrees of freedom
    (wider than ``normal`` for few members: 12.71 for n = 2, 2.45 for n = 7).
``quantile-layers`` (recipe only, :func:`gridflux.budget.inputs.quantile_layer_estimate`)
    one member published as quantile layers (CARDAMOM's 2.5 / 50 / 97.5 % files): the median
    layer with the outer layers as its interval.
``minmax``
    the smallest and largest member (the full range).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from gridflux.errors import BudgetError
from gridflux.pipeline.store import BOOL_TRAITS as STORE_BOOL_TRAITS

#: interval method name -> numpy percentile method (None: not a percentile method)
INTERVAL_METHODS: dict[str, str | None] = {
    "percentile": "linear",
    "percentile-hazen": "hazen",
    "percentile-weibull": "weibull",
    "percentile-median_unbiased": "median_unbiased",
    "normal": None,
    "student-t": None,
    "minmax": None,
}

#: traits stored as booleans on the ``member`` coordinate of a store
BOOL_TRAITS = STORE_BOOL_TRAITS


@dataclass
class Estimate:
    """A budget number: central value with a 95 % interval.

    Attributes
    ----------
    mean, lo, hi : float
        Central value and interval bounds, in the unit of the item (e.g. Tg CO2-C/yr, positive
        to the atmosphere).
    n : int or None
        Number of ensemble members (or groups) behind an ensemble estimate; None for derived items.
    period : str or None
        The years the estimate covers (e.g. ``"2000-2009"``), ``"published"`` for tabulated values.
    samples : numpy.ndarray or None
        Monte Carlo samples when the recipe runs with ``propagation="montecarlo"``.
    parts : dict or None
        The estimate as a linear combination of recipe inputs: ``{(input id, gas): weight}``
        (set by :func:`gridflux.budget.recipes.run_recipe`; used to give each source its own
        warming potential).
    """

    mean: float
    lo: float
    hi: float
    n: int | None = None
    period: str | None = None
    samples: np.ndarray | None = field(default=None, repr=False)
    parts: dict[tuple[str, str], float] | None = field(default=None, repr=False)

    def scaled(self, factor: float) -> Estimate:
        """Multiply by ``factor`` (bounds swap when the factor is negative)."""
        lo, hi = self.lo * factor, self.hi * factor
        if factor < 0:
            lo, hi = hi, lo
        s = None if self.samples is None else self.samples * factor
        p = None if self.parts is None else {k: w * factor for k, w in self.parts.items()}
        return Estimate(self.mean * factor, lo, hi, self.n, self.period, s, p)


def interval(
    values: np.ndarray, method: str = "percentile", level: float = 0.95
) -> tuple[float, float]:
    """Lower and upper bound of a central ``level`` interval of member values.

    Parameters
    ----------
    values : array of float
        One value per member (NaN are ignored).
    method : str
        One of :data:`INTERVAL_METHODS` (see the module docstring for the formulas).
    level : float
        Central coverage, 0.95 for the 2.5-97.5 % interval.

    Returns
    -------
    (lo, hi) : tuple of float
        NaN, NaN when no finite value is given.
    """
    if method not in INTERVAL_METHODS:
        raise BudgetError(
            f"interval method {method!r} is unknown; expected one of {sorted(INTERVAL_METHODS)}"
        )
    if not 0 < level < 1:
        raise BudgetError(f"interval level {level!r} must be between 0 and 1 (0.95 for 2.5-97.5 %)")
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    np_method = INTERVAL_METHODS[method]
    if np_method is not None:
        lo, hi = np.percentile(x, [100 * tail, 100 * (1 - tail)], method=np_method)
        return float(lo), float(hi)
    if method == "minmax":
        return float(x.min()), float(x.max())
    # normal / student-t
    if x.size < 2:
        return float(x[0]), float(x[0])
    z = stats.norm.ppf(1 - tail) if method == "normal" else stats.t.ppf(1 - tail, x.size - 1)
    sd = x.std(ddof=1)
    return float(x.mean() - z * sd), float(x.mean() + z * sd)


def ensemble_estimate(
    values: pd.Series | np.ndarray,
    method: str = "percentile",
    level: float = 0.95,
    period: str | None = None,
) -> Estimate:
    """Mean of the members and the ``level`` interval by ``method``; NaN members are dropped."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0, period)
    lo, hi = interval(x, method, level)
    return Estimate(float(x.mean()), lo, hi, int(x.size), period)


def group_first(values: pd.Series, groups: pd.Series | Mapping[Any, Any]) -> pd.Series:
    """Average members within each group first (e.g. the CH4 inversion submissions of one group).

    Parameters
    ----------
    values : pandas.Series
        Per-member values indexed by member.
    groups : pandas.Series or mapping
        Group label per member (same index). Members with an empty / missing group form a group
        of their own.

    Returns
    -------
    pandas.Series
        One value per group (the mean of its finite members), indexed by group label.
    """
    g = pd.Series(groups).reindex(values.index)
    labels = [
        str(lab) if (lab is not None and not pd.isna(lab) and str(lab) != "") else f"member:{m}"
        for m, lab in g.items()
    ]
    v = pd.Series(np.asarray(values, dtype=np.float64), index=labels)
    v = v[np.isfinite(v.to_numpy())]
    return v.groupby(level=0, sort=True).mean()


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    s = str(value).strip().lower()
    if s in ("true", "1", "yes", "y", "t"):
        return True
    if s in ("false", "0", "no", "n", "f", ""):
        return False
    return None


def select_members(
    members: pd.DataFrame,
    ensembles: Sequence[str] | None = None,
    traits: Mapping[str, Any] | None = None,
) -> pd.Index:
    """Members of a sub-ensemble.

    Parameters
    ----------
    members : pandas.DataFrame
        One row per member (index = member id) with trait columns (``ensemble``, ``gas``,
        ``group``, ``forcing``, ``layered_c``, ``fire``...), as :func:`member_table` returns.
    ensembles : list of str, optional
        Ensemble names to keep (case-insensitive); all when None.
    traits : mapping, optional
        Column -> required value (``{"fire": True, "layered_c": False, "forcing": "GSWP3"}``); a
        list value means "any of". Boolean traits accept ``True/False`` or their string forms.

    Returns
    -------
    pandas.Index of the selected member ids.
    """
    keep = np.ones(len(members), dtype=bool)
    if ensembles is not None:
        if "ensemble" not in members.columns:
            raise BudgetError(
                "member coordinates have no 'ensemble' trait; cannot select ensembles "
                f"{list(ensembles)}"
            )
        wanted = {e.lower() for e in ensembles}
        keep &= members["ensemble"].astype(str).str.lower().isin(wanted).to_numpy()
    for name, want in (traits or {}).items():
        if name not in members.columns:
            raise BudgetError(
                f"trait {name!r} is not a member coordinate; have {sorted(members.columns)}"
            )
        col = members[name]
        if name in BOOL_TRAITS or isinstance(want, bool):
            keep &= np.array([_as_bool(v) == bool(want) for v in col], dtype=bool)
        else:
            wants = [str(w).lower() for w in (want if isinstance(want, (list, tuple)) else [want])]
            keep &= col.astype(str).str.lower().isin(wants).to_numpy()
    return members.index[keep]


@dataclass
class Exclusion:
    """One member dropped by an exclusion rule, with the reason (reported in the outputs)."""

    member: str
    rule: str
    value: float
    reason: str


def _rule_ratio_to_others(values: pd.Series, factor: float = 10.0) -> list[tuple[str, str]]:
    """Members whose |value| exceeds ``factor`` times the median |value| of the other members."""
    out = []
    v = values[np.isfinite(values.to_numpy(dtype=np.float64))]
    if len(v) < 3:
        return out
    absv = v.abs()
    for m in v.index:
        others = absv.drop(m)
        ref = float(others.median())
        if ref > 0 and absv[m] > factor * ref:
            out.append((m, f"|{v[m]:.4g}| > {factor:g} x median |others| ({ref:.4g})"))
    return out


def _rule_members(values: pd.Series, members: Sequence[str] = ()) -> list[tuple[str, str]]:
    """Members excluded by name."""
    return [(m, "excluded by name in the recipe") for m in members if m in values.index]


#: exclusion rule name -> function(values, **params) -> [(member, reason)]
EXCLUSION_RULES = {
    "ratio_to_others": _rule_ratio_to_others,
    "members": _rule_members,
}


def apply_exclusions(
    values: pd.Series, rules: Sequence[Mapping[str, Any]]
) -> tuple[pd.Series, list[Exclusion]]:
    """Drop members by data-described rules and report each exclusion.

    Parameters
    ----------
    values : pandas.Series
        Per-member values (the quantity the rule looks at, e.g. the period-mean N2O flux).
    rules : list of mappings
        Each ``{"rule": name, **params}`` with ``name`` in :data:`EXCLUSION_RULES`, e.g.
        ``{"rule": "ratio_to_others", "factor": 10}`` (a member more than 10 x the median
        magnitude of the others) or ``{"rule": "members", "members": ["id1"]}``.

    Returns
    -------
    kept : pandas.Series
    excluded : list of :class:`Exclusion`
    """
    kept = values.copy()
    excluded: list[Exclusion] = []
    for spec in rules or ():
        spec = dict(spec)
        name = spec.pop("rule", None)
        if name not in EXCLUSION_RULES:
            raise BudgetError(
                f"exclusion rule {name!r} is unknown; expected one of {sorted(EXCLUSION_RULES)}"
            )
        for m, why in EXCLUSION_RULES[name](kept, **spec):
            excluded.append(Exclusion(str(m), name, float(kept[m]), why))
            kept = kept.drop(m)
    return kept, excluded


def mann_whitney(
    a: Sequence[float], b: Sequence[float], alternative: str = "two-sided"
) -> dict[str, float]:
    """Mann-Whitney U test between two sub-ensembles (``scipy.stats.mannwhitneyu``).

    Returns ``{"U": U statistic of a, "p": p-value, "n_a": .., "n_b": ..}``; NaN when a side has
    no finite member.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size == 0 or y.size == 0:
        return {"U": float("nan"), "p": float("nan"), "n_a": int(x.size), "n_b": int(y.size)}
    res = stats.mannwhitneyu(x, y, alternative=alternative)
    return {
        "U": float(res.statistic),
        "p": float(res.pvalue),
        "n_a": int(x.size),
        "n_b": int(y.size),
    }
