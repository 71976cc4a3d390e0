"""Targets of issue 9 evaluated on a run's records, the printed tables and benchmarks/RESULTS.md.

``python benchmarks/report.py benchmarks/results.json`` prints the Markdown of the measured part of
RESULTS.md (tables, machine, targets with PASS/FAIL) to stdout.
"""

from __future__ import annotations

import json
import sys


def _methods(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("kind") == "method"]


def _get(records: list[dict], case: str, method: str) -> dict | None:
    return next((r for r in _methods(records) if r["case"] == case and r["method"] == method), None)


def _target(name: str, value, limit: float, op: str, detail: str = "") -> dict:
    if value is None:
        ok = None
    else:
        ok = bool(value <= limit) if op == "<=" else bool(value >= limit)
    return {
        "kind": "target",
        "name": name,
        "value": value,
        "limit": limit,
        "op": op,
        "pass": ok,
        "detail": detail,
    }


def targets(records: list[dict]) -> list[dict]:
    """One record per target line of issue 9 point 3-4 (``pass`` None when not measured)."""
    out = []
    cases = sorted({r["case"] for r in _methods(records)})
    for c in cases:
        zlib = c.endswith("zlib")
        f = _get(records, c, "fused")
        if f:
            out.append(
                _target(
                    f"fused totals / raw decode ({c})",
                    f["ratio_to_raw"],
                    1.2 if zlib else 1.3,
                    "<=",
                )
            )
            out.append(
                _target(
                    f"fused totals / natural CDO one-liner ({c}) [>= 5x faster]",
                    f["ratio_to_cdo"],
                    0.2,
                    "<=",
                )
            )
            t = _get(records, c, "cdo-tuned")
            if t and t.get("seconds_median") and f.get("seconds_median"):
                floor = _get(records, c, "startup")
                detail = (
                    f"Python start-up alone: {floor['seconds_median'] / t['seconds_median']:.2f}x "
                    "CDO's whole job"
                    if floor and floor.get("seconds_median")
                    else ""
                )
                out.append(
                    _target(
                        f"fused totals / tuned CDO ({c}) [never slower]",
                        f["seconds_median"] / t["seconds_median"],
                        1.0,
                        "<=",
                        detail,
                    )
                )
            out.append(
                _target(
                    f"fused totals vs CDO remapcon, same areas ({c})", f["max_rel_diff"], 1e-9, "<="
                )
            )
        cb = _get(records, c, "cube")
        if cb:
            out.append(_target(f"cube + totals / raw decode ({c})", cb["ratio_to_raw"], 2.0, "<="))
            out.append(
                _target(f"cube + totals vs CDO remapcon ({c})", cb["max_rel_diff"], 1e-9, "<=")
            )
    for z in (r for r in records if r.get("kind") == "zarr"):
        out.append(
            _target(
                f"zarr write of the clipped cube / raw decode ({z['case']})",
                z["ratio_to_raw"],
                0.3,
                "<=",
            )
        )
        out.append(
            _target(f"zarr compression ratio ({z['case']})", z["compression_ratio"], 1.3, ">=")
        )
    member = next((c for c in ("05deg-zlib", "latlon-zlib") if c in cases), None)
    if member:
        f = _get(records, member, "fused")
        if f:
            out.append(
                _target(
                    f"peak RSS of fused totals, {member} member (MB)", f["peak_rss_mb"], 256, "<="
                )
            )
            if f.get("weights_s_median") is not None and f.get("seconds_median"):
                out.append(
                    _target(
                        f"weight building / member time ({member})",
                        f["weights_s_median"] / f["seconds_median"],
                        0.05,
                        "<=",
                        f"{f['weights_s_median']:.3f} s of {f['seconds_median']:.2f} s",
                    )
                )
    mem = sorted((r for r in records if r.get("kind") == "memory"), key=lambda r: r["months"])
    if len(mem) >= 2:
        out.append(
            _target(
                f"peak RSS flat in months ({mem[-1]['months']} vs {mem[0]['months']} months, "
                "ratio)",
                mem[-1]["peak_rss_mb"] / mem[0]["peak_rss_mb"],
                1.1,
                "<=",
                f"{mem[0]['peak_rss_mb']:.0f} MB vs {mem[-1]['peak_rss_mb']:.0f} MB",
            )
        )
    imp = next((r for r in records if r.get("kind") == "import"), None)
    if imp:
        out.append(_target("import gridflux (s)", imp["seconds_median"], 0.5, "<="))
    from benchmarks.scaling import CEILING_LABEL as CEILING_TOOL  # the reference, not a target

    effs = [r for r in records if r.get("kind") == "scaling" and r.get("what") == "efficiency"]
    ceilings = {r.get("member_years"): r["efficiency"] for r in effs if r["tool"] == CEILING_TOOL}
    for s in (r for r in effs if r["tool"] != CEILING_TOOL):
        ceiling = ceilings.get(s.get("member_years"))
        note = f"; machine ceiling {ceiling:.2f}" if ceiling else ""
        out.append(
            _target(
                f"parallel efficiency 1 -> 2 workers, {s['tool']} ({s['timing']}){_years(s)}",
                s["efficiency"],
                0.85,
                ">=",
                f"t1 {s['t1']:.2f} s, t2 {s['t2']:.2f} s, {s['members']} members{note}",
            )
        )
    for s in (r for r in records if r.get("kind") == "scaling" and r.get("what") == "per-member"):
        out.append(
            _target(
                f"per-member time at {s['members']} vs 1 member, {s['tool']} "
                f"({s['timing']}){_years(s)}",
                s["ratio"],
                1.1,
                "<=",
                f"{s['per_member_many']:.2f} s vs {s['per_member_one']:.2f} s",
            )
        )
    return out


