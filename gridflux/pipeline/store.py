"""The gridflux zarr store: layout, template, region writes, manifest and lock.

Layout (see docs/store.md), readable with plain ``xarray.open_zarr``:

* root: ``totals (member, variable, region, time)`` float64, Tg of element per month for fluxes
  (monthly-mean Tg for stocks), NaN where not computed; member traits and variable kinds as
  coordinates; chunks of one (member, variable, region) and ``chunk-months`` months on the cubes'
  months (:func:`totals_chunks`), so that a store grows by adding chunks, never rewriting them.
* ``cubes/<variable>``: ``<variable> (member, time, lat, lon)`` float32 kg m-2 s-1 on the target
  grid clipped to the mask's bounding box, compressed, chunked ``(1, 12, tile, tile)``.
* ``grid``: target bounds, cell area (m2), the mask on the target grid.
* ``manifest.json``: per series status, input fingerprint, config hash, versions, timings, errors.
* ``.gridflux.lock``: present while a ``gridflux run`` writes the store.

The template (metadata, coordinates, empty arrays) is written once; data then arrive by region
writes aligned with chunks, and a series is marked ``done`` in the manifest only after all of its
data are written, with an atomic replace of the manifest. Credentials (storage options) are
never written to the store.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from gridflux.errors import StoreError, StoreWriteError
from gridflux.fields.timeaxis import Month, month_label
from gridflux.kernels.grids import CellBounds, cell_areas

MANIFEST = "manifest.json"
TEMPLATE_DONE = "gridflux-template.json"  # written last by Store.create: the template is complete
_ZARR_META = ("zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata")
LOCK = ".gridflux.lock"
#: the group of daily series (:mod:`gridflux.pipeline.daily`), written beside the template: never
#: a part of it (an incomplete template is removed without it; a rebuild carries it over)
DAILY_GROUP = "daily"
# zarr's LocalStore writes a chunk to this temp name, then renames it
# (zarr.storage._local._atomic_write)
_PARTIAL_WRITE = re.compile(r"\.[0-9a-f]{32}\.partial$")
_MANIFEST_TMP = f"{MANIFEST}.tmp-"  # + the writer's pid: the manifest's temp file before its rename
LAYOUT_VERSION = 2  # 2: totals chunked by region and time (1: one chunk per series)
GROWTH_JOURNAL = "gridflux-growth.json"  # an object store's layout growth being copied back
#: The Blosc compressor of a new store's cubes under ``store.cube-compressor: auto`` (the default):
#: lz4 with byte shuffle encodes float32 cubes 3.5-4.5x faster than zstd level 1 for 4-7 % more
#: bytes (docs/benchmarks.md, "The cube path"); stores made with zstd keep it.
AUTO_CUBE_COMPRESSOR = "lz4"
_UNRESOLVED = "unresolved"  # sentinel: no compressor chosen / found yet
log = logging.getLogger(__name__)
TG_PER_KG = 1e-9
#: the shape, or the chunks, of ``totals (member, variable, region, time)``
Shape4 = tuple[int, int, int, int]


#: Member traits the store holds as coordinates of ``member`` (the one list: the runner writes
#: them, the budget reads them); the catalog's ``grid_label`` is not one of them.
MEMBER_TRAITS: tuple[str, ...] = (
    "ensemble",
    "source_id",
    "experiment",
    "member_id",
    "gas",
    "group",
    "forcing",
    "layered_c",
    "fire",
)
#: Traits stored as booleans.
BOOL_TRAITS: tuple[str, ...] = ("layered_c", "fire")


def variable_units(
    variables: list[str], kinds: list[str], units: dict[str, str] | None = None
) -> list[str]:
    """Each variable's unit in the store: a total's ``Tg C`` / ``Tg CH4-C`` / ``Tg N2O-N`` of
    the month (a stock's Tg at the month), a mean's own unit (``K``...: the table's, else
    ``units[variable]``, the files' own, :attr:`StoreTemplate.units`)."""
    from gridflux.fields.statistics import mean_unit, total_unit
    from gridflux.fields.units import VARIABLES

    out = []
    for v, k in zip(variables, kinds, strict=True):
        if k == "mean":
            out.append(mean_unit(v, (units or {}).get(v)))
        elif v in VARIABLES:
            out.append(total_unit(VARIABLES[v].element, VARIABLES[v].gas))
        else:
            out.append("Tg")
    return out


def cube_units(variable: str, template: StoreTemplate) -> str:
    """A cube's unit: ``kg m-2 s-1`` (or ``kg m-2`` for stocks) of a total's canonical field,
    the stored unit of a mean's field (``K``)."""
    kind = template.variable_kinds[template.variables.index(variable)]
    if kind == "mean":
        return variable_units([variable], [kind], template.units)[0]
    return "kg m-2" if kind == "stock" else "kg m-2 s-1"


@dataclass(kw_only=True)
class StoreTemplate:
    """Everything the store's shape depends on (fixed when the store is created)."""

    members: list[str]
    traits: dict[str, list[Any]]  # trait name -> value per member
    variables: list[str]
    variable_kinds: list[str]
    regions: list[str]
    months: list[Month]  # the common axis
    cube_grid: CellBounds | None = None
    mask_on_cube_grid: np.ndarray | None = None  # (region, lat, lon)
    cube_variables: list[str] = field(default_factory=list)
    time_chunk: int = 12
    protocols: dict[str, str] = field(default_factory=dict)  # series id -> protocol
    region_hashes: dict[str, str] = field(default_factory=dict)  # region -> hash of its mask
    target: str | None = None  # fingerprint of the target grid
    #: stored unit of each mean variable outside the table (``fields.statistics.MEAN_UNITS``):
    #: the files' own units (``runner.mean_units_of``)
    units: dict[str, str] = field(default_factory=dict)
    #: regions per totals chunk (:func:`totals_chunks`); None: all of the template's regions (a
    #: new store). A grown store keeps the one it was created with.
    region_chunk: int | None = None

    def protocol_array(self) -> np.ndarray:
        """The ``protocol`` coordinate of ``member``: the protocol of the member's series, their
        protocols joined by ``+`` when they differ (each series' own is in the manifest)."""
        out = []
        for m in self.members:
            found = {
                self.protocols[k]
                for k in (f"{m}/{v}" for v in self.variables)
                if k in self.protocols
            }
            out.append("+".join(sorted(found)))
        return np.asarray(out, dtype=object)

    def signature(self) -> dict:
        return {
            "layout": LAYOUT_VERSION,
            "members": list(self.members),
            "variables": list(self.variables),
            "regions": list(self.regions),
            "months": [month_label(m) for m in self.months],
            "cube_variables": list(self.cube_variables),
            "cube_grid": None if self.cube_grid is None else self.cube_grid.fingerprint(),
            "region_hashes": dict(self.region_hashes),
            "target": self.target,
            "time_chunk": self.time_chunk,
        }


def month_axis(months: list[Month]) -> np.ndarray:
    """``datetime64[ns]`` month starts of months (labels only, any calendar)."""
    return np.array([Month(*m).datetime64() for m in months], dtype="datetime64[ns]")


class Store:
    """A gridflux store at a local path or fsspec URL (``s3://...``)."""

    def __init__(
        self,
        url: str | os.PathLike,
        storage_options: dict | None = None,
        zarr_format: int | None = None,
    ):
        import fsspec

        from gridflux import config

        self.url = os.fspath(url).rstrip("/")
        self._storage_options = dict(storage_options or {})
        self.zarr_format = int(config.get("store.zarr-format", override=zarr_format))
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **self._storage_options)
        if not _is_local_fs(self.fs):  # remote stores get the same timeouts and retries as inputs
            from gridflux.ingest import remote

            self._storage_options = remote.with_timeouts(
                self.url, self._storage_options, remote.RemotePolicy.from_config()
            )
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **self._storage_options)
        self.is_local = _is_local_fs(self.fs)
        # the cubes' compressor when set by :meth:`keep_cube_compressors` (a rebuild links the old
        # store's chunks, so the new layout must decode them as the old one did)
        self._cube_codecs: tuple | None | str = _UNRESOLVED
        self._cube_tiles: tuple[int, int] | None = None  # likewise the cube chunks' cells
        # manifest entries known scrubbed, by identity: id -> (entry, its scrubbed form)
        self._scrubbed: dict[int, tuple[Any, Any]] = {}

    # -- paths -------------------------------------------------------------------------------
    def _path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def zarr_store(self):
        """A zarr store object for this location (credentials stay in memory)."""
        import zarr.storage

        if self.is_local:
            return zarr.storage.LocalStore(self.root)
        return zarr.storage.FsspecStore.from_url(self.url, storage_options=self._storage_options)

    @property
    def storage_options(self) -> dict:
        return dict(self._storage_options)

    def exists(self) -> bool:
        """True when the store holds a complete template (see :meth:`template_state`)."""
        return self.template_state() == "complete"

    # -- template completeness (an interrupted create() is detected and redone) --------------
    def template_state(self) -> str:
        """``"complete"``, ``"absent"`` (nothing but a lock or a manifest), or ``"incomplete"``:
        a template whose writing was interrupted (killed driver, Ctrl-C), which the next
        :meth:`create` removes and writes again.

        A template is complete once :data:`TEMPLATE_DONE` exists, which :meth:`create` writes
        after everything else. Stores made before that marker existed count as complete when
        their root carries the template signature and their manifest the run's config hash
        (written only after the template)."""
        self.fs.invalidate_cache(self.root)  # zarr wrote through its own file system object
        if self.fs.exists(self._path(TEMPLATE_DONE)):
            return "complete"
        leftovers = self.template_leftovers()
        if all(n.rstrip("/").rsplit("/", 1)[-1] in _ZARR_META for n in leftovers):
            return "absent"  # nothing, or a bare root group (beside a daily/ group)
        if self._is_legacy_complete():
            return "complete"
        return "incomplete"

    def template_leftovers(self) -> list[str]:
        """Paths at the store's root other than the lock, its takeover claims and the manifest."""
        try:
            names = self.fs.ls(self.root, detail=False)
        except FileNotFoundError:
            return []
        keep = (LOCK, MANIFEST, DAILY_GROUP)
        return [
            n
            for n in names
            if not any(n.rstrip("/").rsplit("/", 1)[-1].startswith(k) for k in keep)
        ]

    def _is_legacy_complete(self) -> bool:
        import zarr

        if not (self.fs.exists(self._path("zarr.json")) or self.fs.exists(self._path(".zgroup"))):
            return False
        try:
            attrs = zarr.open_group(self.zarr_store(), mode="r").attrs
            has_signature = "template_signature" in attrs
        except Exception:  # noqa: BLE001 - an unreadable root is not a complete store
            return False
        try:
            manifest = self.read_manifest()
        except StoreError:
            return False
        return has_signature and "config_hash" in manifest

    def remove_incomplete_template(self) -> list[str]:
        """Delete what an interrupted :meth:`create` left (call with the lock held); return the
        removed paths. Refused if the manifest names a done series: such a store is damaged, not
        a template in the making, and is never deleted."""
        done = [
            k
            for k, e in self.read_manifest().get("series", {}).items()
            if e.get("status") == "done"
        ]
        if done:
            raise StoreError(
                f"store {self.url} has no complete template ({TEMPLATE_DONE} is missing) but its "
                f"manifest lists {len(done)} done series (e.g. {done[0]}); the store is damaged: "
                "write to a new store"
            )
        removed = self.template_leftovers()
        foreign = [p for p in removed if not self._is_template_part(p)]
        if foreign:
            raise StoreError(
                f"store {self.url} holds {len(foreign)} entries that are not part of a gridflux "
                f"store (e.g. {foreign[0]}); choose an empty or new --store location"
            )
        for path in removed:
            self.fs.rm(path, recursive=True)
        if removed:
            log.warning(
                "store %s: removed the incomplete template of an interrupted run (%d entries); "
                "writing it again",
                self.url,
                len(removed),
            )
        return removed

    def _is_template_part(self, path: str) -> bool:
        """Whether a root entry is something :meth:`create` writes: zarr metadata, a zarr node
        (a directory holding zarr metadata), or the marker's temp file."""
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if name in _ZARR_META or name.startswith(TEMPLATE_DONE):
            return True
        return any(self.fs.exists(f"{path.rstrip('/')}/{meta}") for meta in _ZARR_META)

    def write_template_marker(self, template: StoreTemplate) -> None:
        """Write :data:`TEMPLATE_DONE` (last step of :meth:`create`): the template is complete.
        Holds the template's signature and the settings that shaped the store."""
        info = {
            "layout": LAYOUT_VERSION,
            "signature": template.signature(),
            "settings": self.settings_of(template),
        }
        data = json.dumps(info, indent=1, sort_keys=True).encode()
        if self.is_local:
            tmp = self._path(f"{TEMPLATE_DONE}.tmp-{os.getpid()}")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._path(TEMPLATE_DONE))
        else:
            self.fs.pipe(self._path(TEMPLATE_DONE), data)

    # -- lock (gridflux/pipeline/lock.py) ---------------------------------------------------
    def acquire_lock(self) -> None:
        """Hold the store exclusively for this process, or raise :class:`StoreError` naming the
        holder. A stale lock (its process dead on this host, or its heartbeat older than
        ``store.lock-timeout``) is taken over by exactly one contender (see :mod:`.lock`)."""
        from gridflux.pipeline.lock import StoreLock

        if self.is_local:
            self.fs.makedirs(self.root, exist_ok=True)
        else:  # object stores have no directories; creating one would create a missing bucket
            self.check_bucket()
        lock = StoreLock(self.fs, self._path(LOCK), self.url, is_local=self.is_local)
        lock.acquire()
        self.lock: Any = lock
        if not self.is_local:  # a layout growth killed while it was copied into place
            self.finish_copy_back()

    def check_bucket(self) -> None:
        """Fail clearly when the bucket (container) of a store on object storage does not exist:
        gridflux never creates buckets (their region, access policy, encryption and lifecycle are
        the owner's choice). A local store's directory is created as needed.

        Raises
        ------
        StoreError
            The bucket does not exist, is not visible with these credentials, or cannot be reached.
        """
        if self.is_local:
            return
        from gridflux.ingest.remote import scrub

        bucket = self.root.split("/", 1)[0]
        where = scrub(self.url, self._storage_options)
        try:
            found = self.fs.exists(bucket)
        except Exception as exc:  # noqa: BLE001 - botocore/aiohttp/gcsfs raise many types
            raise StoreError(
                f"store {where}: cannot check its bucket {bucket!r} "
                f"({scrub(f'{type(exc).__name__}: {exc}', self._storage_options)}); check the "
                "endpoint and credentials (--store-options)"
            ) from None
        if not found:
            raise StoreError(
                f"store {where}: bucket {bucket!r} does not exist (or these credentials cannot "
                "see it). gridflux never creates buckets: create it with your provider's tools "
                f"(e.g. aws s3 mb s3://{bucket}) or choose another --store"
            )

    def release_lock(self) -> None:
        """Give the lock back (only if this process still holds it)."""
        lock = getattr(self, "lock", None)
        if lock is not None:
            lock.release()
            self.lock = None

    def lock_info(self) -> dict | None:
        """The store's lock as its holder wrote it (token, host, pid, since, heartbeat), or None."""
        try:
            return json.loads(self.fs.cat(self._path(LOCK)))
        except FileNotFoundError:
            return None

    # -- manifest ----------------------------------------------------------------------------
    def read_manifest(self) -> dict:
        """``manifest.json`` with the per-series journal of runs since its last full write applied
        (gridflux/pipeline/manifest.py)."""
        from gridflux.pipeline import manifest as journal

        path = self._path(MANIFEST)
        if not self.fs.exists(path):
            data = journal.replay(self.fs, self._path(journal.JOURNAL_DIR), {"series": {}})
        else:
            try:
                data = json.loads(self.fs.cat(path))
            except ValueError as exc:
                raise StoreError(
                    f"{path}: the manifest is not valid JSON ({exc}); the store may be damaged"
                ) from exc
            data = journal.replay(self.fs, self._path(journal.JOURNAL_DIR), data)
        # entries as read were scrubbed when written: write_manifest passes them on as they are
        self._scrubbed.update({id(e): (e, e) for e in data.get("series", {}).values()})
        return data

    def write_manifest(self, manifest: dict) -> None:
        """Replace the manifest atomically (temp file + rename locally; one PUT on object stores).

        Every string is scrubbed first (:func:`gridflux.ingest.remote.scrub_tree`): input URLs are
        recorded by their identity (no user-info, no signing parameters), errors with secrets
        masked, and the values of this store's own storage options never appear. Entries read
        from the store and not replaced since are written as they were read (scrubbed when they
        were written), so a run scrubs what it adds, not the whole archive at every write."""
        lock = getattr(self, "lock", None)
        if lock is not None and lock.lost:  # another run took the store over: stop writing
            raise StoreError(
                f"store {self.url}: the lock of this run was taken over by another run (its "
                "heartbeat was older than store.lock-timeout); this run stops writing"
            )
        clean = self._scrubbed_manifest(manifest)
        # compact: json's C encoder (an indented dump runs in Python, ~10x slower: 0.26 s for
        # the manifest of 500 series, paid at every rewrite)
        data = json.dumps(clean, sort_keys=True, default=str, separators=(",", ":")).encode()
        path = self._path(MANIFEST)
        try:
            if self.is_local:
                tmp = self._path(f"{_MANIFEST_TMP}{os.getpid()}")
                try:
                    with open(tmp, "wb") as f:
                        f.write(data)
                        f.flush()
                        os.fsync(f.fileno())
                    os.replace(tmp, path)
                finally:
                    with contextlib.suppress(OSError):
                        if os.path.exists(tmp):
                            os.unlink(tmp)
            else:
                self.fs.pipe(path, data)
        except OSError as exc:
            raise self.write_error(MANIFEST, exc) from exc
        from gridflux.pipeline import manifest as journal

        journal.clear(self.fs, self._path(journal.JOURNAL_DIR))  # the full manifest supersedes it

    def _scrubbed_manifest(self, manifest: dict) -> dict:
        """``manifest`` with every string scrubbed (:func:`~gridflux.ingest.remote.scrub_tree`).
        A series entry that is the very object this store read from its manifest, or scrubbed at
        an earlier write, is not walked again (its scrubbed copy is reused): a run scrubs what it
        adds, not every entry of the store at each write. Entries are replaced, never changed in
        place, once they are in the manifest."""
        from gridflux.ingest.remote import scrub_tree

        opts = self._storage_options
        # by identity (the objects are held in the cache, so their ids stay theirs)
        cache = self._scrubbed
        clean = scrub_tree({k: v for k, v in manifest.items() if k != "series"}, opts)
        series: dict[str, Any] = {}
        done: dict[int, tuple[Any, Any]] = {}
        for key, entry in (manifest.get("series") or {}).items():
            hit = cache.get(id(entry))
            if hit is not None and hit[0] is entry:
                series[key] = hit[1]
                done[id(entry)] = hit
            else:
                value = scrub_tree(entry, opts)
                series[scrub_tree(key, opts)] = value
                done[id(entry)] = (entry, value)
        self._scrubbed = done
        if "series" in manifest:
            clean["series"] = series
        return clean

    def write_error(self, what: str, exc: OSError) -> StoreWriteError:
        """One line for a write that the file system refused (disk full, read-only, quota):
        what failed, why, and that the store stays consistent for a re-run."""
        from gridflux.ingest.remote import scrub

        why = exc.strerror or type(exc).__name__
        code = f" (errno {exc.errno})" if exc.errno else ""
        return StoreWriteError(
            f"store {scrub(self.url, self._storage_options)}: cannot write {what}: {why}{code}. "
            "What was written is consistent (series not marked done are recomputed): free space "
            "or make the store writable, then run the same command again"
        )

    def remove_partial_writes(self) -> list[str]:
        """Delete the temporary files that interrupted writes left behind; return their paths.

        On a local store zarr writes each chunk to ``<chunk>.<uuid4 hex>.partial`` and renames it
        into place, so a worker killed mid-write leaves such a file (never a torn chunk), and a
        driver killed mid-write leaves ``manifest.json.tmp-<pid>``. Call only while holding the
        lock, once no task of this run is writing. Object stores write whole objects and leave
        nothing behind.
        """
        if not self.is_local:
            return []
        removed: list[str] = []

        def scan(directory: str) -> None:  # os.scandir: file types without a stat per entry
            try:
                entries = list(os.scandir(directory))
            except FileNotFoundError:
                return
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    scan(e.path)
                elif _PARTIAL_WRITE.search(e.name) or e.name.startswith(_MANIFEST_TMP):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(e.path)
                        removed.append(e.path)

        scan(self.root)
        return removed

    # -- template ----------------------------------------------------------------------------
    def create(self, template: StoreTemplate) -> None:
        """Write the template: metadata, coordinates and empty (fill = NaN) arrays."""
        with warnings.catch_warnings():
            # the lock and manifest files live beside the zarr hierarchy on purpose
            warnings.filterwarnings(
                "ignore", message="Object at .* is not recognized", category=UserWarning
            )
            state = self.template_state()
            if state == "complete":
                raise StoreError(f"store {self.url} already exists; open it instead of creating it")
            if state == "incomplete":
                self.remove_incomplete_template()
            self._create(template)
            self.write_template_marker(template)

    def _create(self, template: StoreTemplate) -> None:
        import dask.array as dsa
        import xarray as xr
        import zarr

        nm, nv, nr, nt = (
            len(template.members),
            len(template.variables),
            len(template.regions),
            len(template.months),
        )
        time = month_axis(template.months)
        coords: dict[str, Any] = {
            "member": _trait_array(template.members),
            "variable": _trait_array(template.variables),
            "region": _trait_array(template.regions),
            "time": time,
            "variable_kind": ("variable", _trait_array(template.variable_kinds)),
            "variable_units": (
                "variable",
                _trait_array(
                    variable_units(template.variables, template.variable_kinds, template.units)
                ),
            ),
            "variable_statistic": (
                "variable",
                _trait_array(["mean" if k == "mean" else "total" for k in template.variable_kinds]),
            ),
        }
        for name, values in template.traits.items():
            coords[name] = ("member", _trait_array(values))
        coords["protocol"] = ("member", template.protocol_array())
        tchunks = totals_chunks(template)
        totals = xr.DataArray(
            dsa.full((nm, nv, nr, nt), np.nan, chunks=tchunks, dtype=np.float64),
            dims=("member", "variable", "region", "time"),
            name="totals",
            attrs={
                "long_name": "monthly region total (or mean: variable_statistic)",
                "units": "per variable: variable_units (Tg of element per month, Tg for stocks, "
                "the variable's own unit for means)",
                "sign_convention": "fluxes positive to the atmosphere",
                "description": "rate x seconds of the month in the member's own calendar / 1e9",
            },
        )
        ds = xr.Dataset(
            {"totals": totals},
            coords=coords,
            attrs={
                "title": "gridflux store",
                "gridflux_layout": LAYOUT_VERSION,
                "template_signature": json.dumps(template.signature()),
            },
        )
        store = self.zarr_store()
        enc = {
            "totals": {"chunks": tchunks, "_FillValue": np.nan},
            "time": {"units": "days since 1850-01-01", "calendar": "proleptic_gregorian"},
        }
        ds.to_zarr(
            store,
            mode="a",
            compute=False,
            encoding=enc,
            zarr_format=self.zarr_format,
            consolidated=False,
        )

        if template.cube_grid is not None:
            g = template.cube_grid
            grid = xr.Dataset(
                {
                    "lat_bnds": (("lat", "bnds"), g.lat_bounds),
                    "lon_bnds": (("lon", "bnds"), g.lon_bounds),
                    "cell_area": (("lat", "lon"), cell_areas(g), {"units": "m2"}),
                    "mask": (("region", "lat", "lon"), template.mask_on_cube_grid, {"units": "1"}),
                },
                coords={"lat": g.lat, "lon": g.lon, "region": _trait_array(template.regions)},
            )
            grid.to_zarr(
                store,
                group="grid",
                mode="a",
                zarr_format=self.zarr_format,
                consolidated=False,
                # one chunk per region: a new region adds a chunk, the stored ones stay
                encoding={"mask": {"chunks": (1, g.nlat, g.nlon)}},
            )
            for var in template.cube_variables:
                self._create_cube(store, template, var)
        with warnings.catch_warnings():
            # zarr 3 warns that consolidated metadata is not in its spec yet; xarray reads it fine
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            # the lock and manifest files live beside the zarr hierarchy on purpose
            warnings.filterwarnings(
                "ignore", message="Object at .* is not recognized", category=UserWarning
            )
            zarr.consolidate_metadata(store)

    def _create_cube(self, store, template: StoreTemplate, var: str) -> None:
        """The empty cube array of one variable, ``cubes/<var>/<var>``, with its coordinates."""
        import dask.array as dsa
        import xarray as xr

        g = template.cube_grid
        assert g is not None
        nm, nt = len(template.members), len(template.months)
        _, _, tlat, tlon = self._cube_chunks(template)
        # one lazy dask chunk: nothing is computed (compute=False writes the metadata only), and
        # a graph of one task per zarr chunk cost the driver ~0.35 s per variable to build and
        # optimise on a 100-member archive (the same files are written either way)
        cube = xr.DataArray(
            dsa.full((nm, nt, g.nlat, g.nlon), np.nan, dtype=np.float32, chunks=-1),
            dims=("member", "time", "lat", "lon"),
            coords={
                "member": _trait_array(template.members),
                "time": month_axis(template.months),
                "lat": g.lat,
                "lon": g.lon,
            },
            name=var,
            attrs={
                "units": cube_units(var, template),
                "sign_convention": "fluxes positive to the atmosphere",
                "grid": "target grid clipped to the mask's bounding box; see /grid",
            },
        )
        enc_c = {
            var: {
                "chunks": (1, template.time_chunk, tlat, tlon),
                "_FillValue": np.nan,
                **self._cube_codec(),
            },
            "time": {"units": "days since 1850-01-01", "calendar": "proleptic_gregorian"},
        }
        cube.to_dataset().to_zarr(
            store,
            group=f"cubes/{var}",
            mode="a",
            compute=False,
            encoding=enc_c,
            zarr_format=self.zarr_format,
            consolidated=False,
            safe_chunks=False,  # the one dask chunk is never written
        )

    def consolidate(self) -> None:
        """Rewrite the consolidated metadata (after arrays were resized or added)."""
        import zarr

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            warnings.filterwarnings(
                "ignore", message="Object at .* is not recognized", category=UserWarning
            )
            zarr.consolidate_metadata(self.zarr_store())

    def stored_format(self) -> int | None:
        """The zarr format the existing store was written in (None: no store here)."""
        if self.fs.exists(self._path("zarr.json")):
            return 3
        if self.fs.exists(self._path(".zgroup")):
            return 2
        return None

    # -- growth ------------------------------------------------------------------------------
    def grows_in_place(self, time_chunk: int) -> bool:
        """Whether the store's totals are chunked by ``time_chunk`` months (the layout since
        gridflux layout 2): new regions and months at the end of the axis are then new chunks, and
        :meth:`append` adds them in place. Stores of layout 1 (one totals chunk per series) are
        rebuilt once into this layout by their first such growth."""
        return self.totals_region_chunk(time_chunk) is not None

    def totals_region_chunk(self, time_chunk: int) -> int | None:
        """Regions per totals chunk of a store whose totals are chunked by ``time_chunk`` months
        (layout 2), else None."""
        import zarr

        try:
            arr = zarr.open_array(self.zarr_store(), path="totals", mode="r")
        except Exception:  # noqa: BLE001 - no totals array: not a store that grows in place
            return None
        return int(arr.chunks[2]) if int(arr.chunks[3]) == int(time_chunk) else None

    def worker_totals_layout(self, time_chunk: int) -> tuple[Shape4, Shape4] | None:
        """``(shape, chunks)`` of the totals array when its chunks let the workers write the
        totals of the time blocks they compute (:func:`write_totals_blocks`): chunks of one
        member and one variable and ``time_chunk`` months (layout 2), so each block of a series
        is its own chunks. None for a store of layout 1 (one chunk per series, which all of its
        blocks share: two tasks of one series would race on it; the driver writes those)."""
        import zarr

        try:
            arr = zarr.open_array(self.zarr_store(), path="totals", mode="r")
        except Exception:  # noqa: BLE001 - no totals array: the driver's write reports it
            return None
        shape = cast(Shape4, tuple(int(n) for n in arr.shape))
        chunks = cast(Shape4, tuple(int(n) for n in arr.chunks))
        if len(chunks) != 4 or chunks[:2] != (1, 1) or chunks[3] != int(time_chunk):
            return None
        return shape, chunks

    def shapes_match(self, template: StoreTemplate) -> bool:
        """Whether the totals array has the template's shape (read without the consolidated
        metadata, which a growth rewrites near its end)."""
        import zarr

        try:
            arr = zarr.open_array(self.zarr_store(), path="totals", mode="r")
        except Exception:  # noqa: BLE001 - no totals: nothing to compare
            return True
        want = (
            len(template.members),
            len(template.variables),
            len(template.regions),
            len(template.months),
        )
        return tuple(int(n) for n in arr.shape) == want

    def append(self, template: StoreTemplate) -> None:
        """Grow the store in place to ``template``, whose members, variables, regions and months
        start with the store's (new ones appended; the axis grows at its end only): arrays are
        resized (a resize rewrites metadata only: with totals chunked by region and time
        (:func:`totals_chunks`) every stored chunk keeps its bytes), coordinates rewritten (small),
        the new regions' rows of the grid's mask written (one chunk each), new variables' cubes
        created; then the consolidated metadata, the root's signature and, last, the template
        marker, whose signature is the store's (:meth:`signature`).

        Crash-safe by redoing: a run killed while appending leaves the marker's (old) signature,
        so the next run plans the same growth from it and appends again; every step resizes to
        the template's shapes and rewrites whole coordinates, so it may run any number of times
        (an array resized beyond a later run's template is cut back: nothing was computed in the
        part cut off, since series are computed after the growth)."""
        import zarr

        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="Object at .* is not recognized", category=UserWarning
            )
            store = self.zarr_store()
            # the regions before this growth: the marker's signature (written last), not the
            # arrays' shapes, which an append killed midway may have changed already
            signature = self.signature()
            stored_regions = len(signature["regions"])
            stored_cubes = set(signature.get("cube_variables", signature["variables"]))
            root: Any = zarr.open_group(store, mode="r+", use_consolidated=False)
            nm, nv = len(template.members), len(template.variables)
            nr, nt = len(template.regions), len(template.months)
            root["totals"].resize((nm, nv, nr, nt))
            _rewrite(root, "member", _trait_array(template.members))
            for name, values in template.traits.items():
                _rewrite(root, name, _trait_array(values))
            _rewrite(root, "variable", _trait_array(template.variables))
            _rewrite(root, "variable_kind", _trait_array(template.variable_kinds))
            units = variable_units(template.variables, template.variable_kinds, template.units)
            _rewrite(root, "variable_units", _trait_array(units))
            if "variable_statistic" in root:  # stores written before means existed have none
                stats = ["mean" if k == "mean" else "total" for k in template.variable_kinds]
                _rewrite(root, "variable_statistic", _trait_array(stats))
            if "protocol" in root:  # a store written before protocols were kept has none
                _rewrite(root, "protocol", template.protocol_array())
            _rewrite(root, "region", _trait_array(template.regions))
            _rewrite_time(root, template.months)
            if template.mask_on_cube_grid is not None and "grid" in root:
                grid: Any = zarr.open_group(store, path="grid", mode="r+", use_consolidated=False)
                mask = grid["mask"]
                if mask.shape[0] != nr:
                    mask.resize((nr,) + tuple(mask.shape[1:]))
                for i in range(min(stored_regions, nr), nr):  # the new regions' rows (chunks)
                    mask[i] = np.asarray(template.mask_on_cube_grid[i], dtype=mask.dtype)
                _rewrite(grid, "region", _trait_array(template.regions))
            for var in template.cube_variables:
                if var not in stored_cubes:  # a new variable: its cube written whole (anew,
                    # over what an append killed midway left of it: it holds no data yet)
                    if self.fs.exists(self._path(f"cubes/{var}")):
                        self.fs.rm(self._path(f"cubes/{var}"), recursive=True)
                    self._create_cube(store, template, var)
                    continue
                cube = zarr.open_array(store, path=f"cubes/{var}/{var}", mode="r+")
                if cube.shape[:2] != (nm, nt):
                    cube.resize((nm, nt) + tuple(cube.shape[2:]))
                group = zarr.open_group(
                    store, path=f"cubes/{var}", mode="r+", use_consolidated=False
                )
                _rewrite(group, "member", _trait_array(template.members))
                _rewrite_time(group, template.months)
            root.attrs["template_signature"] = json.dumps(template.signature())
        self.consolidate()
        self.write_template_marker(template)

    def rebuild_path(self, suffix: str) -> str:
        return f"{self.root}.gridflux-{suffix}"

    def rebuild(
        self,
        template: StoreTemplate,
        old: StoreTemplate,
        shift_chunks: int,
    ) -> None:
        """Grow the store to ``template`` by writing it anew beside the old one (needed when the
        axis starts earlier, members or variables are dropped, or a store of layout 1 grows its
        regions or months): the new template is created at ``<store>.gridflux-next``, every
        stored chunk (cubes, and totals when both layouts chunk them alike) is linked -- copied
        on object stores, server-side -- to its new chunk index (member, variable and region by
        label, time moved by ``shift_chunks`` chunks when the axis starts earlier), so its bytes
        stay the same; totals of a layout-1 store are copied by value.

        Local stores: the manifest and lock are copied, then ``<store>`` becomes
        ``<store>.gridflux-old``, the new store takes its name and the old one is deleted. A run
        killed before the swap leaves the old store untouched (the next run starts the rebuild
        again); one killed within it is finished by :meth:`finish_rebuild`.

        Object stores (no rename): once the new layout is complete beside the store, the journal
        :data:`GROWTH_JOURNAL` is written into the store (one PUT), then the store's zarr objects
        are replaced by the new layout's (:meth:`finish_copy_back`: stale chunks deleted, chunks
        copied, metadata and the template marker last), then the journal is deleted. A run killed
        before the journal leaves the store untouched; one killed after it is finished by the next
        run as soon as it holds the lock (:meth:`acquire_lock`), which copies back again (the
        copies are idempotent)."""

        import dataclasses

        nxt = self.rebuild_path("next")
        if self.fs.exists(nxt):
            self.fs.rm(nxt, recursive=True)
        region_chunk = self.totals_region_chunk(template.time_chunk)
        if region_chunk is not None:  # the new layout keeps the store's totals chunks
            template = dataclasses.replace(template, region_chunk=region_chunk)
        if self.is_local:
            new = Store(nxt, zarr_format=self.zarr_format)
        else:
            proto = self.url.split("://", 1)[0]
            new = Store(f"{proto}://{nxt}", self._storage_options, self.zarr_format)
        new.keep_cube_compressors(self.cube_compressors())  # the linked chunks' codec and tiles
        stored = self._first_cube_array()
        if stored is not None:
            new.keep_cube_tiles((int(stored.chunks[2]), int(stored.chunks[3])))
        new.create(template)
        mem_new = {m: i for i, m in enumerate(template.members)}
        member_map = {i: mem_new[m] for i, m in enumerate(old.members) if m in mem_new}
        v_new = {v: i for i, v in enumerate(template.variables)}
        var_map = {i: v_new[v] for i, v in enumerate(old.variables) if v in v_new}

        # cubes: every stored chunk to its new index, its bytes untouched
        for var in old.cube_variables:
            if var not in template.cube_variables:
                continue

            def cube_index(idx: tuple[int, ...]) -> tuple[int, ...] | None:
                if idx[0] not in member_map:
                    return None
                return (member_map[idx[0]], idx[1] + shift_chunks, *idx[2:])

            self._relink_chunks(new, f"cubes/{var}/{var}", cube_index)
        # totals: chunk by chunk when the store's are chunked by time (layout 2; regions keep
        # their places: they are never dropped), else by value
        if region_chunk is not None:

            def totals_index(idx: tuple[int, ...]) -> tuple[int, ...] | None:
                m, v, r, t = idx
                if m not in member_map or v not in var_map:
                    return None
                return (member_map[m], var_map[v], r, t + shift_chunks)

            self._relink_chunks(new, "totals", totals_index)
        else:
            self._copy_totals_by_value(new, template, old, member_map)
        if self.is_local:
            self._swap_local(nxt)
        else:
            data = json.dumps({"next": nxt, "step": "copy-back"}).encode()
            self.fs.pipe(self._path(GROWTH_JOURNAL), data)
            self.finish_copy_back()

    def _relink_chunks(self, new: Store, array: str, index_of: Any) -> None:
        """Link (local) or copy (object stores, server-side) every chunk of ``array`` to the
        chunk index ``index_of(old index)`` of the same array in ``new`` (None: left out)."""
        import shutil

        src = f"{self.root}/{array}"
        dst = f"{new.root}/{array}"
        for rel in self._chunk_keys(array):
            new_idx = index_of(_chunk_index(rel, self.zarr_format))
            if new_idx is None:
                continue
            target = f"{dst}/{_chunk_name(new_idx, self.zarr_format)}"
            if self.is_local:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                try:
                    os.link(f"{src}/{rel}", target)
                except OSError:
                    shutil.copyfile(f"{src}/{rel}", target)
            else:
                self.fs.copy(f"{src}/{rel}", target)

    def _chunk_keys(self, array: str) -> list[str]:
        """Keys (``/``-separated, relative to the array) of an array's stored chunks."""
        base = f"{self.root}/{array}"
        if self.is_local:
            return [r.replace(os.sep, "/") for r in _chunk_files(base, self.zarr_format)]
        self.fs.invalidate_cache(base)
        if self.zarr_format == 3:
            try:
                found = self.fs.find(f"{base}/c")
            except FileNotFoundError:
                return []
            return [p[len(base) :].lstrip("/") for p in found]
        try:
            names = self.fs.ls(base, detail=False)
        except FileNotFoundError:
            return []
        out = [n.rstrip("/").rsplit("/", 1)[-1] for n in names]
        return [n for n in out if n[0].isdigit()]

    def _copy_totals_by_value(
        self, new: Store, template: StoreTemplate, old: StoreTemplate, member_map: dict
    ) -> None:
        """Totals of a layout-1 store (one chunk per series) into the new layout, by label."""
        import zarr

        old_tot = np.asarray(zarr.open_array(self.zarr_store(), path="totals", mode="r")[...])
        shape = (
            len(template.members),
            len(template.variables),
            len(template.regions),
            len(template.months),
        )
        tot = np.full(shape, np.nan)
        v_new = {v: i for i, v in enumerate(template.variables)}
        r_new = {r: i for i, r in enumerate(template.regions)}
        t_new = {ym: i for i, ym in enumerate(template.months)}
        vi = [(i, v_new[v]) for i, v in enumerate(old.variables) if v in v_new]
        ri = [(i, r_new[r]) for i, r in enumerate(old.regions) if r in r_new]
        ti = np.array([t_new[ym] for ym in old.months], dtype=np.int64)
        for mo, mn in member_map.items():
            for vo, vn in vi:
                for ro, rn in ri:
                    tot[mn, vn, rn, ti] = old_tot[mo, vo, ro]
        arr = zarr.open_array(new.zarr_store(), path="totals", mode="r+")
        for mn in range(tot.shape[0]):  # all-NaN chunks are not written, as when built once
            for vn in range(tot.shape[1]):
                if np.isfinite(tot[mn, vn]).any():
                    arr[mn, vn] = tot[mn, vn]

    def _swap_local(self, nxt: str) -> None:
        import shutil

        for name in (MANIFEST, LOCK):
            if os.path.exists(self._path(name)):
                shutil.copyfile(self._path(name), os.path.join(nxt, name))
        if os.path.exists(self._path(DAILY_GROUP)):  # the daily series' group, as it is:
            # its files linked (the same inodes, bytes and mtimes), copied where links fail
            shutil.copytree(
                self._path(DAILY_GROUP), os.path.join(nxt, DAILY_GROUP), copy_function=_link_or_copy
            )
            Store(nxt, zarr_format=self.zarr_format).consolidate()
        old_path = self.rebuild_path("old")
        if os.path.exists(old_path):
            shutil.rmtree(old_path)
        os.replace(self.root, old_path)
        os.replace(nxt, self.root)
        shutil.rmtree(old_path)

    def finish_copy_back(self) -> bool:
        """Replace an object store's zarr objects by the rebuilt layout beside it, as the journal
        :data:`GROWTH_JOURNAL` says (see :meth:`rebuild`); True if there was one to finish.
        Idempotent: a run killed in here is finished by the next one. Call with the lock held.

        Order: every object of the store that the new layout lacks is deleted (old chunks at
        indices now empty), the new layout's chunks are copied over, then its metadata, then its
        template marker; then the journal and the new layout beside the store are deleted. The
        lock, the manifest and its journal are the store's own and are not touched."""
        path = self._path(GROWTH_JOURNAL)
        self.fs.invalidate_cache(self.root)
        if not self.fs.exists(path):
            stray = self.rebuild_path("next")  # a rebuild killed before its journal: unused
            self.fs.invalidate_cache(stray)
            if self.fs.exists(stray):
                self.fs.rm(stray, recursive=True)
            return False
        info = json.loads(self.fs.cat(path))
        nxt = str(info["next"])
        self.fs.invalidate_cache(nxt)
        ours = (LOCK, MANIFEST, GROWTH_JOURNAL, DAILY_GROUP)  # the daily group stays as it is

        def rel_files(root: str) -> set[str]:
            try:
                found = self.fs.find(root)
            except FileNotFoundError:
                return set()
            rels = {p[len(root) :].lstrip("/") for p in found}
            return {r for r in rels if not r.split("/", 1)[0].startswith(ours)}

        new_files = rel_files(nxt)
        if TEMPLATE_DONE not in new_files:  # the new layout is gone: the copy-back was done
            self.fs.rm(path)
            return True
        for rel in sorted(rel_files(self.root) - new_files):
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(self._path(rel))

        def order(rel: str) -> tuple[int, str]:
            name = rel.rsplit("/", 1)[-1]
            return (2 if rel == TEMPLATE_DONE else 1 if name in _ZARR_META else 0, rel)

        for rel in sorted(new_files, key=order):
            self.fs.copy(f"{nxt}/{rel}", self._path(rel))
        self.fs.rm(path)
        self.fs.rm(nxt, recursive=True)
        self.fs.invalidate_cache(self.root)
        log.info("store %s: its grown layout is in place", self.url)
        return True

    def finish_rebuild(self) -> bool:
        """Finish a rebuild (:meth:`rebuild`) killed while swapping; True if there was one.
        (Object stores finish theirs under the lock: :meth:`finish_copy_back`.)"""
        import shutil

        if not self.is_local:
            return False
        nxt, old = self.rebuild_path("next"), self.rebuild_path("old")
        if os.path.exists(old):
            if not os.path.exists(self.root) and os.path.exists(nxt):
                os.replace(nxt, self.root)
            if os.path.exists(self.root):
                shutil.rmtree(old)
                return True
        return False

    # -- settings that shape the store (checked on every run that resumes it) ----------------
    def settings_of(self, template: StoreTemplate) -> dict:
        """The settings a run with ``template`` gives the store: zarr format, cube chunks and
        compressor, cube grid and mask (as hashes)."""
        out: dict[str, Any] = {"zarr_format": self.zarr_format}
        if template.cube_grid is not None and template.cube_variables:
            g = template.cube_grid
            out["cube_chunks"] = list(self._cube_chunks(template))
            out["cube_compressors"] = [_codec_config(c) for c in self.cube_compressors() or ()]
            out["cube_grid"] = g.fingerprint()
            out["mask_on_cube_grid"] = _array_hash(template.mask_on_cube_grid)
        return out

    def check_settings(self, template: StoreTemplate) -> None:
        """Refuse (:class:`StoreError` naming the setting) a run whose settings would reshape or
        mix into the existing store: another zarr format, cube time chunk (``--chunk-months``: two
        tasks would write one chunk), cube compressor, target grid, or mask. Read from the store's
        own metadata, so stores made before this check are checked as well."""
        import zarr

        fmt = 3 if self.fs.exists(self._path("zarr.json")) else 2
        if fmt != self.zarr_format:
            raise StoreError(
                f"store {self.url} is zarr format {fmt}, but this run asks for format "
                f"{self.zarr_format} (--zarr-format / store.zarr-format); run with --zarr-format "
                f"{fmt}, or write to a new store"
            )
        if template.cube_grid is None or not template.cube_variables:
            return
        root: Any = zarr.open_group(
            self.zarr_store(), mode="r", zarr_format=cast(Any, fmt), use_consolidated=False
        )
        want = self._cube_chunks(template)
        want_codecs = [_codec_config(c) for c in self.cube_compressors() or ()]
        g = template.cube_grid
        lat_b: np.ndarray | None
        lon_b: np.ndarray | None
        mask: np.ndarray | None
        try:
            lat_b = np.asarray(root["grid/lat_bnds"][:])
            lon_b = np.asarray(root["grid/lon_bnds"][:])
            mask = np.asarray(root["grid/mask"][:])
        except KeyError:  # a store without its grid group: nothing to compare
            lat_b = lon_b = mask = None
        if (
            lat_b is not None
            and lon_b is not None
            and (
                lat_b.shape != g.lat_bounds.shape
                or lon_b.shape != g.lon_bounds.shape
                or not (np.array_equal(lat_b, g.lat_bounds) and np.array_equal(lon_b, g.lon_bounds))
            )
        ):
            raise StoreError(
                f"store {self.url} has cubes on another grid ({_grid_text(lat_b, lon_b)}) than "
                f"this run ({_grid_text(g.lat_bounds, g.lon_bounds)}; the target grid "
                "--target-grid "
                "clipped to the mask's bounding box); run with the store's target grid and mask, "
                "or write to a new store"
            )
        new_mask = np.asarray(template.mask_on_cube_grid)
        if mask is not None:  # the store's regions (a run may add regions: the store grows)
            try:  # the signature's regions: a growth killed midway may have added rows
                stored = [str(r) for r in self.signature()["regions"]]
            except KeyError:
                stored = [str(r) for r in np.asarray(root["grid/region"][:]).tolist()]
            mask = mask[: len(stored)]
            rows = [template.regions.index(r) for r in stored if r in template.regions]
            if len(rows) == len(stored):  # a store's region missing from the run: growth refuses
                new_mask = new_mask[rows]
            else:
                mask = None
        if mask is not None and (
            mask.shape != new_mask.shape or not np.array_equal(mask, new_mask, equal_nan=True)
        ):
            raise StoreError(
                f"store {self.url} was made with another mask (--mask): its regions' fractions on "
                "the target grid differ from this run's; run with the store's mask, or write to a "
                "new store"
            )
        try:  # the signature's cube variables: another one is new (and declared anew whole)
            stored_cubes = set(self.signature().get("cube_variables", []))
        except KeyError:
            stored_cubes = set(template.cube_variables)
        for var in template.cube_variables:
            if var not in stored_cubes:
                continue  # left half-declared by a killed growth, or absent: declared anew
            try:
                arr = root[f"cubes/{var}/{var}"]
            except KeyError:
                continue  # a variable the store lacks: refused by the signature check
            chunks = tuple(int(c) for c in arr.chunks)
            if chunks[1] != want[1]:
                raise StoreError(
                    f"store {self.url} has cubes in time chunks of {chunks[1]} months, but this "
                    f"run asks for {want[1]} (--chunk-months / pipeline.chunk-months): two "
                    "tasks would "
                    f"write one chunk; run with --chunk-months {chunks[1]}, or write to a new store"
                )
            have_codecs = [_codec_config(c) for c in (getattr(arr, "compressors", None) or ())]
            if have_codecs != want_codecs:
                raise StoreError(
                    f"store {self.url}: the cubes of {var!r} are compressed with "
                    f"{have_codecs or 'none'}, this run is configured for "
                    f"{want_codecs or 'none'} (store.cube-compressor, "
                    "store.cube-clevel, store.cube-blocksize); set them as the store has them, or "
                    "write to a new store"
                )
            if chunks != want:
                raise StoreError(
                    f"store {self.url}: the cubes of {var!r} are chunked {chunks}, this run would "
                    f"write chunks {want} (cube grid and chunking); write to a new store"
                )

    def _cube_codec(self) -> dict:
        return {"compressors": self.cube_compressors()}

    def keep_cube_compressors(self, codecs: tuple | None) -> None:
        """Give this store's cubes ``codecs`` whatever the configuration says."""
        self._cube_codecs = codecs

    def cube_compressors(self) -> tuple | None:
        """The compressor of this store's cubes: ``store.cube-compressor`` as configured; with
        ``auto`` (the default) the one the store's existing cubes have (a store made with another
        default keeps its own), and for a store without cubes yet :data:`AUTO_CUBE_COMPRESSOR`."""
        from gridflux import config

        if self._cube_codecs is not _UNRESOLVED:
            return cast(Any, self._cube_codecs)
        if config.get("store.cube-compressor") == "auto":
            stored = self.stored_cube_compressors()
            if stored is not _UNRESOLVED:
                return cast(Any, stored)
        return cube_compressors(self.zarr_format)

    def stored_cube_compressors(self) -> tuple | None | str:
        """The compressors of the first cube array in the store (None: uncompressed), or
        ``_UNRESOLVED`` when the store has no cube array."""
        arr = self._first_cube_array()
        if arr is None:
            return _UNRESOLVED
        return tuple(getattr(arr, "compressors", None) or ()) or None

    def keep_cube_tiles(self, tiles: tuple[int, int]) -> None:
        """Give this store's cubes chunks of ``tiles`` (lat, lon) cells whatever the policy."""
        self._cube_tiles = tiles

    def cube_tiles(self, template: StoreTemplate) -> tuple[int, int]:
        """The (lat, lon) cells of this store's cube chunks: those its existing cubes have (a
        store made with the 90 x 180 tiles of earlier versions keeps them: its chunk files are
        linked, never rewritten, when it grows), else :func:`cube_tiles` of the cube grid."""
        if self._cube_tiles is not None:
            return self._cube_tiles
        arr = self._first_cube_array()
        if arr is not None:
            return int(arr.chunks[2]), int(arr.chunks[3])
        g = template.cube_grid
        if g is None:
            raise StoreError("a store template without a cube grid has no cube chunks")
        return cube_tiles(g)

    def _cube_chunks(self, template: StoreTemplate) -> tuple[int, int, int, int]:
        """Chunks of the cubes ``(member, time, lat, lon)``: one member, the template's months
        per chunk, :meth:`cube_tiles` cells."""
        return (1, int(template.time_chunk), *self.cube_tiles(template))

    def _first_cube_array(self) -> Any:
        """The first (by variable name) cube array of the store, or None."""
        import zarr

        fmt = self.stored_format()
        if fmt is None:
            return None
        try:
            root: Any = zarr.open_group(
                self.zarr_store(), mode="r", zarr_format=cast(Any, fmt), use_consolidated=False
            )
            cubes = root["cubes"]
        except (KeyError, FileNotFoundError, zarr.errors.NodeNotFoundError):
            return None
        for var in sorted(cubes.group_keys()):
            try:
                return cubes[f"{var}/{var}"]
            except KeyError:
                continue
        return None

    def signature(self) -> dict:
        """The store's template signature: the template marker's (written last by every change
        of the layout, so a growth killed midway still shows the layout it started from), else
        (stores made before the marker existed) the root's ``template_signature``."""
        import zarr

        try:
            info = json.loads(self.fs.cat(self._path(TEMPLATE_DONE)))
            if isinstance(info, dict) and isinstance(info.get("signature"), dict):
                return dict(info["signature"])
        except (FileNotFoundError, ValueError):
            pass
        root = zarr.open_group(self.zarr_store(), mode="r")
        return json.loads(str(root.attrs["template_signature"]))

    # -- writes ------------------------------------------------------------------------------
    def write_totals(self, member_index: int, variable_index: int, values: np.ndarray) -> None:
        """Write one series' totals ``(region, time)`` (its chunks: one per region and time chunk;
        all-NaN chunks are not stored). The series is recorded done only after this returns, so
        a write cut short by a kill is redone by the next run."""
        import zarr

        try:
            arr = zarr.open_array(self.zarr_store(), path="totals", mode="r+")
            arr[member_index, variable_index] = np.asarray(values, dtype=np.float64)
        except OSError as exc:
            raise self.write_error("totals", exc) from exc

    def series_totals(self, member_index: int, variable_index: int) -> np.ndarray:
        """A series' stored totals ``(region, time)`` float64 (NaN where none is stored)."""
        import zarr

        arr = zarr.open_array(self.zarr_store(), path="totals", mode="r")
        return np.array(arr[member_index, variable_index], dtype=np.float64)

    def clear_series(
        self, member_index: int, variable_index: int, cube_variable: str | None
    ) -> None:
        """Reset a series to fill values (before recomputing a changed or failed series): its
        totals,
        and its cube when ``cube_variable`` (the variable's name) is given."""
        import zarr

        store = self.zarr_store()
        try:
            arr = zarr.open_array(store, path="totals", mode="r+")
            arr[member_index, variable_index] = np.nan
            if cube_variable:
                path = f"cubes/{cube_variable}/{cube_variable}"
                cube = zarr.open_array(store, path=path, mode="r+")
                cube[member_index] = np.nan
        except OSError as exc:
            raise self.write_error(
                "totals" if not cube_variable else "a series' values", exc
            ) from exc


