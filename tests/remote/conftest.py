"""Fixtures of the remote tests: the tiny synthetic archive, a fast retry policy, and helpers to
select a few series of it with their planted truths.

Servers are started by the tests themselves on 127.0.0.1 and a free port (moto's S3 server in
``test_s3.py``, the fault-injecting HTTP server of ``faultserver.py`` elsewhere).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from gridflux import config


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory):
    """The tiny synthetic archive (catalog.json/csv, files, regions.nc, truth.csv), built once."""
    from gridflux.synthetic import build_archive

    return build_archive(tmp_path_factory.mktemp("remote-archive"), size="tiny", echo=None)


@pytest.fixture
def fast_remote():
    """Retries that are quick to exhaust and a 1 s timeout (a test server stalls for 3 s)."""
    with config.set_options(
        **{
            "remote.retries": 4,
            "remote.backoff": 0.01,
            "remote.backoff-max": 0.05,
            "remote.timeout": 1.0,
            "remote.connect-timeout": 1.0,
        }
    ):
        yield


def selected(archive, query):
    """(series records of the local catalog, relative paths of their files incl. fx)."""
    from gridflux.ingest.catalog import load_catalog

    cat = load_catalog(archive.catalog)
    records = cat.series(query)
    rels = set()
    for r in records:
        for p in list(r.paths) + list(r.fx_paths.values()):
            rels.add(os.path.relpath(p, archive.root))
    return cat, records, sorted(rels)


def truth_subset(archive, members, out: Path) -> Path:
    """The planted truths of some series (``member/variable`` keys) as a truth CSV of their own."""
    truth = pd.read_csv(archive.truth, dtype={"time": str})
    keys = truth["member"] + "/" + truth["variable"]
    sub = truth[keys.isin(set(members))]
    assert len(sub), "no truth rows selected"  # a fixture precondition, not a test of the code
    sub.to_csv(out, index=False)
    return out


def stage(archive, rels, dest: Path) -> Path:
    """Copy (hard-link) some archive files into ``dest`` under the same relative paths."""
    for rel in rels:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(os.path.join(archive.root, rel), target)
        except OSError:
            shutil.copy2(os.path.join(archive.root, rel), target)
    return dest
