"""Sizes of the synthetic archive: the estimate is what gets written, ``small`` is laptop-sized,
``paper`` keeps real resolutions and spans and never writes without confirmation."""

import os

import numpy as np
import pytest

from gridflux.errors import GridfluxError
from gridflux.synthetic import archive_series, build_archive, estimate_bytes

#: the range docs/ingest.md promises for ``small``
SMALL_RANGE = (0.3e9, 1.0e9)


def _tree_bytes(root) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)


def test_small_estimate_is_in_the_stated_range():
    n = estimate_bytes("small")
    assert SMALL_RANGE[0] <= n <= SMALL_RANGE[1], n / 1e9


def test_small_data_volume_by_hand():
    # independent of estimate_bytes: float32 values = 4 bytes x cells x months, summed over series
    total = 0
    for s in archive_series("small"):
        lb, ob = s.grid.bounds()
        total += 4 * lb.shape[0] * ob.shape[0] * 12 * s.n_years
    assert SMALL_RANGE[0] <= total <= SMALL_RANGE[1]
    # 1-degree PCN-MIP npp: 180 x 360 cells x 36 months x 4 bytes per series
    pcn = [s for s in archive_series("small") if s.ensemble == "PCN-MIP" and s.variable == "npp"]
    assert len(pcn) == 10
    lb, ob = pcn[0].grid.bounds()
    assert (lb.shape[0], ob.shape[0], 12 * pcn[0].n_years) == (180, 360, 36)


def test_tiny_estimate_matches_the_written_archive(tmp_path):
    info = build_archive(tmp_path / "a", "tiny", echo=None)
    written = _tree_bytes(tmp_path / "a")
    assert info.nbytes == written
    # the estimate is the size before deflate: an upper bound, and the deflated noise keeps >= 70%
    assert written <= estimate_bytes("tiny") <= written / 0.7, (estimate_bytes("tiny"), written)


def test_paper_keeps_real_resolutions_and_years():
    series = archive_series("paper")
    starts = {s.ensemble: s.start_year for s in series}
    ends = {s.ensemble: s.start_year + s.n_years - 1 for s in series}
    assert starts["PCN-MIP"] == 1901 and ends["PCN-MIP"] == 2020
    assert starts["MsTMIP"] == 1901 and ends["MsTMIP"] == 2010
    assert starts["LS3MIP"] == 1901 and ends["LS3MIP"] == 2014
    assert ends["GCB"] == 2020 and starts["CARDAMOM"] == 2001 and ends["CARDAMOM"] == 2019
    for s in series:
        if s.ensemble in ("PCN-MIP", "MsTMIP", "ISIMIP2a", "ISIMIP2b", "ISIMIP3a", "ISIMIP3b"):
            lb, ob = s.grid.bounds()
            np.testing.assert_allclose(np.diff(lb, axis=1), 0.5)
            np.testing.assert_allclose(np.diff(ob, axis=1), 0.5)
    assert estimate_bytes("paper") > 100e9


@pytest.mark.parametrize("confirm", [None, False, lambda msg: False])
def test_paper_refuses_to_write_without_confirmation(tmp_path, confirm):
    said = []
    with pytest.raises(GridfluxError, match="not confirmed"):
        build_archive(tmp_path / "p", "paper", echo=said.append, confirm=confirm)
    assert not (tmp_path / "p").exists()
    assert len(said) == 1 and " GB " in said[0]
    gb = float(said[0].split("about ")[1].split(" GB")[0])
    assert gb == pytest.approx(estimate_bytes("paper") / 1e9, abs=0.5)


def test_cli_paper_asks_and_writes_nothing_when_declined(tmp_path):
    from typer.testing import CliRunner

    from gridflux.cli import app

    res = CliRunner().invoke(app, ["synth", str(tmp_path / "p"), "--size", "paper"], input="n\n")
    assert res.exit_code == 2  # gridflux.cli.exits.ExitCode.USAGE: not confirmed
    assert "GB to write" in res.output and "continue?" in res.output
    assert not (tmp_path / "p").exists()