def cube_compressors(zarr_format: int) -> tuple | None:
    """The cubes' compressor as configured (``store.cube-compressor``, ``-clevel``,
    ``-blocksize``) for a new store (``auto``: :data:`AUTO_CUBE_COMPRESSOR`)."""
    from gridflux import config

    return blosc_compressors(
        zarr_format,
        config.get("store.cube-compressor"),
        int(config.get("store.cube-clevel")),
        int(config.get("store.cube-blocksize")),
    )


def blosc_compressors(
    zarr_format: int, cname: str | None, clevel: int, blocksize: int
) -> tuple | None:
    """Blosc with byte shuffle (zarr 3 ``BloscCodec``, numcodecs ``Blosc`` for format 2); None for
    ``cname`` None or "none".

    The block size is set rather than left to Blosc: for zstd at level 1 Blosc picks small blocks,
    which compress noisy float32 cubes less and more slowly than 256 KiB blocks (the packaged
    default; figures: docs/benchmarks.md, "Figures the code relies on")."""
    if cname in (None, "none"):
        return None
    if cname == "auto":
        cname = AUTO_CUBE_COMPRESSOR
    if zarr_format == 3:
        from zarr.codecs import BloscCodec

        return (
            BloscCodec(
                cname=cast(Any, cname), clevel=clevel, shuffle="shuffle", blocksize=blocksize
            ),
        )
    import numcodecs

    return (
        numcodecs.Blosc(
            cname=cname, clevel=clevel, shuffle=numcodecs.Blosc.SHUFFLE, blocksize=blocksize
        ),
    )


