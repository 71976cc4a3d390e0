"""A kill while the store's template is written never wedges the store (issue 16, point 7).

The template (about 90 zarr writes for the mini archive, then the completion marker) is written
by a driver in a subprocess that kills itself with SIGKILL, or interrupts itself with SIGINT as
Ctrl-C would, at its k-th write, for a k in every phase of the template: root metadata,
coordinates, totals, grid, cubes, consolidation, marker. A re-run must then give a store whose
every array is bit-identical to the store built by one uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import zarr

import gridflux.pipeline.store as store_mod
from gridflux.errors import StoreError
from gridflux.pipeline.runner import run
from gridflux.pipeline.store import MANIFEST, TEMPLATE_DONE, Store

from .test_store_lock import needs_moto
from .test_store_lock import s3 as s3  # noqa: F401 - the fixture: moto's S3 server, bucket "locks"

_KILL_AT_WRITE = """
import os, signal, sys
import zarr
import gridflux.pipeline.store as gs
from gridflux.pipeline.runner import run

catalog, mask, store, k, sig = sys.argv[1:6]
k, sig = int(k), getattr(signal, sig)
n = [0]

def tick():
    n[0] += 1
    if n[0] == k:
        os.kill(os.getpid(), sig)  # SIGINT: KeyboardInterrupt in the main thread, as Ctrl-C

orig_set = zarr.storage.LocalStore.set

async def counting_set(self, key, value, *args, **kwargs):
    tick()
    return await orig_set(self, key, value, *args, **kwargs)

zarr.storage.LocalStore.set = counting_set
orig_marker = gs.Store.write_template_marker

def counting_marker(self, template):
    tick()
    return orig_marker(self, template)

gs.Store.write_template_marker = counting_marker
run(catalog, mask, store, progress=False)
sys.exit(3)  # not interrupted
"""


def zarr_arrays(path) -> dict[str, np.ndarray]:
    """Every array of a store (a local path, or a zarr store object) by path, read with zarr."""
    root = zarr.open_group(path if hasattr(path, "get") else str(path), mode="r")
    return {name: np.asarray(a[...]) for name, a in root.arrays()} | {
        f"{g}/{name}": np.asarray(a[...])
        for g, grp in root.groups()
        for name, a in _walk_arrays(grp)
    }


def _walk_arrays(group):
    for name, a in group.arrays():
        yield name, a
    for gname, g in group.groups():
        for name, a in _walk_arrays(g):
            yield f"{gname}/{name}", a


def assert_stores_equal(a, b) -> None:
    """Same arrays, each bit-identical (float arrays compared as bytes, so NaN == NaN)."""
    xa, xb = zarr_arrays(a), zarr_arrays(b)
    assert sorted(xa) == sorted(xb)
    for name in xa:
        va, vb = xa[name], xb[name]
        assert va.dtype == vb.dtype and va.shape == vb.shape, name
        if va.dtype.kind in "fiub":
            assert va.tobytes() == vb.tobytes(), name
        else:
            assert va.tolist() == vb.tolist(), name


@pytest.fixture(scope="module")
def template_writes(mini_archive, tmp_path_factory):
    """The clean store, and the template's writes in order (zarr keys, then the marker)."""
    keys: list[str] = []
    orig_set = zarr.storage.LocalStore.set
    orig_marker = store_mod.Store.write_template_marker

    async def recording_set(self, key, value, *args, **kwargs):
        keys.append(key)
        return await orig_set(self, key, value, *args, **kwargs)

    def recording_marker(self, template):
        keys.append(TEMPLATE_DONE)
        return orig_marker(self, template)

    mp = pytest.MonkeyPatch()
    mp.setattr(zarr.storage.LocalStore, "set", recording_set)
    mp.setattr(store_mod.Store, "write_template_marker", recording_marker)
    clean = tmp_path_factory.mktemp("clean") / "s.zarr"
    try:
        assert run(mini_archive["catalog"], mini_archive["mask"], str(clean), progress=False).ok
    finally:
        mp.undo()
    return clean, keys[: keys.index(TEMPLATE_DONE) + 1]


