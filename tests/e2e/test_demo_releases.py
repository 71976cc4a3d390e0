"""The demo's one store for a study (issue 16, point 8): built in steps on a local cluster --
release 1's process models, then its inversions (regrid-mask), then release 2 (a new model, a new
version, one more year) -- every series checked against the planted truths after each check
point, and the budget read from that one store."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_demo_builds_one_store_in_steps_and_every_series_matches(tmp_path):
    from rich.console import Console

    from gridflux.cli.demo import run_demo
    from gridflux.pipeline.store import Store, open_store

    console = Console(record=True, width=200)
    assert run_demo(tmp_path / "demo", size="tiny", n_workers=2, console=console)
    text = console.export_text()
    assert "178 of 178 series match" in text and "179 of 179 series match" in text
    store = tmp_path / "demo" / "store.zarr"
    man = Store(store).read_manifest()
    runs = man["history"]
    assert len(runs) == 3
    assert len(runs[0]["added"]) == 178 - 32  # the process models (32 inversion series)
    assert len(runs[1]["added"]) == 32 and runs[1]["skipped"] == 178 - 32
    assert [a["series"] for a in runs[2]["added"]] == ["LS3MIP.NEWMODEL.land-hist.r1i1p1f1/npp"]
    replaced = {r["series"]: r for r in runs[2]["replaced"]}
    assert replaced["LS3MIP.CESM2.land-hist.r1i1p1f1/npp"]["to"] == "v20240101"
    assert runs[2]["grew"]["months_after"] == 12
    protocols = {k: e["protocol"] for k, e in man["series"].items()}
    assert {p for k, p in protocols.items() if k.split(".")[0] in ("GCB", "GMB", "GNB")} == {
        "regrid-mask"
    }
    assert {p for k, p in protocols.items() if k.split(".")[0] == "LS3MIP"} == {"regrid-data"}
    assert str(open_store(store)["time"].values[-1])[:7] == "2003-12"  # CARDAMOM: 2001-2003
