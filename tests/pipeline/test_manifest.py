"""The manifest journal: O(1) per finished series, replayed by every reader, compacted by a full
write, and a run SIGKILLed after some series resumes without redoing any of them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import fsspec
import numpy as np
import xarray as xr

from gridflux.pipeline import manifest as mj
from gridflux.pipeline.runner import run
from gridflux.pipeline.store import Store


def test_journal_lines_replay_in_order_and_a_torn_line_is_ignored(tmp_path):
    fs = fsspec.filesystem("file")
    d = str(tmp_path / "manifest.json.d")
    j = mj.Journal(fs, d)
    j.record("a/npp", {"status": "pending"})
    j.record("b/npp", {"status": "done", "bytes": 3})
    j.record("a/npp", {"status": "done", "bytes": 1})
    (path,) = mj.journal_files(fs, d)
    with open(path, "a") as f:
        f.write('{"key": "c/npp", "entry": {"status": "do')  # killed mid-write
    m = mj.replay(fs, d, {"series": {"a/npp": {"status": "failed"}, "z/rh": {"status": "done"}}})
    assert m["series"] == {
        "a/npp": {"status": "done", "bytes": 1},
        "b/npp": {"status": "done", "bytes": 3},
        "z/rh": {"status": "done"},
    }


def test_a_record_appends_one_line_and_never_rewrites_the_manifest(tmp_path):
    """O(1): the journal grows by exactly one line per series; manifest.json is untouched."""
    st = Store(str(tmp_path / "s.zarr"))
    os.makedirs(st.root)
    st.write_manifest({"series": {f"m{i}/npp": {"status": "pending"} for i in range(2000)}})
    before = os.stat(os.path.join(st.root, "manifest.json"))
    j = mj.Journal(st.fs, os.path.join(st.root, mj.JOURNAL_DIR))
    sizes = []
    for i in range(50):
        j.record(f"m{i}/npp", {"status": "done", "n": i})
        (path,) = mj.journal_files(st.fs, j.directory)
        sizes.append(os.path.getsize(path))
    line = len(json.dumps({"entry": {"n": 10, "status": "done"}, "key": "m10/npp"})) + 1
    assert sizes[11] - sizes[10] == line
    after = os.stat(os.path.join(st.root, "manifest.json"))
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    # every reader sees the journal; a full write supersedes and removes it
    m = st.read_manifest()
    assert m["series"]["m7/npp"] == {"status": "done", "n": 7}
    assert m["series"]["m1999/npp"] == {"status": "pending"}
    st.write_manifest(m)
    assert mj.journal_files(st.fs, j.directory) == []
    assert st.read_manifest() == m


def test_object_store_journal_writes_shards(tmp_path, monkeypatch):
    fs = fsspec.filesystem("memory")
    monkeypatch.setattr(mj, "SHARD_INTERVAL", 3600.0)
    j = mj.Journal(fs, "/bucket/s.zarr/manifest.json.d")
    for i in range(5):
        j.record(f"m{i}/npp", {"status": "done"})
    assert mj.journal_files(fs, j.directory) == []  # buffered until the interval passes
    j.flush()
    j.record("m9/npp", {"status": "failed"})
    j.flush()
    assert len(mj.journal_files(fs, j.directory)) == 2
    m = mj.replay(fs, j.directory, {})
    assert len(m["series"]) == 6 and m["series"]["m9/npp"]["status"] == "failed"
    mj.clear(fs, j.directory)
    assert mj.journal_files(fs, j.directory) == []


KILL_AFTER = """
import os, signal, sys
from gridflux.pipeline.runner import run
n_kill = int(sys.argv[4])
def progress(n, total, key):
    if n == n_kill:  # SIGKILL as the series' journal line is written: no cleanup of any kind
        os.kill(os.getpid(), signal.SIGKILL)
run(sys.argv[1], sys.argv[2], sys.argv[3], progress=progress, cubes=True)
"""


def test_sigkill_after_half_the_series_resumes_without_redoing_them(mini_archive, tmp_path):
    clean = tmp_path / "clean.zarr"
    full = run(mini_archive["catalog"], mini_archive["mask"], str(clean), progress=False)
    n = len(full.done)
    assert n == 3
    killed = tmp_path / "killed.zarr"
    half = 2
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.run(
        [sys.executable, "-c", KILL_AFTER, mini_archive["catalog"], mini_archive["mask"],
         str(killed), str(half)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    m = Store(str(killed)).read_manifest()["series"]
    assert sorted(e["status"] for e in m.values()) == ["done", "done", "pending"]
    again = run(mini_archive["catalog"], mini_archive["mask"], str(killed), progress=False)
    assert len(again.skipped) == half and len(again.done) == n - half and again.ok
    a, b = xr.open_zarr(clean), xr.open_zarr(killed)
    np.testing.assert_array_equal(a["totals"].values, b["totals"].values)
    np.testing.assert_array_equal(
        xr.open_zarr(clean, group="cubes/npp")["npp"].values,
        xr.open_zarr(killed, group="cubes/npp")["npp"].values,
    )
    assert mj.journal_files(Store(str(killed)).fs, str(killed / mj.JOURNAL_DIR)) == []


def test_journal_lines_are_scrubbed_like_the_manifest(tmp_path):
    """No credential reaches the journal: entries go through the same scrub as manifest.json."""
    st = Store(str(tmp_path / "s.zarr"))
    os.makedirs(st.root)
    j = mj.Journal(st.fs, os.path.join(st.root, mj.JOURNAL_DIR), st)
    j.record("m/npp", {"status": "failed", "error": "cannot read s3://AKIA:SECRETXYZ@bkt/a.nc"})
    (path,) = mj.journal_files(st.fs, j.directory)
    text = open(path).read()
    assert "SECRETXYZ" not in text and "bkt/a.nc" in text