def _phases(keys: list[str]) -> dict[str, int]:
    """The 1-based index of a write in each phase of the template."""

    def first(pred):
        return next(i for i, k in enumerate(keys) if pred(k)) + 1

    return {
        "root": 1,
        "coordinate": first(
            lambda k: "/c/" in k and "/" in k and not k.startswith(("grid", "cubes"))
        ),
        "totals": first(lambda k: k.startswith("totals/")),
        "grid": first(lambda k: k.startswith("grid/")),
        "grid-data": first(lambda k: k.startswith("grid/") and "/c/" in k),
        "cubes": first(lambda k: k.startswith("cubes/")),
        "consolidation": len(keys) - 1,  # the root's zarr.json rewritten with all metadata
        "marker": len(keys),
    }


def test_template_phases_are_what_the_kill_test_expects(template_writes):
    _, keys = template_writes
    assert keys[-1] == TEMPLATE_DONE and keys[-2] == "zarr.json"
    assert len(set(_phases(keys).values())) == len(_phases(keys))


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGKILL", "SIGINT"])
@pytest.mark.parametrize(
    "phase",
    ["root", "coordinate", "totals", "grid", "grid-data", "cubes", "consolidation", "marker"],
)
def test_kill_while_template_is_written_then_rerun_gives_the_store_built_once(
    mini_archive, template_writes, tmp_path, sig, phase
):
    clean, keys = template_writes
    k = _phases(keys)[phase]
    store = tmp_path / "s.zarr"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILL_AT_WRITE,
            mini_archive["catalog"],
            mini_archive["mask"],
            str(store),
            str(k),
            sig,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 3, f"not interrupted at write {k}: {proc.stderr[-2000:]}"
    if sig == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
    else:
        assert "KeyboardInterrupt" in proc.stderr or proc.returncode == -signal.SIGINT
    assert not (store / TEMPLATE_DONE).exists()  # interrupted before the template was complete
    st = Store(store)
    assert not st.exists() and st.template_state() in ("incomplete", "absent")
    summary = run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    assert summary.ok and len(summary.done) == 3, summary.failed
    assert_stores_equal(clean, store)
    assert (store / TEMPLATE_DONE).exists()


def test_incomplete_template_with_done_series_is_refused_not_deleted(mini_archive, tmp_path):
    """A store whose manifest has done series is never removed as an 'incomplete template'."""
    store = tmp_path / "s.zarr"
    assert run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False).ok
    (store / TEMPLATE_DONE).unlink()
    man = json.loads((store / MANIFEST).read_text())
    man.pop("config_hash")  # no longer recognisable as a store made before the marker existed
    (store / MANIFEST).write_text(json.dumps(man))
    assert Store(store).template_state() == "incomplete"
    with pytest.raises(StoreError, match="damaged"):
        run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    assert (store / "totals").exists()


def test_a_directory_of_other_files_is_never_deleted_as_an_incomplete_template(
    mini_archive, tmp_path
):
    store = tmp_path / "data"
    store.mkdir()
    (store / "precious.nc").write_bytes(b"not a store")
    with pytest.raises(StoreError, match=r"not part of a gridflux store \(e.g. .*precious.nc"):
        run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    assert (store / "precious.nc").read_bytes() == b"not a store"


def test_store_made_before_the_marker_is_still_complete(mini_archive, tmp_path):
    store = tmp_path / "s.zarr"
    assert run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False).ok
    (store / TEMPLATE_DONE).unlink()  # as a store written by gridflux before this change
    assert Store(store).exists()
    again = run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    assert len(again.skipped) == 3


@needs_moto
def test_interrupted_template_on_s3_is_redone(mini_archive, template_writes, s3, monkeypatch):
    """On S3: a template interrupted just before its marker is removed and written again."""
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    clean, _ = template_writes
    url = "s3://locks/template.zarr"

    def interrupted(self, template):
        raise KeyboardInterrupt  # Ctrl-C after every zarr write of the template, before the marker

    with monkeypatch.context() as m:
        m.setattr(store_mod.Store, "write_template_marker", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run(
                mini_archive["catalog"], mini_archive["mask"], url, store_options=s3, progress=False
            )
    st = Store(url, s3)
    assert st.template_state() == "incomplete" and st.lock_info() is None
    summary = run(
        mini_archive["catalog"], mini_archive["mask"], url, store_options=s3, progress=False
    )
    assert summary.ok and len(summary.done) == 3
    assert Store(url, s3).exists()
    assert_stores_equal(clean, Store(url, s3).zarr_store())
