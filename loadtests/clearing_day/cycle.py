"""The timed part: the product's clearing run of the day, in a process of its own, measured
from outside (wall time and peak RSS by `/usr/bin/time -v`, or `getrusage` of the children
when it is missing) and from inside (the run alone, without interpreter start and bootstrap)."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

# The cycle as the product runs it: the composition root, then `ClearingCycles.run(day)`.
CHILD = """
import json, sys, time
from datetime import date
from tapledger.bootstrap import bootstrap
began = time.perf_counter()
container = bootstrap()
built = time.perf_counter()
run = container.clearing.run(date.fromisoformat(sys.argv[1]))
ran = time.perf_counter()
summary = run.cycle.summary
print(json.dumps({
    "bootstrap_s": built - began,
    "run_s": ran - built,
    "movements": summary.movements,
    "lines": summary.lines,
    "lines_sha256": summary.lines_sha256,
    "suspense_lines": summary.suspense_lines,
    "suspense_vnd": summary.suspense_vnd,
    "revenue_vnd": {o.operator_id: o.revenue_vnd for o in summary.operators},
    "files": [str(path) for path in run.files],
}))
container.close()
"""
TIME = Path("/usr/bin/time")
RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")


@dataclass(frozen=True)
class CycleFigures:
    wall_s: float  # the whole process: interpreter, imports, bootstrap and the run
    run_s: float  # `run(day)` alone
    peak_rss_kib: int
    result: dict[str, Any]

    @property
    def movements_per_s(self) -> float:
        return int(self.result["movements"]) / self.run_s


def run_cycle(database_url: str, data_dir: Path, day: date) -> CycleFigures:
    env = os.environ | {
        "TAPLEDGER_ENVIRONMENT": "local",
        "TAPLEDGER_DATABASE_URL": database_url,
        "TAPLEDGER_DATA_DIR": str(data_dir),
    }
    command = [sys.executable, "-c", CHILD, day.isoformat()]
    timed = shutil.which(str(TIME)) is not None
    if timed:
        command = [str(TIME), "-v", *command]
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    wall_s = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"the clearing run failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if timed:
        found = RSS.search(done.stderr)
        peak_kib = int(found.group(1)) if found else 0
    else:
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return CycleFigures(wall_s, float(result["run_s"]), peak_kib, result)
