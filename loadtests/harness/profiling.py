"""py-spy sampling one worker while wrk runs, and a summary of where the time went."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from loadtests.harness.plan import BATCH, BATCH_CONNECTIONS, PROFILE_SECONDS
from loadtests.harness.server import Server
from loadtests.harness.wrk import run_wrk

PROFILE_RATE = 100
# Beyond its run, how long py-spy may take to write its samples.
SPY_OVERRUN_S = 30
# Leaf frames of a thread waiting for work: not where the time goes.
IDLE_LEAVES = (
    "wait (threading",
    "select (selectors",
    "_worker (concurrent",
    "run_forever",
    "poll (",
)
INCLUSIVE_SHOWN = 40
SELF_SHOWN = 25


class Spy:
    """py-spy sampling one worker for `seconds`, started now."""

    def __init__(self, server: Server, raw: Path, seconds: int) -> None:
        self.raw = raw
        self.seconds = seconds
        self.process = subprocess.Popen(  # noqa: S603
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(server.worker_pids()[0]),
                "--duration",
                str(seconds),
                "--rate",
                str(PROFILE_RATE),
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def summary(self) -> str:
        self.process.wait(self.seconds + SPY_OVERRUN_S)
        return summarise_profile(self.raw)


def profile(server: Server, base_url: str, bodies: Path, count: int, work: Path) -> str:
    """py-spy on one worker during a batched-QR run: the functions with the most samples."""
    spy = Spy(server, work / "profile.txt", PROFILE_SECONDS)
    run_wrk(
        "profiled batched QR",
        base_url,
        bodies,
        count,
        connections=BATCH_CONNECTIONS,
        seconds=PROFILE_SECONDS,
        taps_per_request=BATCH,
    )
    return spy.summary()


def _frames(stack: str) -> list[str]:
    """Each frame of a collapsed stack as `function (file)`, without its line number."""
    return [
        f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] + ")"
        for f in stack.split(";")
        if " (" in f
    ]


def summarise_profile(raw: Path) -> str:
    """Self and inclusive sample shares from py-spy's collapsed stacks (idle threads dropped)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, samples_text = line.rpartition(" ")
        samples = int(samples_text)
        frames = _frames(stack)
        if not frames:
            continue
        leaf = frames[-1]
        if any(word in leaf for word in IDLE_LEAVES):
            continue
        total += samples
        own[leaf] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = [f"busy samples: {total}", "", "inclusive (share of busy samples):"]
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in inclusive.most_common(INCLUSIVE_SHOWN)]
    lines += ["", "self:"]
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in own.most_common(SELF_SHOWN)]
    return "\n".join(lines)
