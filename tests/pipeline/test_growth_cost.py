"""Growth is cheap (issue 16, point 6): the work a run does per series already in the store is
kept small without weakening what it checks. The per-series shortcuts are exact: a local file's
fingerprint taken by one ``os.stat`` is the catalog's fingerprint field for field; comparing
fingerprints by their JSON text decides as the scrubbed, content-stripped comparison did; a
manifest entry read from the store is written back without being scrubbed again, while every
entry a run adds is scrubbed. (Times are measured in ``benchmarks/growth.py``, not asserted.)"""

from __future__ import annotations

import json
import os

import pytest

from gridflux.ingest.catalog import fingerprint as catalog_fingerprint
from gridflux.ingest.catalog import load_catalog
from gridflux.pipeline.fingerprint import local_fingerprint, series_fingerprint, unchanged
from gridflux.pipeline.store import Store

from .growth_archive import write_release


def test_a_local_fingerprint_is_the_catalogs(tmp_path):
    cat = write_release(
        tmp_path, "r", {("A", "npp"): (2000, 2, "v1"), ("B", "npp"): (2000, 1, "v1")}
    )
    for rec in load_catalog(cat).series():
        fast = local_fingerprint(rec)
        assert fast is not None
        assert json.dumps(fast, sort_keys=True) == json.dumps(
            catalog_fingerprint(rec), sort_keys=True
        )
        os.utime(rec.paths[0], ns=(1, 2))  # a touched file: another fingerprint, both ways
        assert local_fingerprint(rec) == catalog_fingerprint(rec) != fast
    # not a regular local file: left to the catalog's function (which names a missing file)
    gone = rec.model_copy(update={"paths": [str(tmp_path / "missing.nc")]})
    assert local_fingerprint(gone) is None
    zarr_dir = rec.model_copy(update={"paths": [str(tmp_path)]})
    assert local_fingerprint(zarr_dir) is None
    remote = rec.model_copy(update={"paths": ["s3://bucket/a.nc"]})
    assert local_fingerprint(remote) is None


def _scrubbed_and_stripped(fp):
    """The comparison as it was: scrub, drop content hashes, JSON round trip."""
    from gridflux.ingest.remote import scrub_tree

    def strip(e):
        if isinstance(e, dict):
            return {k: strip(v) for k, v in e.items() if k != "sha256"}
        if isinstance(e, list):
            return [strip(v) for v in e]
        return e

    return json.loads(json.dumps(strip(scrub_tree(fp)), sort_keys=True, default=str))


@pytest.mark.parametrize(
    "new,old,verify,same",
    [
        ({"paths": [{"path": "/a.nc", "size": 1, "mtime": 2.5}]}, None, False, False),
        (
            {"paths": [{"path": "/a.nc", "size": 1, "mtime": 2.5}], "fields": {"x": (1, 2)}},
            {"paths": [{"path": "/a.nc", "size": 1, "mtime": 2.5}], "fields": {"x": [1, 2]}},
            False,
            True,
        ),
        (
            {"paths": [{"path": "/a.nc", "size": 1, "mtime": 2.5}]},
            {"paths": [{"path": "/a.nc", "size": 1, "mtime": 2.5000001}]},
            False,
            False,
        ),
        # a signed URL is compared by its identity (scrubbed), however it was signed
        (
            {"paths": [{"path": "https://u:pw@h.org/a.nc?X-Amz-Signature=abc", "size": 1}]},
            {"paths": [{"path": "https://h.org/a.nc", "size": 1}]},
            False,
            True,
        ),
        # content hashes: ignored without verify, required with it
        (
            {"paths": [{"path": "/a.nc", "size": 1}]},
            {"paths": [{"path": "/a.nc", "size": 1, "sha256": "ff"}]},
            False,
            True,
        ),
        (
            {"paths": [{"path": "/a.nc", "size": 1, "sha256": "ee"}]},
            {"paths": [{"path": "/a.nc", "size": 1}]},
            True,
            False,
        ),
        (
            {"paths": [{"path": "/a.nc", "size": 1, "sha256": "ee"}]},
            {"paths": [{"path": "/a.nc", "size": 1, "sha256": "ee"}]},
            True,
            True,
        ),
    ],
)
def test_fingerprints_compare_as_the_scrubbed_stripped_trees(new, old, verify, same):
    assert unchanged(new, old, verify) is same
    if old is not None and not verify:
        assert same == (_scrubbed_and_stripped(new) == _scrubbed_and_stripped(old))


def test_entries_read_are_written_back_as_read_and_new_ones_are_scrubbed(tmp_path):
    cat = write_release(tmp_path, "r", {("A", "npp"): (2000, 1, "v1")})
    rec = load_catalog(cat).series()[0]
    st = Store(tmp_path / "s.zarr")
    os.makedirs(st.root)
    secret = "https://user:hunter2@h.org/a.nc?X-Amz-Signature=s3cr3t"
    st.write_manifest({"series": {"a/npp": {"fingerprint": series_fingerprint(rec)}}})
    man = st.read_manifest()
    man["series"]["b/npp"] = {"path": secret}  # a new entry of this run
    st.write_manifest(man)
    text = (tmp_path / "s.zarr" / "manifest.json").read_text()
    assert "hunter2" not in text and "s3cr3t" not in text
    again = Store(tmp_path / "s.zarr").read_manifest()
    assert again["series"]["a/npp"] == man["series"]["a/npp"]
    assert again["series"]["b/npp"] == {"path": "https://h.org/a.nc"}
    # an entry replaced (a new object under the same key) is scrubbed, however it got there
    man["series"]["a/npp"] = {"path": secret}
    st.write_manifest(man)
    assert "hunter2" not in (tmp_path / "s.zarr" / "manifest.json").read_text()
