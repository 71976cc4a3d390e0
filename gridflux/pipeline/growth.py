"""Growing a store: what a run adds to an existing store, what it refuses, and how it is applied.

A run on an existing store may bring new members, variables, regions and months (the time axis
extends at either end). :func:`plan_growth` merges the store's template with the run's: the
store's members, variables and regions keep their places and new ones are appended (labels, not
positions, identify them: compare stores by label), the axis becomes the union of both (its first
month on a chunk boundary counted from year 0, :func:`~gridflux.pipeline.plan.axis_start`, so a
grown axis moves stored chunks by whole chunks). What a store cannot take is refused with
:class:`~gridflux.errors.StoreError` naming the setting: another zarr format, chunk-months, target
grid or cube grid (the mask's bounding box on the target grid), cubes on one run and off the
other, another mask geometry for a region the store holds, or a mask without one of its regions.

:func:`apply_growth` grows the store: new members, variables, regions and months at the end of
the axis by resizing arrays in place (:meth:`Store.append`: totals are chunked by region and
time, so the chunks of stored series are not touched), months at the start or pruned members and
variables by writing the new layout beside the store (:meth:`Store.rebuild`: every stored chunk
is linked, or copied server-side on object stores, to its new index, so its bytes stay the same).
Which series are then computed is the run's ordinary skip decision: a series done with the same
inputs and configuration is skipped, or, when the store gained regions its manifest entry does
not name, computed for those regions only (:func:`gridflux.pipeline.plan.plan_or_skip`: a
region's totals do not depend on the other regions, so its stored chunks and cube are left as
they are and the new regions' rows are written into their own chunks).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridflux.errors import StoreError
from gridflux.fields.masks import RegionMask
from gridflux.fields.timeaxis import Month, continuous_months, month_label
from gridflux.pipeline.plan import axis_start
from gridflux.pipeline.store import BOOL_TRAITS, MEMBER_TRAITS, Store, StoreTemplate


def region_hashes(mask: RegionMask) -> dict[str, str]:
    """A short hash per region of its fractions and the mask's grid (its geometry)."""
    grid = mask.grid.fingerprint().encode()
    out = {}
    for k, name in enumerate(mask.names):
        h = hashlib.sha1(grid)
        h.update(np.ascontiguousarray(mask.fractions[k], dtype=np.float64).tobytes())
        out[name] = h.hexdigest()[:16]
    return out


def stored_template(st: Store) -> StoreTemplate:
    """The template of an existing store: its signature, member traits and series' protocols.

    Members, variables, regions and months are the signature's (:meth:`Store.signature`, the
    template marker's: written last by every growth), traits and kinds the first entries of the
    stored coordinates (read with zarr, not xarray: a growth killed midway may have left arrays
    and coordinates of different lengths, which the growth then redoes)."""
    import zarr

    sig = st.signature()
    root: Any = zarr.open_group(st.zarr_store(), mode="r", use_consolidated=False)
    members = [str(m) for m in sig["members"]]
    variables = [str(v) for v in sig["variables"]]

    def first(name: str, n: int) -> list[Any] | None:
        if name not in root:
            return None
        return np.asarray(root[name][...]).tolist()[:n]

    traits: dict[str, list[Any]] = {}
    for t in MEMBER_TRAITS:
        vals = first(t, len(members))
        if vals is not None and len(vals) == len(members):
            traits[t] = [bool(v) for v in vals] if t in BOOL_TRAITS else [str(v) for v in vals]
        else:
            traits[t] = [False if t in BOOL_TRAITS else "" for _ in members]
    kinds = first("variable_kind", len(variables)) or []
    protocols = {
        k: str(e["protocol"])
        for k, e in st.read_manifest().get("series", {}).items()
        if e.get("protocol")
    }
    kinds = [str(k) for k in kinds]
    stored_units = [str(u) for u in first("variable_units", len(variables)) or []]
    return StoreTemplate(
        units={  # a mean's unit as stored (kept when the store grows)
            v: u
            for v, k, u in zip(variables, kinds, stored_units, strict=False)
            if k == "mean" and u
        },
        members=members,
        traits=traits,
        variables=variables,
        variable_kinds=[str(k) for k in kinds],
        regions=list(sig["regions"]),
        months=[Month.parse(m) for m in sig["months"]],
        cube_variables=list(sig.get("cube_variables", [])),
        time_chunk=int(sig.get("time_chunk", 12)),
        protocols=protocols,
        region_hashes=dict(sig.get("region_hashes", {})),
        target=sig.get("target"),
    )


