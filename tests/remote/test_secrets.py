"""Credentials are never stored and never in argv (issue 20 point 4).

A run whose catalogs hold credentialed and signed URLs -- user-info inherited by relative rows of
a catalog read through ``http://user:password@host/``, AWS SigV4 / Azure SAS / token query
parameters on absolute rows, one of them missing so that its error is recorded -- with storage
options from a file (``--storage-options @file``), through the real CLI (``gridflux run``,
``gridflux export``). Afterwards every file of the store, the summary JSON, the exported CSV, the
log records and everything printed are searched for each planted secret. Signing the URLs again
(new signature, date and token) must not make the next run recompute anything.
"""

from __future__ import annotations

import json
import logging
import os

import pytest
from typer.testing import CliRunner

from gridflux.ingest import remote

from .conftest import selected, stage
from .faultserver import FaultServer

USER, PASSWORD = "gfuser", "pw-PLANTED-7f3a@x"
HEADER_SECRET = "HDR-PLANTED-5521"
QUERY_A = {"ensemble": "GCB", "source_id": ["CAMS", "MIROC4-ACTM"]}  # user-info, relative rows
QUERY_B = {"ensemble": "GNB", "source_id": ["INVICAT"]}  # signed absolute rows


def _signed(url: str, n: int) -> str:
    """``url`` signed like an S3 presigned URL, with per-signing secrets ``...-{n}``."""
    return (
        f"{url}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential=AKIAPLANTED{n}%2F20261205%2Fus-east-1%2Fs3%2Faws4_request"
        f"&X-Amz-Date=2026120{n}T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
        f"&X-Amz-Security-Token=STSPLANTED-{n}&X-Amz-Signature=SIGPLANTED{n}deadbeef"
        f"&sig=AZSIGPLANTED{n}&se=2026-12-0{n}&token=TOKPLANTED-{n}"
    )


def _planted(n: int) -> list[str]:
    return [
        PASSWORD,
        "pw-PLANTED",
        HEADER_SECRET,
        f"AKIAPLANTED{n}",
        f"STSPLANTED-{n}",
        f"SIGPLANTED{n}",
        f"AZSIGPLANTED{n}",
        f"TOKPLANTED-{n}",
    ]


def _write_catalogs(archive, root, url, n):
    """Catalog A (served, relative rows) and catalog B (local, absolute signed rows)."""
    from gridflux.ingest.catalog import write_catalog

    cat, _, rels_a = selected(archive, QUERY_A)
    _, _, rels_b = selected(archive, QUERY_B)
    if n == 1:
        stage(archive, rels_a + rels_b, root)
    wanted_a = {os.path.join(archive.root, r) for r in rels_a}
    rows_a = [
        r.model_copy(update={"path": str(root / os.path.relpath(r.path, archive.root))})
        for r in cat.rows
        if r.path in wanted_a
    ]
    write_catalog(rows_a, root / "a.json")
    wanted_b = {os.path.join(archive.root, r) for r in rels_b}
    rows_b = [
        r.model_copy(update={"path": _signed(f"{url}/{os.path.relpath(r.path, archive.root)}", n)})
        for r in cat.rows
        if r.path in wanted_b
    ]
    missing = rows_b[0].model_copy(
        update={"path": _signed(f"{url}/GNB/nowhere/missing.nc", n), "source_id": "GHOST"}
    )
    b = root.parent / f"signed-{n}"
    b.mkdir(exist_ok=True)
    write_catalog([*rows_b, missing], b / "b.json")
    return b / "b.json"


def _grep(blobs: dict[str, bytes], secrets: list[str]) -> list[str]:
    return [
        f"{s!r} in {name}" for name, blob in blobs.items() for s in secrets if s.encode() in blob
    ]


