"""No tap is lost and none is doubled (issue 16), shown on `tapledger validator run` processes.

A validator offline for 1,000 taps delivers all of them once the backend is reachable again; a
validator killed with SIGKILL at random moments while it uploads, and restarted on the same state
directory, ends with the backend holding each tap it decided exactly once. The backend's counter
of taps recorded for a validator grows with each tap it records, so `taps_recorded ==
highest_seq` with no missing seq means each seq 1..N was recorded exactly once.
"""

from __future__ import annotations

import queue
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import server_env, tapledger_command
from tests.e2e.in_process_server import served_locally
from tests.e2e.riders import ADMIN
from tests.e2e.test_deny_list_propagation import rider_phone
from tests.e2e.test_validator_run import GATE, printed_lines, registered_gate
from tests.tap_media import Phone
from validators.device import OUTBOX_FILE
from validators.outbox import Outbox

OFFLINE_TAPS = 1000
# The seed of the kill schedule: a failure names it, and setting it here replays the run.
KILL_SEED = 16
KILLS = 20
LINE_WAIT_S = 30.0
RECORDED_WAIT_S = 90.0
POLL_S = 0.2
STOP_WAIT_S = 30.0
RUN_TIMEOUT_S = 120.0
ACKNOWLEDGED = frozenset({"accepted", "refused", "duplicate"})
RUNNING = "validator running; Ctrl-C to stop"


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    with served_locally(tmp_path / "var", name="no-tap-lost-server") as base_url:
        yield base_url


