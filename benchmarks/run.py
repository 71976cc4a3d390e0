#!/usr/bin/env python
"""gridflux throughput benchmark: gridflux vs the decode limit, CDO, NCO, xarray-regrid, xESMF.

    python benchmarks/run.py                      # full run (< 20 min on 2 cores)
    python benchmarks/run.py --quick              # 0.5 deg zlib case, 1 round, 4-member scaling (<
    2 min) python benchmarks/run.py --tiny --rounds 1    # CI: tiny grids, seconds
    python benchmarks/run.py --json benchmarks/results.json

Every method runs as a whole process on the same generated files, in interleaved rounds after a
warm-up round; the table shows min/median/max seconds, ratios to the raw decode and to the
natural CDO one-liner of the same round, MB/s of decoded bytes, peak RSS of the process tree
and the max relative difference of the monthly totals from CDO ``remapcon`` on the same cell
areas. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import harness, inputs, report  # noqa: E402

DEFAULT_CACHE = os.path.join(
    os.environ.get("XDG_CACHE_HOME", os.path.join(tempfile.gettempdir())), "gridflux-bench"
)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        action="store_true",
        help="the 0.5 deg zlib case only, 1 round after the warm-up, 4-member scaling (< 2 min)",
    )
    size.add_argument(
        "--tiny", action="store_true", help="tiny grids for CI (no scaling unless --scaling)"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="timed rounds after the warm-up (default 2; tiny 1)",
    )
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up round")
    p.add_argument(
        "--cases", nargs="*", default=None, help="case names (default: all of the suite)"
    )
    p.add_argument(
        "--methods",
        nargs="*",
        default=None,
        choices=list(harness.METHODS),
        help="methods (default all)",
    )
    p.add_argument("--json", dest="json_out", default=None, help="write the records here")
    p.add_argument("--cache", default=DEFAULT_CACHE, help="input cache directory")
    p.add_argument(
        "--workdir", default=None, help="scratch directory for outputs (default: a temp dir)"
    )
    sc = p.add_mutually_exclusive_group()
    sc.add_argument(
        "--scaling",
        dest="scaling",
        action="store_true",
        default=None,
        help="run the ensemble scaling",
    )
    sc.add_argument(
        "--no-scaling", dest="scaling", action="store_false", help="skip the ensemble scaling"
    )
    p.add_argument(
        "--members", type=int, default=None, help="members for the scaling (default 12; quick 4)"
    )
    p.add_argument(
        "--scaling-repeats",
        type=int,
        default=None,
        help="repeats of every scaling run; medians are reported (default 3; quick 1)",
    )
    p.add_argument(
        "--long-members",
        type=int,
        default=None,
        metavar="DECADES",
        help="also scale members of this many decade files (default 4; quick and tiny: none; 0: "
        "none)",
    )
    p.add_argument(
        "--no-extras", action="store_true", help="skip weights/import/memory measurements"
    )
    return p.parse_args(argv)


def _byte_compile() -> None:
    """Byte-compile gridflux and the bench workers once, as ``pip install`` does for an installed
    package: an editable install compiles on first import, or on every import when
    ``PYTHONDONTWRITEBYTECODE`` is set (as on this project's machines), which would add ~10-60 ms of
    compiling to every timed gridflux process."""
    import compileall

    import gridflux

    for d in (os.path.dirname(gridflux.__file__), os.path.dirname(os.path.abspath(__file__))):
        compileall.compile_dir(d, quiet=1)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse(argv)
    from rich.console import Console

    console = Console(stderr=True)
    log = console.print
    suite = inputs.TINY if args.tiny else inputs.FULL
    cases = args.cases
    if args.quick and not cases:
        cases = ["05deg-zlib"]
    rounds = args.rounds or (1 if args.tiny or args.quick else 2)
    warmup = not args.no_warmup and not args.tiny
    methods = args.methods or list(harness.METHODS)
    for needed in ("raw", "cdo"):
        if needed not in methods:
            methods.insert(0, needed)  # ratios are relative to these
    scaling = args.scaling if args.scaling is not None else not args.tiny
    members = args.members or (4 if args.quick else 3 if args.tiny else 12)
    if args.long_members is None:
        args.long_members = 0 if (args.quick or args.tiny) else 4
    t_start = time.perf_counter()

    _byte_compile()
    records = [
        harness.machine_header(
            [os.path.basename(sys.argv[0])] + (argv if argv is not None else sys.argv[1:])
        )
    ]
    ins = inputs.prepare(suite, args.cache, cases, log=log)
    workroot = args.workdir or tempfile.mkdtemp(prefix="gridflux-bench-")
    os.makedirs(workroot, exist_ok=True)
    try:
        records += harness.run_suite(ins, methods, rounds, warmup, log, workroot)
        if not args.no_extras:
            log("weight building, import time, memory flatness ...")
            records += harness.weight_timings(ins, log)
            records.append(harness.import_time())
            long_case = next(
                (
                    s.name
                    for s in suite.cases
                    if s.months == max(c.months for c in suite.cases) and s.name in ins.fields
                ),
                None,
            )
            if long_case:
                records += harness.memory_flatness(ins, long_case, log)
        if scaling:
            from benchmarks import scaling as sc

            case = next((c for c in ("05deg-zlib", "latlon-zlib") if c in ins.fields), None)
            if case is None:
                case = inputs.FULL.cases[0].name if not args.tiny else suite.cases[0].name
                ins = inputs.prepare(suite, args.cache, [case], log=log)
            log(f"ensemble scaling: {members} members of {case}, 1 and 2 workers ...")
            repeats = args.scaling_repeats or (1 if args.quick else 3)
            records += sc.run_scaling(
                ins.fields[case],
                ins.mask_nc,
                os.path.join(workroot, "scaling"),
                members,
                log,
                repeats=repeats,
            )
            if args.long_members and not args.tiny:
                # members as long as a CMIP run split into decade files: fixed costs (imports,
                # cluster start, the driver's catalog/mask/store) weigh as they do on a real archive
                log(
                    f"ensemble scaling: {members} members of {args.long_members} decade files each "
                    "..."
                )
                records += sc.run_scaling(
                    ins.fields[case],
                    ins.mask_nc,
                    os.path.join(workroot, "scaling"),
                    members,
                    log,
                    repeats=repeats,
                    decades=args.long_members,
                    tools=("gridflux", "gridflux-cli", "ceiling"),
                )
    finally:
        if args.workdir is None:
            shutil.rmtree(workroot, ignore_errors=True)
    records[0]["load_average_end"] = list(os.getloadavg())
    records[0]["total_seconds"] = time.perf_counter() - t_start
    records[0]["suite"] = suite.name
    records[0]["rounds"] = rounds
    records += report.targets(records)
    report.print_tables(records)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(records, f, indent=1, default=float)
        log(f"wrote {args.json_out}")
    return records


if __name__ == "__main__":
    main()
