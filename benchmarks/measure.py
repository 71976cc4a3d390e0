"""Whole-process measurement: wall time and peak resident memory of a command's process tree.

Wall time is taken around ``Popen`` .. ``os.wait4``. The peak RSS is the larger of

* the largest per-process high-water mark ``VmHWM`` (from ``/proc/PID/status``) seen for any process
  of the tree, and
* the largest sum of the current RSS over the live tree (concurrent workers, e.g. a dask
  cluster's processes),

both polled every ``poll`` seconds, and, where GNU ``/usr/bin/time`` exists, the command runs under
``/usr/bin/time -f %M`` whose own tiny high-water mark is what its child inherits, so its ``%M``
(the largest single process of the tree) is exact even for peaks between two polls. ``ru_maxrss``
from ``wait4`` is NOT used: Linux carries the parent's high-water mark across fork + exec, so a
child of a 250 MB harness "peaks" at 250 MB. A process's own ``VmHWM`` starts afresh at exec, so it
is exact up to the last poll.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass

#: Lines of stderr that are harmless noise (CDO built against HDF5 1.10 reading HDF5 2.x files).
NOISE_MARKERS = (
    "HDF5-DIAG",
    "#000:",
    "#001:",
    "#002:",
    "#003:",
    "#004:",
    "#005:",
    "#006:",
    "#007:",
    "#008:",
    "#009:",
    "#010:",
    "#011:",
    "#012:",
    "major:",
    "minor:",
)


@dataclass
class Measurement:
    argv: list[str]
    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str  # with harmless HDF5-DIAG noise removed

    @property
    def ok(self) -> bool:
        return self.returncode == 0


GNU_TIME = "/usr/bin/time"


def filter_noise(text: str) -> str:
    """Drop HDF5-DIAG diagnostic lines (exit status decides success, not these warnings)."""
    return "\n".join(
        line for line in text.splitlines() if not any(m in line for m in NOISE_MARKERS)
    ).strip()


def _hwm(pid: int) -> int:
    """A process's peak resident set size in bytes (VmHWM), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _tree_sample(proc, hwm: dict[int, int]) -> int:
    """Sum of the current RSS over the tree; updates ``hwm`` (pid -> VmHWM)."""
    import psutil

    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
        hwm[p.pid] = max(hwm.get(p.pid, 0), _hwm(p.pid))
    return total


def run_measured(
    argv: list[str],
    *,
    cwd: str | None = None,
    env: dict | None = None,
    poll: float = 0.025,
    timeout: float = 1800.0,
) -> Measurement:
    """Run ``argv`` to completion; return its wall time, peak RSS of its tree and its output."""
    import psutil

    gnu_time = GNU_TIME if os.path.exists(GNU_TIME) else None
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile(suffix=".maxrss") as maxrss,
    ):
        full = [gnu_time, "-f", "%M", "-o", maxrss.name, *argv] if gnu_time else list(argv)
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, cwd=cwd, env=env, stdout=out, stderr=err)
        peak = [0]
        hwm: dict[int, int] = {}
        stop = threading.Event()

        def sample() -> None:
            try:
                ps = psutil.Process(proc.pid)
            except psutil.Error:
                return
            while True:
                peak[0] = max(peak[0], _tree_sample(ps, hwm))
                if stop.wait(poll):
                    return

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        timer.cancel()
        stop.set()
        th.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = filter_noise(err.read().decode(errors="replace"))
        kib = 0
        if gnu_time:
            text = open(maxrss.name).read().split()
            kib = int(text[-1]) if text and text[-1].isdigit() else 0
    del usage  # ru_maxrss is contaminated by the parent's high-water mark (see module docstring)
    rss = max(max(hwm.values(), default=0), peak[0], kib * 1024) / 1e6
    return Measurement(list(argv), seconds, rss, proc.returncode, stdout, stderr)