@dataclass
class GrowthPlan:
    """How a run changes an existing store (``template``: the store after the run)."""

    old: StoreTemplate
    template: StoreTemplate
    added_members: list[str] = field(default_factory=list)
    added_variables: list[str] = field(default_factory=list)
    added_regions: list[str] = field(default_factory=list)
    months_before: int = 0  # months the axis grows at its start
    months_after: int = 0  # months the axis grows at its end
    dropped_members: list[str] = field(default_factory=list)
    dropped_variables: list[str] = field(default_factory=list)
    coords_changed: bool = False  # traits or protocols of stored members differ
    #: the store's totals are chunked by region and time (layout 2): regions and months at the
    #: end are added in place; a layout-1 store is rebuilt by its first such growth
    in_place: bool = True

    @property
    def rebuild(self) -> bool:
        """Whether stored chunks move to other indices (the axis starts earlier, members or
        variables are dropped), or a layout-1 store gains regions or months."""
        moved = bool(self.months_before or self.dropped_members or self.dropped_variables)
        return moved or (not self.in_place and bool(self.added_regions or self.months_after))

    @property
    def changed(self) -> bool:
        return bool(
            self.rebuild
            or self.added_members
            or self.added_variables
            or self.added_regions
            or self.months_after
            or self.coords_changed
        )

    def describe(self) -> dict:
        """What grew, for the manifest's history (empty lists and zeros left out)."""
        months = self.template.months
        out: dict[str, Any] = {
            "members": self.added_members,
            "variables": self.added_variables,
            "regions": self.added_regions,
            "dropped_members": self.dropped_members,
            "dropped_variables": self.dropped_variables,
            "months_before": self.months_before,
            "months_after": self.months_after,
        }
        out = {k: v for k, v in out.items() if v}
        if self.months_before or self.months_after:
            out["axis"] = f"{month_label(months[0])}..{month_label(months[-1])}"
        return out