@contextmanager
def link_down_until_opened(upstream: str) -> Iterator[tuple[str, threading.Event]]:
    """A port that refuses connections (bound, not listening) until the event is set; from
    then on it forwards each connection, byte for byte, to `upstream`'s port."""
    upstream_port = int(upstream.rsplit(":", 1)[1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    opened = threading.Event()
    closing = threading.Event()

    def pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def serve() -> None:
        opened.wait()
        if closing.is_set():
            return
        sock.listen(64)
        while not closing.is_set():
            try:
                client, _ = sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", upstream_port))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, name="link", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", opened
    finally:
        closing.set()
        opened.set()
        sock.close()


def start_validator(server_url: str, token_file: Path, state_dir: Path) -> subprocess.Popen[str]:
    command = [
        *tapledger_command(),
        *("validator", "run", "--server", server_url, "--validator-id", str(GATE)),
        *("--token-file", str(token_file), "--state-dir", str(state_dir)),
        *("--qr-stdin", "--plain"),
    ]
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=server_env({}),
    )


def synced_once(server_url: str, token_file: Path, state_dir: Path) -> None:
    """One `--once` run with no taps: the device fetches its keys and keeps them."""
    command = [
        *tapledger_command(),
        *("validator", "run", "--server", server_url, "--validator-id", str(GATE)),
        *("--token-file", str(token_file), "--state-dir", str(state_dir)),
        *("--qr-stdin", "--once", "--plain"),
    ]
    run = subprocess.run(
        command,
        input="",
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=server_env({}),
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def decision(lines: queue.Queue[str]) -> str:
    """The next decision the device prints; its `BACKEND …` answers to uploads are skipped."""
    line = lines.get(timeout=LINE_WAIT_S).strip()
    while line.startswith("BACKEND "):
        line = lines.get(timeout=LINE_WAIT_S).strip()
    return line


def decided_seq(line: str) -> int:
    assert line.startswith(("ACCEPTED ", "REFUSED ")), line
    return int(line.rsplit("seq ", 1)[1])


def recorded_when(client: httpx.Client, taps: int) -> dict[str, object]:
    """The validator's sequence report once it shows `taps` recorded (or at the deadline)."""
    deadline = time.monotonic() + RECORDED_WAIT_S
    while True:
        report: dict[str, object] = client.get(f"/v1/validators/{GATE}", headers=ADMIN).json()[
            "sequence"
        ]
        if report["taps_recorded"] == taps or time.monotonic() > deadline:
            return report
        time.sleep(POLL_S)


def outbox_answers(state_dir: Path) -> tuple[int, int, dict[int, str | None]]:
    """The outbox's last seq, its pending count, and the backend's answer for each seq."""
    outbox = Outbox(state_dir / OUTBOX_FILE)
    try:
        last = outbox.last_seq()
        answers = {
            seq: tap.backend_status for seq in range(1, last + 1) if (tap := outbox.get(seq))
        }
        return last, outbox.pending_count(), answers
    finally:
        outbox.close()


def stopped(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def lines_until_exit(process: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """What the process prints, read by a thread; None once its output has ended."""
    assert process.stdout is not None
    stdout = process.stdout
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stdout:
            lines.put(line.strip())
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def killed_at_random(
    process: subprocess.Popen[str], codes: list[str], decisions: int, delay_s: float
) -> list[int]:
    """Feeds the codes, waits for `decisions` of them to be decided, lets `delay_s` pass (the
    device uploading meanwhile) and kills the process with SIGKILL; returns the seq of every
    decision it printed before it died."""
    assert process.stdin is not None
    lines = lines_until_exit(process)
    assert lines.get(timeout=LINE_WAIT_S) == RUNNING
    process.stdin.write("".join(f"{code}\n" for code in codes))
    process.stdin.flush()
    printed: list[int] = []
    while len(printed) < decisions:
        line = lines.get(timeout=LINE_WAIT_S)
        assert line is not None, "the validator exited before it was killed"
        if not line.startswith("BACKEND "):
            printed.append(decided_seq(line))
    time.sleep(delay_s)  # part of the kill schedule, not a wait for a condition
    process.send_signal(signal.SIGKILL)
    process.wait(STOP_WAIT_S)
    # Whatever it printed before it died is still in the pipe.
    while (line := lines.get(timeout=LINE_WAIT_S)) is not None:
        if not line.startswith(("BACKEND ", "validator ")):
            printed.append(decided_seq(line))
    return printed


def phones(client: httpx.Client, tmp_path: Path, count: int) -> tuple[Path, list[Phone]]:
    token_file, first = registered_gate(client, tmp_path)
    more = [rider_phone(client)[1] for _ in range(count - 1)]
    return token_file, [first, *more]


def test_a_validator_offline_for_a_thousand_taps_delivers_each_exactly_once_on_reconnecting(
    server_url: str, tmp_path: Path
) -> None:
    client = httpx.Client(base_url=server_url, timeout=10.0)
    token_file, riders = phones(client, tmp_path, 4)
    state_dir = tmp_path / "gate"
    synced_once(server_url, token_file, state_dir)
    now = int(time.time()) - 1
    codes = [riders[i % len(riders)].code(now, 1 + i // len(riders)) for i in range(OFFLINE_TAPS)]
    with link_down_until_opened(server_url) as (link_url, open_link):
        process = start_validator(link_url, token_file, state_dir)
        assert process.stdin is not None
        assert process.stdout is not None
        lines = printed_lines(process.stdout)
        try:
            assert lines.get(timeout=LINE_WAIT_S).strip() == RUNNING
            process.stdin.write("".join(f"{code}\n" for code in codes))
            process.stdin.flush()
            decided = [decision(lines) for _ in codes]
            assert [decided_seq(line) for line in decided] == list(range(1, OFFLINE_TAPS + 1))
            refused = [line for line in decided if not line.startswith("ACCEPTED ")]
            assert refused == []
            assert (
                client.get(f"/v1/validators/{GATE}", headers=ADMIN).json()["sequence"][
                    "taps_recorded"
                ]
                == 0
            )  # nothing went through the link while it was down
            open_link.set()
            report = recorded_when(client, OFFLINE_TAPS)
        finally:
            stopped(process)
    assert (report["highest_seq"], report["taps_recorded"]) == (OFFLINE_TAPS, OFFLINE_TAPS)
    assert (report["missing_count"], report["missing_seqs"]) == (0, [])
    last, pending, answers = outbox_answers(state_dir)
    assert (last, pending) == (OFFLINE_TAPS, 0)
    assert sorted(answers) == list(range(1, OFFLINE_TAPS + 1))
    assert {seq for seq, status in answers.items() if status != "accepted"} == set()


def test_a_validator_killed_twenty_times_while_uploading_ends_with_each_decided_tap_recorded_once(
    server_url: str, tmp_path: Path
) -> None:
    schedule = random.Random(KILL_SEED)
    client = httpx.Client(base_url=server_url, timeout=10.0)
    token_file, riders = phones(client, tmp_path, 2)
    state_dir = tmp_path / "gate"
    synced_once(server_url, token_file, state_dir)
    counters = dict.fromkeys(range(len(riders)), 0)

    def fresh_code() -> str:
        rider = schedule.randrange(len(riders))
        counters[rider] += 1
        return riders[rider].code(int(time.time()) - 1, counters[rider])

    printed: list[int] = []
    for _ in range(KILLS):
        codes = [fresh_code() for _ in range(schedule.randint(1, 40))]
        decisions = schedule.randint(0, len(codes))
        delay_s = schedule.uniform(0.0, 0.3)
        process = start_validator(server_url, token_file, state_dir)
        try:
            printed += killed_at_random(process, codes, decisions, delay_s)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    synced_once(server_url, token_file, state_dir)  # the last run drains what is left

    replay = f"(kill schedule seed {KILL_SEED})"
    last, pending, answers = outbox_answers(state_dir)
    # The device's promise: a decision printed is a tap in the outbox. A tap whose line the
    # kill cut off may be there too, at most one per kill; no seq is ever given twice.
    assert len(set(printed)) == len(printed), replay
    assert set(printed) <= set(range(1, last + 1)), replay
    assert 0 <= last - len(printed) <= KILLS, replay
    assert pending == 0, replay
    assert sorted(answers) == list(range(1, last + 1)), replay
    assert {s for s, status in answers.items() if status not in ACKNOWLEDGED} == set(), replay
    report = recorded_when(client, last)
    assert (report["highest_seq"], report["taps_recorded"]) == (last, last), (report, replay)
    assert (report["missing_count"], report["missing_seqs"]) == (0, []), (report, replay)
