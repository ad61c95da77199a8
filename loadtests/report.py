"""What the benchmark scripts share to write their sections of docs/benchmarks.md.

Each script owns one section, between its markers `<!-- NAME:start -->` and `<!-- NAME:end -->`,
and describes the run beside its figures: the command, the machine, and the load average.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

OUT_DEFAULT = Path("docs/benchmarks.md")
DOC_TITLE = (
    "# Benchmarks\n\nEach section is written by the script it names; edit outside its markers.\n"
)


def markers(name: str) -> tuple[str, str]:
    """The lines that open and close the section of the script called `name`."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write_section(out: Path, text: str, *, marker: str) -> None:
    """Replaces the section between `marker`'s markers, keeping everything else, or appends it."""
    start, end = markers(marker)
    document = out.read_text() if out.exists() else DOC_TITLE
    if start in document and end in document:
        before, rest = document.split(start, 1)
        after = rest.split(end, 1)[1]
        document = before + text + after
    else:
        document = document.rstrip("\n") + "\n\n" + text + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document)


def command_line(module: str) -> str:
    """The command that is running `module` now, the interpreter relative to here if it can be."""
    python = Path(sys.executable)
    if python.is_relative_to(Path.cwd()):
        python = python.relative_to(Path.cwd())
    return shlex.join([str(python), "-m", module, *sys.argv[1:]])


def load_average() -> str:
    return " / ".join(f"{load:.2f}" for load in os.getloadavg())


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def machine(*software: str, with_cpu_model: bool = True) -> str:
    """CPUs, platform and Python, then `software` (the versions that matter to the figures)."""
    cpus = f"{os.cpu_count()} CPUs"
    if with_cpu_model:
        cpus += f" ({cpu_model()})"
    parts = [cpus, platform.platform(), f"Python {platform.python_version()}", *software]
    return ", ".join(parts)


ECDSA_YARDSTICK_VERIFIES = 2_000


def ecdsa_p256_verify_us() -> float:
    """Microseconds one core takes to verify one ECDSA P-256 signature with `cryptography`: the
    cost every QR tap pays, so figures from machines with different CPUs can be compared."""
    key = ec.generate_private_key(ec.SECP256R1())
    message = bytes(96)
    signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    public = key.public_key()
    began = time.perf_counter()
    for _ in range(ECDSA_YARDSTICK_VERIFIES):
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    return (time.perf_counter() - began) / ECDSA_YARDSTICK_VERIFIES * 1e6
