"""report.html in a real headless browser (Debian's ``chromium``): the page loads without console
errors, every figure is visible and not blank on a screenshot, and every row of every CSV the
budget wrote is in the page. Skipped, with the reason, when chromium is not installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from gridflux.budget.api import compute_budget, write_budget

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]
#: a script added to a copy of the page: each figure's box (page coordinates) and the page height
PROBE = """<script>
const r = [...document.querySelectorAll('figure.fig')].map(f => {
  const b = f.querySelector('svg').getBoundingClientRect();
  return {id: f.id, x: b.left + scrollX, y: b.top + scrollY, w: b.width, h: b.height};
});
const pre = document.createElement('pre'); pre.id = 'probe';
pre.textContent = JSON.stringify({figs: r, height: document.documentElement.scrollHeight});
document.body.appendChild(pre);
</script>"""


def chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, *args], capture_output=True, text=True, timeout=timeout
    )


class Tables(HTMLParser):
    """Every <table> of a page as (class, header cells, body rows of cell texts)."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell, self._row, self._in = [], None, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([dict(attrs).get("class", ""), [], []])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell, self._in = [], tag

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self.tables:
            t = self.tables[-1]
            (t[1].extend(self._row) if self._in == "th" and not t[1] else t[2].append(self._row))
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from conftest import make_totals  # the small store of the budget tests

    d = tmp_path_factory.mktemp("report")
    path = str(d / "store.zarr")
    make_totals().to_dataset().to_zarr(path, mode="w")
    run = compute_budget(path, metric="GWP20", gwp_set="reccap2-paper")
    files = write_budget(run, d / "out")
    return run, files


def test_page_loads_without_console_errors(report):
    _, files = report
    html = open(files["report.html"], encoding="utf-8").read()
    assert not re.search(r'(src|href)="(?!#)', html), "the report must not load anything"
    res = chromium(
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        "file://" + os.path.abspath(files["report.html"]),
    )
    assert res.returncode == 0, res.stderr[-2000:]
    console = [ln for ln in res.stderr.splitlines() if ":CONSOLE" in ln]
    assert not console, console
    assert "<h1>" in res.stdout and "region 'permafrost'" in res.stdout


def test_every_csv_row_is_in_the_page(report):
    run, files = report
    res = chromium("--dump-dom", "file://" + os.path.abspath(files["report.html"]))
    p = Tables()
    p.feed(res.stdout)
    by_class = {}
    for cls, head, rows in p.tables:
        by_class.setdefault(cls.split()[-1] if cls else "", (head, rows))
    csvs = [n for n in files if n.endswith(".csv")]
    assert {"budget.csv", "members.csv", "missing.csv", "period_coverage.csv"} <= set(csvs)
    checked = 0
    for name in csvs:
        csv = pd.read_csv(files[name], dtype=str, keep_default_na=False)
        if csv.empty:
            continue
        head, rows = by_class[{"gwp_values.csv": "gwp"}.get(name, name[:-4])]
        if "region" not in head:  # the page names the region in its title
            csv = csv.drop(columns="region")
        idx = [head.index(c) for c in csv.columns]
        page = Counter(tuple(norm(r[i]) for i in idx) for r in rows if len(r) == len(head))
        want = Counter(tuple(norm(v) for v in row) for row in csv.itertuples(index=False))
        assert sum(page.values()) == len(csv), name
        lost = want - page
        assert not lost, f"{name}: rows not in the page: {list(lost)[:3]}"
        checked += len(csv)
    assert checked > 50


def norm(cell: str) -> str:
    """A cell as text, numbers to 6 significant digits (the page and the CSV print them in full)."""
    c = str(cell).strip()
    if c in ("nan", "<NA>", "NaN"):
        return ""
    try:
        return f"{float(c):.6g}"
    except ValueError:
        return c


def test_every_figure_is_visible_and_not_blank(report, tmp_path):
    from PIL import Image

    run, files = report
    page = open(files["report.html"], encoding="utf-8").read().replace("</body>", PROBE + "</body>")
    probe = tmp_path / "probe.html"
    probe.write_text(page, encoding="utf-8")
    res = chromium("--window-size=1400,1000", "--dump-dom", "file://" + str(probe))
    m = re.search(r'<pre id="probe">(.*?)</pre>', res.stdout, re.S)
    assert m, res.stderr[-2000:]
    info = json.loads(m.group(1).replace("&quot;", '"'))
    svgs = [n for n in files if n.endswith(".svg")]
    assert len(info["figs"]) == len(svgs) >= 5
    height = int(info["height"]) + 10
    shot = tmp_path / "shot.png"
    res = chromium(f"--window-size=1400,{height}", f"--screenshot={shot}", "file://" + str(probe))
    assert shot.exists(), res.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("L"), dtype=float) / 255
    for f in info["figs"]:
        assert f["w"] > 300 and f["h"] > 150, f"{f['id']} is not visible: {f}"
        y0, x0 = int(f["y"]), int(f["x"])
        crop = img[y0 : y0 + int(f["h"]), x0 : x0 + int(f["w"])]
        assert crop.size and crop.std() > 0.05, f"{f['id']} looks blank on the screenshot"