def _years(rec: dict) -> str:
    """ ", 40-year members" for scaling records of members longer than one file (older JSON: "")."""
    years = rec.get("member_years")
    return f", {years:g}-year members" if years else ""


def _fmt(x, spec: str = ".3g") -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and spec == "e":
        return f"{x:.1e}"
    return format(x, spec)


def method_rows(records: list[dict]) -> list[list[str]]:
    rows = []
    for r in _methods(records):
        status = (
            r.get("skipped")
            and f"skipped: {r['skipped']}"
            or r.get("error")
            and f"error: {r['error'][:80]}"
            or ""
        )
        rows.append(
            [
                r["case"],
                r["method"],
                _fmt(r["seconds_min"], ".2f"),
                _fmt(r["seconds_median"], ".2f"),
                _fmt(r["seconds_max"], ".2f"),
                _fmt(r["mb_per_s"], ".0f"),
                _fmt(r["ratio_to_raw"], ".2f"),
                _fmt(r["ratio_to_cdo"], ".2f"),
                _fmt(r["peak_rss_mb"], ".0f"),
                _fmt(r["max_rel_diff"], "e"),
                status,
            ]
        )
    return rows


HEAD = [
    "case",
    "method",
    "s min",
    "s median",
    "s max",
    "MB/s",
    "x raw",
    "x CDO",
    "RSS MB",
    "max rel diff",
    "note",
]


def print_tables(records: list[dict]) -> None:
    """The method table (one per case, notes below it: readable at 80 columns), the other records
    and the targets."""
    from rich.console import Console
    from rich.table import Table

    con = Console()
    con.print("[bold]gridflux vs the decode limit and the peers[/bold] (whole processes, medians)")
    rows = method_rows(records)
    for case in dict.fromkeys(row[0] for row in rows):
        t = Table(title=f"case {case}", title_justify="left")
        t.add_column("method", overflow="fold")
        for h in ("s median\n(min-max)", "MB/s", "x raw", "x CDO", "RSS MB", "max rel\ndiff"):
            t.add_column(h, justify="right", no_wrap=True)
        notes = []
        for _, method, smin, smed, smax, *rest, note in (r for r in rows if r[0] == case):
            t.add_row(method, f"{smed}\n({smin}-{smax})" if smed != "-" else "-", *rest)
            if note:
                notes.append(f"  {method}: {note}")
        con.print(t)
        for line in notes:
            con.print(line)
    for kind in ("weights", "zarr", "memory", "import", "scaling"):
        rs = [r for r in records if r.get("kind") == kind]
        if rs:
            con.print(f"[bold]{kind}[/bold]")
            for r in rs:
                con.print(
                    "  " + json.dumps({k: v for k, v in r.items() if k != "kind"}, default=str)
                )
    tt = Table(title="targets (issue 9)")
    for h in ("target", "value", "limit", "result"):
        tt.add_column(h)
    for r in (r for r in records if r.get("kind") == "target"):
        res = (
            "n/a"
            if r["pass"] is None
            else ("[green]PASS[/green]" if r["pass"] else "[red]FAIL[/red]")
        )
        tt.add_row(r["name"], _fmt(r["value"], ".3g"), f"{r['op']} {r['limit']:g}", res)
    con.print(tt)


