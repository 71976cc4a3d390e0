"""Graph size of a paper-size archive built lazily without data (issue 8, point 5).

The archive (52 model runs x 5 variables, 1850-2020 monthly on 1 deg; 14 inversions x 5
variables, 2000-2020 on 2 x 3 deg) comes from ``benchmarks/scale.py``: raw datasets over a
placeholder backend array, run through the real ``normalize`` and the real
``pipeline.series_tasks``. Workers open their series, so the graph of a series does not depend on
its unit conversion or latitude order: it is one task per span of ``task-months`` months. The
representatives below still cover every structural combination (model runs 0-5, inversions
0-1). The number of 12-month blocks of a series is known in closed form: 171 for 1850-2020, 21
for 2000-2020; with the default 120-month spans, 18 and 3 span tasks.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from benchmarks import scale  # noqa: E402

pytestmark = [pytest.mark.slow]

BATCH_TASK_LIMIT = 50_000
BATCH_BYTES_LIMIT = 50e6  # pickled graph of one batch, as the client sends it


def _per_month(s) -> bool:
    return "month" in s.units


@pytest.fixture(scope="module")
def representatives():
    series = scale.paper_series()
    reps = [
        s
        for s in series
        if s.member[:7] in {f"MODEL0{i}" for i in range(6)} or s.member[:5] in ("INV00", "INV01")
    ]
    plans = scale.paper_plans(reps)
    return scale.GraphBuilder(plans, scale.paper_mask())


def _structure(s) -> tuple:
    return (
        s.years,
        s.res,
        s.units if _per_month(s) or s.units == "kg m-2 s-1" else "scalar",
        s.descending,
        s.variable == "cSoil",
    )


def _graph_size(builder, plan) -> tuple[int, int]:
    g = scale.graph_of([builder.submitted(plan)])
    return len(g), sum(1 for k in g if str(k).startswith("gridflux-span-"))


def test_paper_archive_shape():
    series = scale.paper_series()
    assert len(series) == 52 * 5 + 14 * 5
    assert len({s.member for s in series}) == 66


def test_tasks_per_series_are_its_spans(representatives):
    assert representatives.task_months == 120
    sizes = {}
    for p in representatives.plans:
        s = p.record
        n, spans = _graph_size(representatives, p)
        blocks = 171 if s.years == (1850, 2020) else 21
        assert representatives.blocks(p) == blocks
        assert spans == -(-blocks // 10)  # 10 whole 12-month blocks per 120-month span
        assert n == spans + 2, (
            p.key,
            n,
            spans,
        )  # + the job and the mask (on a cluster a future per run)
        sizes[_structure(s)] = n
    # every structural class of the archive is covered by a representative
    assert {_structure(s) for s in scale.paper_series()} <= set(sizes)


def test_span_length_is_a_setting(representatives):
    p = representatives.plans[0]  # a 1850-2020 model series
    for task_months, spans in ((12, 171), (60, 35), (10_000, 1)):
        b = scale.GraphBuilder([p], representatives.mask, task_months=task_months)
        assert _graph_size(b, p) == (spans + 2, spans)


def test_default_batch_stays_under_stated_size(representatives):
    from gridflux import config

    batch_size = int(config.get("pipeline.batch-members"))
    assert batch_size >= 1
    series = scale.paper_series()
    # the first batch of the catalog: the longest (1 deg, 171 years) model series
    first = scale.GraphBuilder(scale.paper_plans(series[:batch_size]), scale.paper_mask())
    graph = scale.graph_of([first.submitted(p) for p in first.plans])
    whole, _ = scale.pickled_bytes(graph)
    assert len(graph) < BATCH_TASK_LIMIT and whole < BATCH_BYTES_LIMIT, (len(graph), whole)

    # worst case over any batch: batch_size series of the largest structure
    per_class = {
        _structure(p.record): _graph_size(representatives, p)[0] for p in representatives.plans
    }
    assert batch_size * max(per_class.values()) < BATCH_TASK_LIMIT
    # the whole archive (sum over its series of their class's size) is many batches: the scheduler
    # never holds it at once
    archive = sum(per_class[_structure(s)] for s in series)
    assert batch_size * max(per_class.values()) < archive / 5
    print(
        f"first batch: {len(graph)} tasks, {whole / 1e6:.1f} MB pickled; worst batch "
        f"{batch_size * max(per_class.values())} tasks; archive {archive} tasks in {len(series)} "
        "series "
        f"(max {max(per_class.values())} per series)"
    )
    assert np.isfinite(whole)