def write_cube_block(
    url: str,
    storage_options: dict,
    zarr_format: int,
    variable: str,
    member_index: int,
    time_slice: slice,
    data: np.ndarray,
) -> None:
    """Region write of one time block of a cube (called on workers; chunk-aligned by the caller).

    On a local zarr-3 store the block's chunks are encoded and written here
    (:class:`DirectChunks`: the bytes and files zarr writes, without its per-call machinery,
    which cost 3-5 ms per block); elsewhere, and where a partly covered chunk already holds data
    to merge with, zarr writes them."""
    data = np.asarray(data, dtype=np.float32)
    path = f"cubes/{variable}/{variable}"
    chunks = direct_chunks(url, zarr_format, path)
    if chunks is not None and chunks.write(
        (member_index, time_slice, slice(None), slice(None)), data
    ):
        return
    import zarr

    store = Store(url, storage_options, zarr_format).zarr_store()
    arr = zarr.open_array(store, path=path, mode="r+")
    arr[member_index, time_slice] = data


@dataclass(frozen=True)
class TotalsTarget:
    """Where a worker writes a series' totals itself (layout 2: chunks of one member and variable,
    ``time_chunk`` months on the cubes' months, so each time block of a series is its own set of
    chunks and no two tasks write the same chunk). Small: pickled with each series' job.

    ``shape`` and ``chunks`` are the ``totals`` array's as the driver opened it (a grown array
    is opened afresh); ``region_pos`` the store's region index of each of the run's regions."""

    url: str
    zarr_format: int
    shape: Shape4
    chunks: Shape4
    variable_index: int
    region_pos: tuple[int, ...]
    #: False: the task computed every region of the store; its chunks are written whole, NaN in
    #: rows not in ``region_pos``. True: the task computed only some regions (added to the store,
    #: for a series done before): only the rows of ``region_pos`` are written, the other rows of
    #: their chunks keep their stored values (read, merged, written back), and a chunk without
    #: such a row is not touched
    merge: bool = False


