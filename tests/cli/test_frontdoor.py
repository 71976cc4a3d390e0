"""The front door tried as a new user would: one-line errors with the documented exit codes,
--version, help texts and the docs that describe the command line (no store needed here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridflux.cli import app

ROOT = Path(__file__).resolve().parents[2]


def gridflux(*args, **kwargs):
    return CliRunner().invoke(app, [str(a) for a in args], **kwargs)


def one_error_line(r, code: int) -> str:
    """The result exited with ``code`` and printed exactly one error line, no traceback."""
    assert r.exit_code == code, (r.exit_code, r.output)
    assert "Traceback" not in r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1, r.stderr
    return errors[0]


def test_version():
    from gridflux import __version__

    r = gridflux("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"gridflux {__version__}"


@pytest.mark.parametrize("command", [["store", "info"], ["export"], ["budget"]])
def test_a_misspelled_or_plain_path_is_not_a_store(tmp_path, command):
    extra = ["--totals", tmp_path / "t.csv"] if command == ["export"] else []
    if command == ["budget"]:
        extra = ["--out", tmp_path / "b", "--no-figures"]
    missing = tmp_path / "stroe.zarr"
    line = one_error_line(gridflux(*command, missing, *extra), 3)
    assert str(missing) in line
    if command != ["budget"]:  # budget's reader has its own words for it (exit code the same)
        assert "no such store" in line and "check the path" in line
    plain = tmp_path / "plain"
    plain.mkdir()
    line = one_error_line(gridflux(*command, plain, *extra), 3)
    assert str(plain) in line and "not a gridflux store" in line


def test_weights_given_a_json_file(tmp_path):
    js = tmp_path / "grid.json"
    js.write_text(json.dumps({"version": 1}))
    line = one_error_line(gridflux("weights", js, js, "--out", tmp_path / "w.nc"), 2)
    assert str(js) in line and "netCDF" in line
    line = one_error_line(gridflux("weights", tmp_path / "no.nc", js, "--out", tmp_path / "w"), 2)
    assert "no.nc" in line


def test_mask_given_a_non_polygon_file(tmp_path):
    txt = tmp_path / "regions.txt"
    txt.write_text("x")
    line = one_error_line(gridflux("mask", txt, "--out", tmp_path / "m.nc"), 2)
    assert "regions.txt" in line and ".geojson" in line


def test_demo_paper_without_yes_is_refused_in_one_line(tmp_path):
    r = gridflux("demo", "--size", "paper", "--workdir", tmp_path, input="")
    line = one_error_line(r, 2)
    assert "GB" in line and "--yes" in line
    assert not (tmp_path / "archive").exists() or not any((tmp_path / "archive").iterdir())


@pytest.mark.parametrize("command", ["run", "demo"])
def test_zero_workers_is_refused_at_once(tmp_path, command):
    args = ["cat.json", "--mask", "m.nc", "--store", tmp_path / "s"] if command == "run" else []
    r = gridflux(command, *args, "--workers", "0")
    assert r.exit_code == 2 and "--workers" in r.output


def test_help_texts():
    assert "gridflux[geo]" in gridflux("mask", "--help", env={"COLUMNS": "200"}).stdout
    bench = " ".join(gridflux("bench", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "1 timed round" in bench
    # the harness's own default for --quick, which the help repeats
    harness = (ROOT / "benchmarks" / "run.py").read_text()
    assert "rounds = args.rounds or (1 if args.tiny or args.quick else 2)" in harness
    root = " ".join(gridflux("--help", env={"COLUMNS": "200"}).stdout.split())
    assert "--debug" in root and "--version" in root and "130 interrupted" in root


def test_docs_name_the_real_options():
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    assert "--n-workers" not in deploy and "--workers N" in deploy
    ingest = (ROOT / "docs" / "ingest.md").read_text()
    assert "storage-options flag yet" not in ingest and "--storage-options" in ingest
    readme = (ROOT / "README.md").read_text()
    assert 'pip install -e ".[dev]" && gridflux demo' in readme
    assert "pip install -e .  " in readme and "gridflux[s3,geo,hpc]" in readme.replace(
        '".[s3,geo,hpc]"', "gridflux[s3,geo,hpc]"
    )
    assert "python -m pytest -rA" in readme
    # every command has an example in the README
    for command in (
        "demo",
        "synth",
        "catalog build",
        "catalog check",
        "run",
        "store info",
        "export",
        "budget",
        "mask",
        "weights",
        "bench",
    ):
        assert f"gridflux {command} " in readme or f"gridflux {command}\n" in readme, command


def test_unknown_option_key_lists_the_known_ones(tmp_path):
    r = gridflux(
        "run",
        "c.json",
        "--mask",
        "m.nc",
        "--store",
        tmp_path / "s",
        "--option",
        "pipeline.chunk-monts=3",
        terminal_width=400,
    )
    assert r.exit_code == 2
    flat = " ".join(r.output.split())
    assert "chunk-monts" in flat and "pipeline.chunk-months" in flat


@pytest.mark.parametrize("width", [80, 100, 120])
def test_budget_headline_never_cuts_an_interval(width):
    import io
    from types import SimpleNamespace

    import pandas as pd
    from rich.console import Console

    from gridflux.cli.budget import print_headline

    cells = {
        "item": ["bottom_up_plus_anthropogenic", "stock_change_top_down"],
        "CO2 [Tg CO2-C/yr]": ["-163 (-671, 415)", "-1234.5 (-98765.4, 43210.9)"],
        "CH4 [Tg CH4-C/yr]": ["66.1 (51.3, 79.4)", ""],
        "N2O [Tg N2O-N/yr]": ["0.67 (0.07, 1.29)", "0.661 (0.655, 0.666)"],
        "C [Tg C/yr]": ["", "-509 (-533, -477)"],
        "N [Tg N/yr]": ["", "3.26 (2.56, 4.27)"],
        "total [Tg CO2-C eq/yr (GWP100)]": ["763 (-8.78, 1592)", "265 (200, 327)"],
    }
    from gridflux.budget.gwp import resolve_metric

    run = SimpleNamespace(
        title="RECCAP2 northern permafrost region GHG budget",
        source="/a/long/path/to/the/store.zarr",
        metric=resolve_metric("GWP100"),
        result=SimpleNamespace(propagation="linear", missing=[]),
        headline=pd.DataFrame({"label": ["a", "b"], **cells}),
        blank_totals=[],
        missing=[],
        store=None,
    )
    out = io.StringIO()
    print_headline(run, Console(file=out, width=width))
    text = out.getvalue()
    assert "…" not in text and max(map(len, text.splitlines())) <= width
    assert run.source in text  # the title names the inputs whole
    rows = [line.split("│")[1:-1] for line in text.splitlines() if line.startswith("│")]
    # a column per gas (wide) or a row per value (narrow): read each column's folded pieces in order
    columns = ["".join(row[j] for row in rows).replace(" ", "") for j in range(len(rows[0]))]
    for values in cells.values():
        for v in values:
            assert any(v.replace(" ", "") in column for column in columns), (v, text)


def test_debug_traceback_shows_no_secret_of_a_failing_url():
    """``--debug`` prints the traceback, through the same scrubber as the one-line error: a URL's
    user-info and signing token are hidden in both (the exception's message repeats the URL)."""
    url = "memory://alice:hunter2pw@bucket/nope.zarr?X-Amz-Signature=deadbeefsig"
    r = gridflux("--debug", "store", "info", url)
    assert r.exit_code == 3, r.output
    assert "Traceback" in r.stderr and "StoreError: memory://***@bucket/nope.zarr" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: memory://***@bucket/nope.zarr")
    assert "hunter2pw" not in r.output and "deadbeefsig" not in r.output