def plan_growth(
    st: Store,
    run: StoreTemplate,
    drop_members: set[str] | None = None,
    drop_variables: set[str] | None = None,
) -> GrowthPlan:
    """Merge the store's template with this run's (``run``), or refuse what the store cannot take.

    ``drop_members``/``drop_variables``: members and variables to remove (``--prune``: none of
    their series is in the run's catalogs)."""
    old = stored_template(st)
    fmt = st.stored_format()
    where = f"store {st.url}"
    if fmt is not None and fmt != st.zarr_format:
        raise StoreError(
            f"{where} is zarr format {fmt}, this run writes format {st.zarr_format} "
            f"(setting store.zarr-format / --zarr-format); run with --zarr-format {fmt}"
        )
    if old.time_chunk != run.time_chunk:
        raise StoreError(
            f"{where} has time chunks of {old.time_chunk} months, this run {run.time_chunk} "
            f"(setting pipeline.chunk-months / --chunk-months); run with --chunk-months "
            f"{old.time_chunk}"
        )
    if old.target is not None and run.target is not None and old.target != run.target:
        raise StoreError(
            f"{where} was computed on another target grid than this run's (setting target-grid "
            "/ --target-grid); a store keeps one target grid: write a new store for another"
        )
    sig = st.signature()
    if (sig.get("cube_grid") is None) != (run.cube_grid is None):
        has = "has" if sig.get("cube_grid") is not None else "has no"
        raise StoreError(
            f"{where} {has} cubes and this run "
            f"{'writes' if run.cube_grid is not None else 'does not'}"
            " (setting pipeline.cubes / --cubes/--no-cubes); run with the store's setting"
        )
    if run.cube_grid is not None and sig.get("cube_grid") != run.cube_grid.fingerprint():
        raise StoreError(
            f"{where}: this run's cube grid (setting target-grid, and the mask's bounding box on "
            "it) differs from the store's; a region reaching outside the store's bounding box, or "
            "another target grid, needs a new store"
        )
    missing = [r for r in old.regions if r not in run.regions]
    if missing:
        raise StoreError(
            f"{where} holds region(s) {missing} that this run's mask lacks (setting --mask / "
            "--regions); give the mask with every region of the store (regions are never dropped)"
        )
    for r in old.regions:
        if r in old.region_hashes and old.region_hashes[r] != run.region_hashes.get(r):
            raise StoreError(
                f"{where}: region {r!r} of this run's mask has another geometry (fractions or "
                "grid) than the store's (setting --mask); a store keeps its regions' masks: "
                "rename the region or write a new store"
            )

    drop_m, drop_v = set(drop_members or ()), set(drop_variables or ())
    run_traits = {m: {t: run.traits[t][i] for t in run.traits} for i, m in enumerate(run.members)}
    old_traits = {m: {t: old.traits[t][i] for t in old.traits} for i, m in enumerate(old.members)}
    members = [m for m in old.members if m not in drop_m]
    added_members = [m for m in run.members if m not in old_traits]
    members += added_members
    variables = [v for v in old.variables if v not in drop_v]
    added_variables = [v for v in run.variables if v not in old.variables]
    variables += added_variables
    added_regions = [r for r in run.regions if r not in old.regions]
    regions = old.regions + added_regions
    traits = {
        t: [run_traits.get(m, old_traits.get(m, {})).get(t, "") for m in members]
        for t in MEMBER_TRAITS
    }
    coords_changed = any(m in old_traits and run_traits[m] != old_traits[m] for m in run.members)
    protocols = {k: v for k, v in old.protocols.items() if k.split("/")[0] not in drop_m}
    for k, v in run.protocols.items():
        coords_changed |= k in protocols and protocols[k] != v
        protocols[k] = v
    first = [m for m in (old.months[:1] + run.months[:1]) if m]
    last = [m for m in (old.months[-1:] + run.months[-1:]) if m]
    months = continuous_months(axis_start(min(first), run.time_chunk), max(last)) if first else []
    months_before = months.index(old.months[0]) if old.months else 0
    if months_before % run.time_chunk:
        raise StoreError(
            f"{where}: its time axis starts at {month_label(old.months[0])}, not at a "
            f"{run.time_chunk}-month chunk boundary (a store of an older gridflux), so it "
            f"cannot grow to {month_label(months[0])}; write a new store"
        )
    months_after = len(months) - months_before - len(old.months)
    from gridflux.fields.units import VARIABLES

    # the kind (flux, stock, mean) the run planned, else the store's, else the variable table's
    known = dict(zip(old.variables, getattr(old, "variable_kinds", None) or [], strict=False))
    known.update(zip(run.variables, run.variable_kinds, strict=True))
    kinds: list[str] = [
        known.get(v) or (VARIABLES[v].kind if v in VARIABLES else "flux") for v in variables
    ]
    mask_on_cube = None
    if run.mask_on_cube_grid is not None:
        order = [run.regions.index(r) for r in regions]
        mask_on_cube = np.asarray(run.mask_on_cube_grid)[order]
    template = StoreTemplate(
        members=members,
        traits=traits,
        variables=variables,
        variable_kinds=kinds,
        regions=regions,
        months=months,
        cube_grid=run.cube_grid,
        mask_on_cube_grid=mask_on_cube,
        cube_variables=list(variables) if run.cube_grid is not None else [],
        time_chunk=run.time_chunk,
        protocols=protocols,
        region_hashes={r: run.region_hashes.get(r, old.region_hashes.get(r, "")) for r in regions},
        target=run.target if run.target is not None else old.target,
        units={**run.units, **old.units},  # a stored mean's unit stays (new series convert)
    )
    return GrowthPlan(
        old=old,
        template=template,
        added_members=added_members,
        added_variables=added_variables,
        added_regions=added_regions,
        months_before=months_before,
        months_after=months_after,
        dropped_members=[m for m in old.members if m in drop_m],
        dropped_variables=[v for v in old.variables if v in drop_v],
        coords_changed=coords_changed,
        in_place=st.grows_in_place(run.time_chunk),
    )


def apply_growth(st: Store, plan: GrowthPlan) -> None:
    """Grow the store as planned: in place for new members, variables, regions and months at the
    end (:meth:`Store.append`), else by a rebuild beside it (:meth:`Store.rebuild`). A store whose
    arrays do not have its signature's shapes (an append killed midway, followed by a run that
    does not grow the store) is appended to its template again."""
    if plan.rebuild:
        st.rebuild(plan.template, plan.old, plan.months_before // plan.template.time_chunk)
    elif plan.changed or not st.shapes_match(plan.template):
        st.append(plan.template)