#: ``totals`` arrays a worker process wrote to (with their store), by (url, format, shape,
#: chunks)
_TOTALS_ARRAYS: dict[tuple, tuple[Store, Any]] = {}


def write_totals_blocks(
    target: TotalsTarget,
    storage_options: dict,
    member_index: int,
    blocks: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    """Write the totals of a series' time blocks (called on workers), one region write
    ``totals[member, variable, :, t0:t1]`` over the whole time chunks the blocks touch.

    ``blocks`` are ``(positions, totals (t, run's regions))`` on the store's time axis. The
    chunks are written whole: months of a chunk that the series does not hold, and store regions
    this run does not compute, are NaN, as the driver's write of the whole series writes them
    (a chunk all NaN is not stored, and an older one at its place is deleted); so the chunks are
    those the driver would write, and never need reading first. Blocks must not share a time
    chunk with another task (the runner cuts them at chunk boundaries).

    On a local zarr-3 store the chunks are encoded and written here (:class:`DirectChunks`, the
    same files and bytes): on the small synthetic archive (~3 chunks per call) zarr's region write
    took 4.1-4.7 ms of CPU per call under cProfile (7.6 ms of wall, mostly waiting on its event
    loop's thread), the direct write 1.9-2.0 ms, mostly the file system's (creating the dirs and
    the chunk files, renaming them into place, as zarr does); elsewhere zarr writes.

    Raises
    ------
    StoreWriteError
        the store refused the write (disk full, read-only, quota)"""
    blocks = [(pos, tot) for pos, tot in blocks if len(pos)]
    if not blocks:
        return
    _, _, n_regions, n_months = target.shape
    tc = target.chunks[3]
    first = min(int(np.min(pos)) for pos, _ in blocks) // tc * tc
    last = min((max(int(np.max(pos)) for pos, _ in blocks) // tc + 1) * tc, n_months)
    values = np.full((n_regions, last - first), np.nan)
    rows = np.asarray(target.region_pos, dtype=np.int64)
    for pos, tot in blocks:
        values[np.ix_(rows, np.asarray(pos, dtype=np.int64) - first)] = np.asarray(tot).T
    m, v = member_index, target.variable_index
    if target.merge:  # only the computed rows, merged into their stored chunks
        runs = _runs(sorted(set(int(r) for r in rows)))
        writes = [((m, v, slice(r0, r1), slice(first, last)), values[r0:r1]) for r0, r1 in runs]
    else:
        writes = [((m, v, slice(None), slice(first, last)), values)]
    chunks = direct_chunks(target.url, target.zarr_format, "totals")
    if chunks is not None and (chunks.shape, chunks.chunks) == (target.shape, target.chunks):
        try:  # a local zarr-3 store: the chunks zarr would write, written here (DirectChunks);
            # a chunk a merge covers only partly and that is stored already is left to zarr
            writes = [(sel, val) for sel, val in writes if not chunks.write(sel, val)]
        except OSError as exc:
            store = Store(target.url, storage_options, target.zarr_format)
            raise store.write_error("totals", exc) from exc
        if not writes:
            return
    key = (target.url, target.zarr_format, target.shape, target.chunks)
    hit = _TOTALS_ARRAYS.get(key)
    store = hit[0] if hit is not None else Store(target.url, storage_options, target.zarr_format)
    try:
        if hit is None:
            import zarr

            arr = zarr.open_array(store.zarr_store(), path="totals", mode="r+")
            if tuple(arr.shape) != target.shape or tuple(arr.chunks) != target.chunks:
                raise StoreError(
                    f"store {target.url}: its totals array is {tuple(arr.shape)} in chunks "
                    f"{tuple(arr.chunks)}, but the run planned {target.shape} in chunks "
                    f"{target.chunks}; another run changed the store meanwhile"
                )
            if len(_TOTALS_ARRAYS) >= 8:
                _TOTALS_ARRAYS.clear()
            hit = _TOTALS_ARRAYS[key] = (store, arr)
        for sel, val in writes:
            hit[1][sel] = val
    except OSError as exc:
        raise store.write_error("totals", exc) from exc


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """Sorted distinct ``rows`` as ``[start, stop)`` runs of consecutive rows."""
    out: list[tuple[int, int]] = []
    for r in rows:
        if out and out[-1][1] == r:
            out[-1] = (out[-1][0], r + 1)
        else:
            out.append((r, r + 1))
    return out


#: ``DirectChunks`` of the arrays this process wrote to, by directory, with the ``zarr.json`` stat
#: they were read at (a resized array is read again)
_DIRECT_CHUNKS: dict[str, tuple[tuple[int, int], DirectChunks | None]] = {}

#: zarr 3 data types written by :class:`DirectChunks` -> their little-endian numpy dtype
DIRECT_DTYPES: dict[str, np.dtype] = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}


def _blosc_codec(conf: dict) -> Any:
    """numcodecs' Blosc as zarr's ``BloscCodec`` builds it (zarr/codecs/blosc.py, numcodecs >=
    0.16: typesize given)."""
    import numcodecs

    return numcodecs.Blosc.from_config(
        {
            "cname": conf["cname"],
            "clevel": int(conf["clevel"]),
            "shuffle": {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[conf["shuffle"]],
            "blocksize": int(conf.get("blocksize", 0)),
            "typesize": int(conf["typesize"]),
        }
    )


def _zstd_codec(conf: dict) -> Any:
    """numcodecs' Zstd as zarr's ``ZstdCodec`` builds it (zarr/codecs/zstd.py)."""
    import numcodecs

    return numcodecs.Zstd.from_config(
        {"level": int(conf.get("level", 0)), "checksum": bool(conf.get("checksum", False))}
    )


#: zarr 3 compressors (bytes -> bytes codecs after ``bytes``) that :class:`DirectChunks` writes,
#: by name -> the numcodecs codec zarr itself encodes with, from the codec's ``configuration``
DIRECT_COMPRESSORS = {"blosc": _blosc_codec, "zstd": _zstd_codec}


@dataclass(frozen=True, eq=False)
class DirectChunks:
    """Whole-chunk writes into a local zarr-3 array of float32 or float64 (any dimensionality),
    byte for byte as zarr writes them, without zarr's per-call machinery (its event loop and
    threads: 3-5 ms per region write, more than encoding small chunks).

    A chunk is the C-order little-endian values of the whole chunk (fill NaN where the array or
    the written region does not reach), through the array's compressor if it has one
    (:data:`DIRECT_COMPRESSORS`), written to a ``.partial`` temp file renamed into place (zarr's
    ``LocalStore``); a chunk that is all NaN is not stored (an older one is deleted), as zarr does
    with its default ``write_empty_chunks=False``. Used for the workers' cube blocks
    (:func:`write_cube_block`) and totals (:func:`write_totals_blocks`). Only arrays with exactly
    that layout are written here (:meth:`from_metadata` returns None for any other: zarr-2
    arrays, other data types, fill values or codecs, sharding, other chunk key encodings)."""

    path: str  # the array's path in the store, e.g. "cubes/npp/npp", "totals"
    array_dir: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype  # little-endian float32 or float64
    codec: Any  # a numcodecs codec, or None: uncompressed
    made_dirs: set[str] = field(default_factory=set)

    @classmethod
    def cached(cls, array_dir: str, path: str) -> DirectChunks | None:
        """The array's :class:`DirectChunks` (read again when its ``zarr.json`` changed), or
        None."""
        try:
            st = os.stat(os.path.join(array_dir, "zarr.json"))
        except OSError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        hit = _DIRECT_CHUNKS.get(array_dir)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        chunks = cls.from_metadata(array_dir, path)
        _DIRECT_CHUNKS[array_dir] = (stamp, chunks)
        return chunks

    @classmethod
    def from_metadata(cls, array_dir: str, path: str) -> DirectChunks | None:
        """Read ``zarr.json``; None unless the array is float32 or float64, fill NaN, regular
        chunks with ``/``-separated default keys, and codecs ``bytes`` (little-endian) [+ one of
        :data:`DIRECT_COMPRESSORS`]."""
        try:
            with open(os.path.join(array_dir, "zarr.json")) as f:
                meta = json.load(f)
            grid = meta["chunk_grid"]
            keys = meta["chunk_key_encoding"]
            codecs = meta["codecs"]
            ok = (
                meta.get("zarr_format") == 3
                and meta.get("node_type") == "array"
                and meta.get("data_type") in DIRECT_DTYPES
                and meta.get("fill_value") == "NaN"
                and not meta.get("storage_transformers")
                and grid.get("name") == "regular"
                and keys.get("name") == "default"
                and (keys.get("configuration") or {}).get("separator", "/") == "/"
                and 1 <= len(codecs) <= 2
                and codecs[0].get("name") == "bytes"
                and (codecs[0].get("configuration") or {}).get("endian", "little") == "little"
                and (len(codecs) == 1 or codecs[1].get("name") in DIRECT_COMPRESSORS)
            )
            if not ok:
                return None
            codec = None
            if len(codecs) == 2:
                make = DIRECT_COMPRESSORS[codecs[1]["name"]]
                codec = make(dict(codecs[1].get("configuration") or {}))
            shape = tuple(int(n) for n in meta["shape"])
            chunks = tuple(int(n) for n in grid["configuration"]["chunk_shape"])
            if len(chunks) != len(shape) or not shape or min(chunks) < 1:
                return None
            return cls(
                path=path,
                array_dir=array_dir,
                shape=shape,
                chunks=chunks,
                dtype=DIRECT_DTYPES[meta["data_type"]],
                codec=codec,
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, selection: tuple[int | slice, ...], data: np.ndarray) -> bool:
        """Write ``data`` at ``selection`` (one integer or step-1 slice per dimension, as in
        ``arr[selection] = data``; ``data`` has the slices' lengths, integers dropped); False
        (nothing written) when the selection is out of bounds or does not match ``data``'s shape,
        or a chunk it only partly covers is already stored (zarr then writes it, merging).
        Raises OSError as the file system refuses a write."""
        if len(selection) != len(self.shape):
            return False
        lo, hi, out_shape = [], [], []
        for sel, n in zip(selection, self.shape, strict=True):
            if isinstance(sel, slice):
                a, b, step = sel.indices(n)
                if step != 1 or b <= a:
                    return False
                out_shape.append(b - a)
            else:
                a = int(sel)
                b = a + 1
                if not 0 <= a < n:
                    return False
            lo.append(a)
            hi.append(b)
        data = np.asarray(data)
        if data.shape != tuple(out_shape):
            return False
        data = data.reshape([b - a for a, b in zip(lo, hi, strict=True)])  # integers as length 1
        import itertools

        ranges = [
            range(a // c, (b - 1) // c + 1) for a, b, c in zip(lo, hi, self.chunks, strict=True)
        ]
        plan = []
        for idx in itertools.product(*ranges):
            c0 = [i * c for i, c in zip(idx, self.chunks, strict=True)]
            # the chunk's cells inside the array, and the part of them the selection covers
            c1 = [min(a + c, n) for a, c, n in zip(c0, self.chunks, self.shape, strict=True)]
            p0 = [max(a, b) for a, b in zip(lo, c0, strict=True)]
            p1 = [min(a, b) for a, b in zip(hi, c1, strict=True)]
            name = self.chunk_file(idx)
            if (p0, p1) != (c0, c1) and os.path.exists(name):
                return False
            plan.append((name, c0, p0, p1))
        for name, c0, p0, p1 in plan:
            part = data[tuple(slice(a - s, b - s) for a, b, s in zip(p0, p1, lo, strict=True))]
            if part.shape == self.chunks:
                chunk = np.ascontiguousarray(part, dtype=self.dtype)
            else:  # the selection or the array ends inside the chunk: NaN (the fill) around it
                chunk = np.full(self.chunks, np.nan, dtype=self.dtype)
                chunk[tuple(slice(a - c, b - c) for a, b, c in zip(p0, p1, c0, strict=True))] = part
            if _all_nan(chunk):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name)
                continue
            self._put(name, chunk.tobytes() if self.codec is None else self.codec.encode(chunk))
        return True

    def chunk_file(self, idx: tuple[int, ...]) -> str:
        """The file of the chunk at chunk index ``idx`` (zarr 3 default keys: ``c/i/j/...``)."""
        return os.path.join(self.array_dir, "c", *(str(i) for i in idx))

    def _put(self, name: str, payload: Any) -> None:
        """Write ``payload`` to ``name`` through a temp file renamed into place (zarr's
        ``LocalStore``: a killed write leaves a ``.partial`` file, never a torn chunk)."""
        import uuid

        parent = os.path.dirname(name)
        if parent not in self.made_dirs:
            os.makedirs(parent, exist_ok=True)
            self.made_dirs.add(parent)
        tmp = f"{name}.{uuid.uuid4().hex}.partial"
        try:
            try:
                f = open(tmp, "wb")
            except FileNotFoundError:  # the directory went (a store written anew at this path)
                os.makedirs(parent, exist_ok=True)
                f = open(tmp, "wb")
            with f:
                f.write(payload)
            os.replace(tmp, name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


#: False: every region write goes through zarr (tests compare the stores written both ways)
DIRECT_WRITES = True


def direct_chunks(url: str, zarr_format: int, path: str) -> DirectChunks | None:
    """The :class:`DirectChunks` of the array ``path`` of the store at ``url`` when the store is
    local and of zarr format 3 and the array's layout is one it writes, else None (zarr writes)."""
    if zarr_format != 3 or "://" in url or not DIRECT_WRITES:
        return None
    return DirectChunks.cached(os.path.join(url, path), path)


def _all_nan(a: np.ndarray) -> bool:
    """True when every value of ``a`` is NaN (a chunk zarr would not store); O(1) for most."""
    flat = a.reshape(-1)
    return bool(np.isnan(flat[0]) and np.isnan(flat[-1]) and np.isnan(flat).all())


def require_store(url: str | os.PathLike, storage_options: dict | None = None) -> Store:
    """The :class:`Store` at ``url``; a :class:`StoreError` naming the path when there is none.

    Raises
    ------
    StoreError
        No such path, or a path that holds no zarr hierarchy (no ``zarr.json`` / ``.zgroup``).
    """
    st = Store(url, storage_options)
    # a zarr hierarchy is enough to read: a run's template marker (Store.exists) matters only to
    # runs, and a store rewritten with xarray (a subset, a derived variable) is still readable
    if st.exists() or any(st.fs.exists(st._path(n)) for n in ("zarr.json", ".zgroup")):
        return st
    hint = "check the path: a store is the directory given to `gridflux run --store`"
    if not st.fs.exists(st.root):
        raise StoreError(f"{st.url}: no such store (the path does not exist); {hint}")
    raise StoreError(f"{st.url}: not a gridflux store (no zarr.json or .zgroup inside); {hint}")


def open_store(
    url: str | os.PathLike, storage_options: dict | None = None, group: str | None = None
):
    """Open a store (or one of its groups: ``grid``, ``cubes/<variable>``, ``daily``: the daily
    series, :mod:`gridflux.pipeline.daily`) as an xarray Dataset.

    The data (``totals``, cubes) stay lazy (dask); every coordinate without an index (the member
    traits such as ``ensemble``, ``variable_kind``) is loaded into memory as numpy, so that
    ``ds.totals.where(ds.ensemble == "X", drop=True)`` and ``ds.groupby("ensemble")`` work.
    String coordinates come back as ordinary numpy unicode arrays (zarr 3 decodes its
    variable-length strings to numpy's ``StringDType``, which ``.astype(str)`` cannot convert).

    Raises
    ------
    StoreError
        ``url`` is not a gridflux store (see :func:`require_store`).
    """
    import xarray as xr

    require_store(url, storage_options)
    try:
        ds = xr.open_zarr(os.fspath(url), group=group, storage_options=storage_options)
    except KeyError:  # a group written after the root's consolidated metadata (daily/)
        if group is None:
            raise
        ds = xr.open_zarr(
            os.fspath(url), group=group, storage_options=storage_options, consolidated=False
        )
    return plain_strings(eager_coords(ds))


def eager_coords(ds):
    """Load a Dataset's coordinates that have no index (one value per member, variable...) into
    memory; xarray's ``open_zarr`` gives them as dask arrays."""
    lazy = [name for name in ds.coords if name not in ds.indexes and ds[name].chunks is not None]
    return ds.assign_coords({name: ds[name].compute() for name in lazy}) if lazy else ds


def plain_strings(ds):
    """Convert ``StringDType`` coordinates of a Dataset to fixed-width unicode (``<U``)."""
    fixes = {}
    for name, coord in ds.coords.items():
        if coord.dtype.kind == "T":  # numpy.dtypes.StringDType
            fixes[name] = (coord.dims, np.asarray(coord.values.tolist(), dtype=str), coord.attrs)
    return ds.assign_coords(fixes) if fixes else ds


def _rewrite(group, name: str, values: np.ndarray) -> None:
    """Resize a coordinate array of ``group`` to ``values``' shape and write them."""
    arr = group[name]
    if arr.shape != values.shape:
        arr.resize(values.shape)
    if values.size:
        arr[...] = values


def totals_chunks(template: StoreTemplate) -> tuple[int, int, int, int]:
    """Chunks of ``totals (member, variable, region, time)``: one member and variable, the
    regions the store was created with (``template.region_chunk``) and ``time_chunk`` months (the
    cubes' time chunks, on the same months). The axis starts on a chunk boundary counted from
    year 0 (:func:`gridflux.pipeline.plan.axis_start`), so growth in members, variables or months
    (at either end) adds chunks or moves stored ones by whole chunks, and new regions go to new
    chunks along ``region``: a stored chunk is never rewritten by growth. (A series' totals are
    ``years x ceil(regions / region_chunk)`` chunks: one chunk per region would multiply the
    driver's chunk writes by the number of regions.)"""
    nr = template.region_chunk or max(len(template.regions), 1)
    return (1, 1, int(nr), int(template.time_chunk))


def _rewrite_time(group: Any, months: list[Month]) -> None:
    """Rewrite a group's ``time`` coordinate (as xarray encoded it: days since 1850-01-01)."""
    arr = group["time"]
    base = np.datetime64("1850-01-01", "D")
    days = (month_axis(months).astype("datetime64[D]") - base).astype(np.int64)
    _rewrite(group, "time", days.astype(arr.dtype))


def _chunk_files(array_dir: str, zarr_format: int) -> list[str]:
    """Paths (relative to ``array_dir``) of an array's chunk files."""
    out = []
    if zarr_format == 3:
        base = os.path.join(array_dir, "c")
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if not _PARTIAL_WRITE.search(name):
                    out.append(os.path.relpath(os.path.join(dirpath, name), array_dir))
    else:
        for name in os.listdir(array_dir):
            if name[0].isdigit() and not _PARTIAL_WRITE.search(name):
                out.append(name)
    return out


def _chunk_index(rel: str, zarr_format: int) -> tuple[int, ...]:
    parts = rel.replace(os.sep, "/").split("/")[1:] if zarr_format == 3 else rel.split(".")
    return tuple(int(p) for p in parts)


def _chunk_name(idx: tuple[int, ...], zarr_format: int) -> str:
    if zarr_format == 3:
        return "/".join(["c", *(str(i) for i in idx)])
    return ".".join(str(i) for i in idx)


#: Cells of a new store's cube chunks: up to 90 rows and up to 720 columns (a 0.5 deg globe's
#: width), so a chunk of 12 months is at most 3.1 MB of float32. Whole rows of the clipped grid
#: let a worker write a 12-month block as one file straight from the block, no copy of its tiles:
#: 2.6-3.1 against 3.8-4.2 ms of CPU per block with 180-column tiles on the small archive
#: (docs/benchmarks.md, "The cube path"). Stores made with 90 x 180 keep them.
CUBE_TILE_LAT = 90
CUBE_TILE_LON = 720


def cube_tiles(grid: CellBounds) -> tuple[int, int]:
    """The (lat, lon) cells of a new store's cube chunks on ``grid``."""
    return min(grid.nlat, CUBE_TILE_LAT), min(grid.nlon, CUBE_TILE_LON)


def _codec_config(codec: Any) -> dict:
    """The settings of a compressor that change the stored bytes, for comparison."""
    if hasattr(codec, "to_dict"):  # zarr 3 codec
        d = codec.to_dict()
        conf = dict(d.get("configuration", {}) or {})
        conf["name"] = d.get("name")
    else:  # numcodecs (format 2)
        conf = dict(codec.get_config())
        conf["name"] = conf.pop("id", None)
    shuffle = conf.get("shuffle")
    if isinstance(shuffle, int) and not isinstance(shuffle, bool):
        conf["shuffle"] = {0: "noshuffle", 1: "shuffle", 2: "bitshuffle"}.get(shuffle, shuffle)
    return {k: conf.get(k) for k in ("name", "cname", "clevel", "shuffle", "blocksize")}


def _array_hash(values: Any) -> str | None:
    import hashlib

    if values is None:
        return None
    a = np.ascontiguousarray(values)
    return hashlib.sha256(str(a.shape).encode() + a.tobytes()).hexdigest()[:16]


def _grid_text(lat_b: np.ndarray, lon_b: np.ndarray) -> str:
    return (
        f"{lat_b.shape[0]} x {lon_b.shape[0]} cells, lat {lat_b.min():g}..{lat_b.max():g}, "
        f"lon {lon_b.min():g}..{lon_b.max():g}"
    )


def _link_or_copy(src: str, dst: str) -> str:
    """Hard-link ``src`` to ``dst`` (a file kept as it is), or copy it where links fail."""
    import shutil

    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _is_local_fs(fs) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def _trait_array(values: list[Any]) -> np.ndarray:
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return np.asarray(values, dtype=bool)
    # variable-length strings (object): zarr 3 has a spec for them, not for fixed-width UTF-32
    return np.asarray(["" if v is None else str(v) for v in values], dtype=object)