def markdown(records: list[dict]) -> str:
    """The measured part of RESULTS.md."""
    h = next(r for r in records if r.get("kind") == "header")
    v = h["versions"]
    lines = [
        f"Run on {h['date']} (`{h['command']}`, git {h.get('git_commit', '?')}, {h.get('rounds')} "
        "timed rounds "
        f"after a warm-up, total {h.get('total_seconds', 0) / 60:.1f} min).",
        "",
        f"Machine: {h['cores']} cores, {h['cpu']}, {h.get('memory_gb') or 0:.0f} GB; "
        f"{h['platform']}; load average "
        f"{', '.join(f'{x:.2f}' for x in h['load_average_start'])} at the start, "
        f"{', '.join(f'{x:.2f}' for x in h.get('load_average_end', []))} at the end.",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        "",
        "| " + " | ".join(HEAD) + " |",
        "|" + "---|" * len(HEAD),
    ]
    for row in method_rows(records):
        lines.append("| " + " | ".join(c.replace("|", "/") for c in row) + " |")
    lines += ["", "### Targets", "", "| target | today | limit | result |", "|---|---|---|---|"]
    for r in (r for r in records if r.get("kind") == "target"):
        res = "n/a" if r["pass"] is None else ("PASS" if r["pass"] else "**FAIL**")
        det = f" ({r['detail']})" if r.get("detail") else ""
        lines.append(
            f"| {r['name']} | {_fmt(r['value'], '.3g')}{det} | {r['op']} {r['limit']:g} | {res} |"
        )
    lines += [
        "",
        "### Weight building (s)",
        "",
        "| pair | gridflux conservative_weights | gridflux fused weight field | cdo gencon "
        "(process) |",
        "|---|---|---|---|",
    ]
    for r in (r for r in records if r.get("kind") == "weights" and r.get("tool") == "gridflux"):
        lines.append(
            f"| {r['pair']} | {_fmt(r.get('conservative_weights_s'), '.4f')} | "
            f"{_fmt(r.get('native_weight_field_s'), '.4f')} | {_fmt(r.get('cdo_gencon_s'), '.2f')} "
            "|"
        )
    for r in (r for r in records if r.get("kind") == "weights" and r.get("tool") != "gridflux"):
        lines.append(f"| {r['case']}: {r['tool']} | | | {_fmt(r.get('seconds'), '.2f')} |")
    for kind, cols in (
        ("zarr", ("case", "write_seconds_median", "ratio_to_raw", "compression_ratio", "cube_mb")),
        ("memory", ("case", "months", "peak_rss_mb", "seconds")),
        (
            "import",
            (
                "seconds_median",
                "seconds_max",
                "process_wall_median",
                "heavy_modules_loaded",
                "totals_kernel_import_s",
            ),
        ),
        (
            "scaling",
            (
                "tool",
                "timing",
                "what",
                "members",
                "member_years",
                "workers",
                "seconds",
                "t1",
                "t2",
                "efficiency",
                "ratio",
            ),
        ),
    ):
        rs = [r for r in records if r.get("kind") == kind]
        if not rs:
            continue
        lines += ["", f"### {kind}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in rs:
            lines.append(
                "| "
                + " | ".join(
                    _fmt(r.get(c), ".3g") if isinstance(r.get(c), float) else str(r.get(c, ""))
                    for c in cols
                )
                + " |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import os

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks import project

    with open(sys.argv[1]) as f:
        recs = json.load(f)
    print(markdown(recs))
    print(
        "### Projection to the RECCAP2 archive (`python benchmarks/project.py "
        "benchmarks/results.json --markdown`)\n"
    )
    print(project.markdown(project.project(recs)[0]))
