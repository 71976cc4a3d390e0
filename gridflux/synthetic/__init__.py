"""Synthetic RECCAP2-like archive with planted truths (see :mod:`gridflux.synthetic.archive`)."""

from gridflux.synthetic.archive import ArchiveInfo, archive_series, build_archive, estimate_bytes
from gridflux.synthetic.regions import REGIONS, Box, region_weights, write_mask

__all__ = [
    "ArchiveInfo",
    "Box",
    "REGIONS",
    "archive_series",
    "build_archive",
    "estimate_bytes",
    "region_weights",
    "write_mask",
]
