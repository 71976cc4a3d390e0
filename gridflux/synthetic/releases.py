"""Releases of the synthetic archive, as a study's archive changes over the years.

:func:`build_releases` writes the archive of :func:`gridflux.synthetic.build_archive` as two
releases, each with its catalogs and planted truths:

* **release 1** (``release1/``): the process models (``models.json``, intake-esm) and the
  inversions (``inversions.yaml``, intake YAML; GCB, GMB and GNB are inversion ensembles, whose
  default protocol is ``regrid-mask``); all of it also in ``catalog.json`` at the root;
* **release 2** (``release2/``): every series one year longer, one model (:data:`NEW_MEMBER`)
  more, and one series (:data:`REPLACED`) in a new dataset version with other values.

A series' first years are the same values in both releases (the field of a series depends on
its index and its first year only), so a store grown from release 1 to release 2 computes the
new and changed series, and every series' totals can be checked against ``release2/truth.csv``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass

from gridflux.synthetic.archive import (
    SIZES,
    archive_series,
    estimate_bytes,
    write_inversions_yaml,
    write_series_files,
    write_truth_csv,
)
from gridflux.synthetic.regions import write_mask

#: The ensembles written to the inversions' YAML catalog (their kind is "inversion").
INVERSION_ENSEMBLES = ("GCB", "GMB", "GNB")
#: The model release 2 adds (a copy of the first LS3MIP model's set-up under another name).
NEW_MEMBER = "NEWMODEL"
#: Release 2 gives this series (the first CMIP6-layout one) a new version with other values.
REPLACED_VERSION = "v20240101"


@dataclass
class Release:
    """The files of one release: catalogs, truths, and what it changed."""

    root: str
    models: str  # intake-esm catalog of the process models
    inversions: str  # intake YAML catalog of the inversions
    truth: str
    n_series: int
    added: list[str] = dataclasses.field(default_factory=list)
    replaced: list[str] = dataclasses.field(default_factory=list)


@dataclass
class Releases:
    mask: str
    first: Release
    second: Release


def build_releases(
    root: str | os.PathLike,
    size: str = "tiny",
    seed: int = 0,
    confirm: bool | Callable[[str], bool] | None = None,
) -> Releases:
    """Write release 1 and release 2 of the synthetic archive under ``root`` (see module doc).

    ``confirm`` is required for ``size="paper"`` (twice the hundreds of GB of
    :func:`~gridflux.synthetic.build_archive`): True, or a callable given the size message that
    returns whether to go on; without it :class:`~gridflux.errors.GridfluxError` is raised
    before anything is written."""
    from gridflux.errors import GridfluxError
    from gridflux.ingest.catalog import write_catalog

    if size not in SIZES:
        raise ValueError(f"size {size!r}; expected one of {SIZES}")
    if size == "paper":
        msg = (
            f"paper-size synthetic archive in two releases: about "
            f"{2 * estimate_bytes(size, seed) / 1e9:.0f} GB to write under {root}"
        )
        ok = confirm(msg + "; continue?") if callable(confirm) else bool(confirm)
        if not ok:
            raise GridfluxError(f"{msg}: not confirmed; pass confirm=True (CLI: --yes) to write it")
    root = os.path.abspath(os.fspath(root))
    series = archive_series(size, seed)
    indexed = list(enumerate(series))
    mask = write_mask(os.path.join(root, "regions.nc")) if _mkdir(root) else ""

    # release 2: one year more for everyone, a new model, a new version of one series
    cmip = next(i for i, s in indexed if s.layout == "cmip6")
    template = series[cmip]
    new = dataclasses.replace(template, source_id=NEW_MEMBER, extra={})
    longer = [(i, dataclasses.replace(s, n_years=s.n_years + 1)) for i, s in indexed]
    longer = [
        (i, dataclasses.replace(s, scale=s.scale * 1.25) if i == cmip else s) for i, s in longer
    ]
    second_series = longer + [(len(series), dataclasses.replace(new, n_years=new.n_years + 1))]

    releases = []
    all_rows = []
    for name, items in (("release1", indexed), ("release2", second_series)):
        d = os.path.join(root, name)
        _mkdir(d)
        rows, truths, _files = write_series_files(d, items, seed)
        if name == "release2":
            for r in rows:
                if r["source_id"] == template.source_id and r["ensemble"] == template.ensemble:
                    if r["variable"] == template.variable and r["member_id"] == template.member_id:
                        r["version"] = REPLACED_VERSION
        all_rows.append(rows)
        inv = [r for r in rows if r["ensemble"] in INVERSION_ENSEMBLES]
        models = [r for r in rows if r["ensemble"] not in INVERSION_ENSEMBLES]
        cat = write_catalog(
            models,
            os.path.join(d, "models.json"),
            description=f"gridflux synthetic archive, {name}: process models",
            catalog_id=f"gridflux-synthetic-{size}-{name}",
        )
        releases.append(
            Release(
                root=d,
                models=str(cat),
                inversions=write_inversions_yaml(d, inv),
                truth=write_truth_csv(os.path.join(d, "truth.csv"), truths),
                n_series=len(items),
            )
        )
    # release 1 in one catalog at the archive's root, as build_archive writes it
    write_catalog(
        all_rows[0],
        os.path.join(root, "catalog.json"),
        description=f"gridflux synthetic archive (size={size}, seed={seed}), release 1",
        catalog_id=f"gridflux-synthetic-{size}",
    )
    releases[1].added = [f"{new.member}/{new.variable}"]
    releases[1].replaced = [f"{template.member}/{template.variable}"]
    return Releases(mask=mask, first=releases[0], second=releases[1])


def _mkdir(path: str) -> bool:
    os.makedirs(path, exist_ok=True)
    return True
