"""The store's file system refuses writes midway (issue 20 point 7, the store.py part).

A disk that fills up (ENOSPC) or turns read-only (EROFS) after the run started: the manifest write
fails. The run ends with one StoreError line (no traceback from ``os.replace``), leaves no temp
file, and the same command run again completes with totals equal to the independent truths.
"""

from __future__ import annotations

import errno
import os

import pytest
from typer.testing import CliRunner

from gridflux.errors import StoreError
from gridflux.pipeline import store as store_mod
from gridflux.pipeline.runner import run

from .test_pipeline import _assert_matches_truth


def _refuse_manifest_after(monkeypatch, n_ok: int, err: int):
    """``os.replace`` of the manifest's temp file fails with ``err`` after ``n_ok`` successes."""
    real = os.replace
    calls = {"n": 0}

    def replace(src, dst, *a, **kw):
        if store_mod.MANIFEST in os.path.basename(str(src)):
            calls["n"] += 1
            if calls["n"] > n_ok:
                raise OSError(err, os.strerror(err), str(src))
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)
    return calls


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
def test_manifest_write_refused_midway_is_one_error_and_a_rerun_completes(
    mini_archive, tmp_path, monkeypatch, err
):
    store = tmp_path / "s.zarr"
    calls = _refuse_manifest_after(monkeypatch, 1, err)  # the first (pending) write succeeds
    with pytest.raises(StoreError) as info:
        run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    assert calls["n"] >= 2  # it failed after the series were computed, not at the start
    msg = str(info.value)
    assert msg.startswith(f"store {store}: cannot write manifest.json: {os.strerror(err)}")
    assert "\n" not in msg and "run the same command again" in msg
    leftovers = [f for f in os.listdir(store) if f.startswith(store_mod.MANIFEST + ".tmp")]
    assert leftovers == [] and not (store / store_mod.LOCK).exists()
    monkeypatch.undo()
    again = run(mini_archive["catalog"], mini_archive["mask"], str(store), progress=False)
    assert again.ok and len(again.done) + len(again.skipped) == 3
    _assert_matches_truth(store, mini_archive["truth"])


def test_cli_prints_one_error_line_without_traceback(mini_archive, tmp_path, monkeypatch):
    from gridflux.cli import app

    _refuse_manifest_after(monkeypatch, 0, errno.ENOSPC)
    store = tmp_path / "s.zarr"
    args = ["run", mini_archive["catalog"], "--mask", mini_archive["mask"], "--store", str(store)]
    res = CliRunner().invoke(app, [*args, "--cluster", "none", "--no-progress"])
    assert res.exit_code == 3, res.output  # ExitCode.STORE: the file system refused a write
    assert "No space left on device (errno 28)" in res.output and "Traceback" not in res.output