@pytest.mark.slow
def test_no_secret_reaches_store_logs_or_outputs(
    tiny_archive, fast_remote, tmp_path, caplog, capfd
):
    from gridflux.cli import app

    served = tmp_path / "served"
    opts = tmp_path / "options.json"
    opts.write_text(json.dumps({"client_kwargs": {"headers": {"X-Api-Key": HEADER_SECRET}}}))
    os.chmod(opts, 0o600)
    store = tmp_path / "store.zarr"
    out = tmp_path / "out"
    out.mkdir()
    caplog.set_level(logging.DEBUG, logger="gridflux")
    runner = CliRunner()
    with (
        FaultServer(str(served), auth=(USER, PASSWORD)) as srv,
        FaultServer(str(served)) as signed,
    ):
        cat_b1 = _write_catalogs(tiny_archive, served, signed.url, 1)
        host = srv.url.split("://", 1)[1]
        cat_a = f"http://{USER}:{PASSWORD.replace('@', '%40')}@{host}/a.json"

        def run(cat, summary):
            args = ["run", cat, "--mask", tiny_archive.mask, "--store", str(store)]
            args += ["--cluster", "none", "--no-progress", "--no-cubes"]
            args += ["--storage-options", f"@{opts}", "--summary-json", str(summary)]
            return runner.invoke(app, args)

        r1 = run(cat_a, out / "summary-a.json")
        assert r1.exit_code == 0, r1.output
        s1 = json.loads((out / "summary-a.json").read_text())
        assert s1["done"] == 2 and s1["failed"] == 0

        # the signed catalog: one missing object (recorded with its error), the rest done
        # (a store holds the series of one catalog's template: a second store for it)
        store_a = store
        store = tmp_path / "store-b.zarr"
        r2 = run(str(cat_b1), out / "summary-b.json")
        assert r2.exit_code == 1, r2.output  # one series failed
        s2 = json.loads((out / "summary-b.json").read_text())
        assert s2["done"] >= 1 and s2["failed"] == 1
        (err,) = s2["failures"].values()
        assert f"{signed.url}/GNB/nowhere/missing.nc" in err

        # re-signed URLs (new signature, date, token): nothing is recomputed
        cat_b2 = _write_catalogs(tiny_archive, served, signed.url, 2)
        r3 = run(str(cat_b2), out / "summary-b2.json")
        s3 = json.loads((out / "summary-b2.json").read_text())
        assert s3["done"] == 0 and s3["skipped"] == s2["done"], r3.output

        r4 = runner.invoke(app, ["export", str(store), "--totals", str(out / "totals.csv")])
        assert r4.exit_code == 0, r4.output
        r5 = runner.invoke(app, ["export", str(store_a), "--totals", str(out / "totals-a.csv")])
        assert r5.exit_code == 0, r5.output
        assert srv.plan.requests["a.json"] >= 1  # read with the credentials (else 401)

    manifest = json.loads((store / "manifest.json").read_text())
    fps = [e["fingerprint"] for e in manifest["series"].values() if e["status"] == "done"]
    paths = [p["path"] for fp in fps for p in fp["paths"]]
    assert paths and all(p.startswith(signed.url + "/GNB/") and "?" not in p for p in paths), paths
    manifest_a = json.loads((store_a / "manifest.json").read_text())
    paths_a = [p["path"] for e in manifest_a["series"].values() for p in e["fingerprint"]["paths"]]
    assert paths_a and all(p.startswith(f"http://{host}/GCB/") for p in paths_a), paths_a

    blobs: dict[str, bytes] = {}
    for root in (store_a, store, out):
        for dirpath, _, files in os.walk(root):
            for fn in files:
                full = os.path.join(dirpath, fn)
                with open(full, "rb") as f:
                    blobs[full] = f.read()
    captured = capfd.readouterr()
    blobs["stdout"] = captured.out.encode()
    blobs["stderr"] = captured.err.encode()
    blobs["cli output"] = "".join(r.output for r in (r1, r2, r3, r4, r5)).encode()
    blobs["log records"] = "\n".join(r.getMessage() for r in caplog.records).encode()
    assert len(blobs) > 20
    secrets = _planted(1) + _planted(2)
    assert not _grep(blobs, secrets)
    # the planted-secret search itself finds what it looks for
    assert _grep({"x": remote.url_identity(_signed("http://h/x", 1)).encode()}, secrets) == []
    assert _grep({"x": _signed("http://h/x", 1).encode()}, secrets)
