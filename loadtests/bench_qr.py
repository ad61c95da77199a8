"""Measures TL1 QR verification on one core: codes per second, cold and warm, and where time goes.

    python -m loadtests.bench_qr [--seconds N] [--certificates N] [--out docs/benchmarks.md]

Everything runs in this one thread; OpenSSL starts no threads of its own for these calls, so the
figures are what one core of a validator (or one backend worker) can verify. Codes are made before
the clock starts, so signing and encoding are never timed.

* **Cold**: every code carries a certificate the verifier has not seen, so it pays parsing, the
  Ed25519 check, the P-256 point decompression and the ECDSA check (the cache misses, then stores).
* **Warm**: one card's certificate is in the cache and every code is new, so it pays the Base45
  decode, the dynamic part, the ECDSA check and the replay window.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar
from uuid import UUID, uuid5

from cryptography.hazmat.backends.openssl import backend as openssl_backend
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from nacl.bindings import crypto_sign_open
from rich.console import Console

from loadtests import report
from ticketing.shared.domain.invariants import require
from ticketing.tl1 import base45
from ticketing.tl1.certificate_cache import CertificateCache
from ticketing.tl1.device import sign_code
from ticketing.tl1.issuing import compress_p256, device_key_from_bytes, issue_certificate
from ticketing.tl1.keyset import IssuerKeySet
from ticketing.tl1.layout import (
    CERTIFICATE_BYTES,
    DEVICE_SIGNATURE_BYTES,
    TEXT_PREFIX,
    Code,
    code_from_text,
    parse_code,
)
from ticketing.tl1.replay import ReplayWindow
from ticketing.tl1.verify import Decision, Verifier

BENCH_SECONDS_DEFAULT = 5.0
BENCH_SECONDS_MIN = 0.5
BENCH_SECONDS_MAX = 600.0
CERTIFICATES_DEFAULT = 2_000
CERTIFICATES_MIN = 10
CERTIFICATES_MAX = 50_000
# One card's codes for the warm run: more than one pass of the replay window's bound, each code
# new, so the window works at its limit as it would on a busy backend.
WARM_CODES = 20_000
# Each part is timed alone for this share of --seconds (at least PART_SECONDS_MIN).
PART_SHARE = 0.2
PART_SECONDS_MIN = 0.3
PART_ROUNDS = 5
# The targets set by the issue, codes per second on one core.
TARGET_WARM_PER_S = 8_000
TARGET_COLD_PER_S = 4_000
NOW = 1_800_000_000
KEY_ID = 1
LIFETIME_S = 24 * 3600
# Codes are dated within the staleness window, so none is refused as stale or from the future.
CODE_AGES_S = 60
COUNTER_MODULUS = 1 << 16
DEVICE_SCALAR_BASE = 0x7_1000_0000
ISSUER_SEED = bytes(range(32))
CARD_NAMESPACE = UUID("8a0e6f4c-2b1d-4e5f-9a7b-3c2d1e0f4a5b")
# Consecutive codes whose fastest run is reported beside the sustained rate.
BEST_WINDOW_CODES = 1_000
PERCENTILE_P99 = 99
PERCENTILES = 100
SIGNATURE_HALF_BYTES = DEVICE_SIGNATURE_BYTES // 2
MARKER = "bench_qr"
MARK_START, MARK_END = report.markers(MARKER)
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())

Item = TypeVar("Item")


@dataclass(frozen=True)
class Workload:
    keys: IssuerKeySet
    cold_texts: list[str]
    warm_texts: list[str]


@dataclass(frozen=True)
class Rate:
    mode: str
    codes: int
    elapsed_s: float
    # This thread's CPU time over the same run: time spent preempted by other work on a shared
    # machine is not in it, so codes per CPU second is what one core can do when it is ours.
    cpu_s: float
    latencies_ns: list[int]
    target_per_s: int

    @property
    def per_s(self) -> float:
        return self.codes / self.elapsed_s

    @property
    def per_cpu_s(self) -> float:
        return self.codes / self.cpu_s

    @property
    def best_window_per_s(self) -> float:
        """The fastest BEST_WINDOW_CODES codes in a row: the rate while no neighbour interfered."""
        latencies = self.latencies_ns
        windows = range(0, len(latencies) - BEST_WINDOW_CODES + 1, BEST_WINDOW_CODES)
        fastest_ns = min((sum(latencies[i : i + BEST_WINDOW_CODES]) for i in windows), default=0)
        return BEST_WINDOW_CODES / (fastest_ns / 1e9) if fastest_ns else self.per_s

    @property
    def p50_us(self) -> float:
        return statistics.median(self.latencies_ns) / 1e3

    @property
    def p99_us(self) -> float:
        return statistics.quantiles(self.latencies_ns, n=PERCENTILES)[PERCENTILE_P99 - 1] / 1e3


@dataclass(frozen=True)
class Part:
    name: str
    us_per_code: float
    in_cold: bool
    in_warm: bool


# The workload, made before any clock starts


def card(issuer: Ed25519PrivateKey, index: int) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    """A certificate for card number `index`, with its device key."""
    device = ec.derive_private_key(DEVICE_SCALAR_BASE + index, ec.SECP256R1())
    certificate = issue_certificate(
        issuer,
        issuer_key_id=KEY_ID,
        card_id=uuid5(CARD_NAMESPACE, str(index)),
        rider_category=index % 7,
        flags=0,
        not_before=NOW - LIFETIME_S // 2,
        not_after=NOW + LIFETIME_S // 2,
        device_key=compress_p256(device.public_key()),
    )
    return certificate, device


def make_workload(certificates: int) -> Workload:
    issuer = Ed25519PrivateKey.from_private_bytes(ISSUER_SEED)
    cold_texts = []
    for index in range(certificates):
        certificate, device = card(issuer, index)
        cold_texts.append(
            sign_code(
                certificate=certificate,
                device_private_key=device,
                generated_at=NOW - index % CODE_AGES_S,
                counter=index % COUNTER_MODULUS,
            )
        )
    certificate, device = card(issuer, certificates)
    warm_texts = [
        sign_code(
            certificate=certificate,
            device_private_key=device,
            generated_at=NOW - index % CODE_AGES_S,
            counter=index % COUNTER_MODULUS,
        )
        for index in range(WARM_CODES)
    ]
    keys = IssuerKeySet({KEY_ID: issuer.public_key()})
    return Workload(keys, cold_texts, warm_texts)


# The full path


def verify_rate(
    verifier: Verifier, texts: Sequence[str], seconds: float, *, cold: bool, target: int
) -> Rate:
    """Verifies `texts` in passes until `seconds` pass; each pass starts with a fresh memory."""
    latencies_ns: list[int] = []
    cpu_start_s = time.thread_time()
    start_ns = now_ns = time.perf_counter_ns()
    deadline_ns = start_ns + int(seconds * 1e9)
    while now_ns < deadline_ns:
        # A new pass shows the same codes again: forget them, and for cold runs the certificates
        # too, so that no code is a replay and no cold certificate is a hit.
        verifier.replay_window = ReplayWindow()
        if cold:
            verifier.certificate_cache = CertificateCache()
        for text in texts:
            decision = verifier.verify(text, NOW).decision
            after_ns = time.perf_counter_ns()
            require(decision is Decision.ACCEPTED, f"the benchmark's codes are valid: {decision}")
            latencies_ns.append(after_ns - now_ns)
            now_ns = after_ns
            if now_ns >= deadline_ns:
                break
    mode = "cold: a new certificate every code" if cold else "warm: cached certificate, new code"
    cpu_s = time.thread_time() - cpu_start_s
    return Rate(mode, len(latencies_ns), (now_ns - start_ns) / 1e9, cpu_s, latencies_ns, target)


def new_verifier(keys: IssuerKeySet) -> Verifier:
    return Verifier(keys, set(), replay_window=ReplayWindow(), certificate_cache=CertificateCache())


# The parts, each alone


def per_call_us(step: Callable[[Item], object], items: Sequence[Item], seconds: float) -> float:
    """The best of PART_ROUNDS rounds: other work on a shared box only ever adds time."""
    rounds_us = []
    for _ in range(PART_ROUNDS):
        calls = 0
        start = time.perf_counter()
        deadline = start + seconds / PART_ROUNDS
        while time.perf_counter() < deadline:
            for item in items:
                step(item)
            calls += len(items)
        rounds_us.append((time.perf_counter() - start) / calls * 1e6)
    return min(rounds_us)


def device_signature_valid(code: Code, device_key: ec.EllipticCurvePublicKey) -> bool:
    """As the verifier does it: raw r ‖ s back to DER, then OpenSSL's ECDSA verify."""
    signature = code.device_signature
    der = encode_dss_signature(
        int.from_bytes(signature[:SIGNATURE_HALF_BYTES], "big"),
        int.from_bytes(signature[SIGNATURE_HALF_BYTES:], "big"),
    )
    device_key.verify(der, code.signed_bytes, _ECDSA_SHA256)
    return True


def time_parts(workload: Workload, seconds: float) -> list[Part]:
    keys = workload.keys
    issuer_key = keys.keys[KEY_ID]
    bodies = [text[len(TEXT_PREFIX) :] for text in workload.cold_texts]
    raws = [code_from_text(text) for text in workload.cold_texts]
    codes = [parse_code(raw) for raw in raws]
    device_keys = [device_key_from_bytes(code.certificate.device_key) for code in codes]
    signed = list(zip(codes, device_keys, strict=True))
    cache = CertificateCache()
    warmed = Verifier(keys, set(), replay_window=ReplayWindow(), certificate_cache=cache)
    require(warmed.verify(workload.warm_texts[0], NOW).accepted, "the warm code is valid")
    warm_certificate = code_from_text(workload.warm_texts[0])[:CERTIFICATE_BYTES]
    issuer_raw = issuer_key.public_bytes_raw()
    window = ReplayWindow()
    replay_keys = [(code.certificate.card_id, code.generated_at, code.counter) for code in codes]

    def replay_check(key: tuple[UUID, int, int]) -> None:
        if not window.seen(key, NOW):
            window.remember(key, NOW)

    parts = [
        Part("Base45 decode (294 chars)", per_call_us(base45.decode, bodies, seconds), True, True),
        Part("parse the 196 bytes", per_call_us(parse_code, raws, seconds), True, False),
        Part(
            "Ed25519 verify (issuer, libsodium)",
            per_call_us(
                lambda code: crypto_sign_open(
                    code.certificate.issuer_signature + code.certificate.signed_bytes,
                    issuer_raw,
                ),
                codes,
                seconds,
            ),
            True,
            False,
        ),
        Part(
            "P-256 point decompression",
            per_call_us(device_key_from_bytes, [c.certificate.device_key for c in codes], seconds),
            True,
            False,
        ),
        Part(
            "ECDSA P-256 verify (device), with r ‖ s to DER",
            per_call_us(lambda pair: device_signature_valid(*pair), signed, seconds),
            True,
            True,
        ),
        Part(
            "certificate cache hit",
            per_call_us(lambda raw: cache.get(raw, keys, NOW), [warm_certificate], seconds),
            False,
            True,
        ),
        Part(
            "replay check (seen + remember)",
            per_call_us(replay_check, replay_keys, seconds),
            True,
            True,
        ),
    ]
    return parts


# The report


def machine() -> str:
    openssl = openssl_backend.openssl_version_text()
    return report.machine(f"cryptography {version('cryptography')} ({openssl})")


def rates_table(rates: Sequence[Rate]) -> str:
    lines = [
        f"| mode | codes verified | codes/s | codes per CPU second "
        f"| fastest {BEST_WINDOW_CODES:,} in a row, codes/s | p50 | p99 | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rate in rates:
        met = "yes" if rate.per_s >= rate.target_per_s else "**no**"
        lines.append(
            f"| {rate.mode} | {rate.codes:,} | **{rate.per_s:,.0f}** | {rate.per_cpu_s:,.0f} "
            f"| {rate.best_window_per_s:,.0f} | {rate.p50_us:.0f} µs | {rate.p99_us:.0f} µs "
            f"| ≥ {rate.target_per_s:,} | {met} |"
        )
    return "\n".join(lines)


def parts_table(parts: Sequence[Part], rates: Sequence[Rate]) -> str:
    cold, warm = rates
    lines = ["| part | µs per code | cold path | warm path |", "|---|---|---|---|"]
    for part in parts:
        lines.append(
            f"| {part.name} | {part.us_per_code:.1f} "
            f"| {'yes' if part.in_cold else ''} | {'yes' if part.in_warm else ''} |"
        )
    for rate, label, flag in ((cold, "cold", "in_cold"), (warm, "warm", "in_warm")):
        total = sum(part.us_per_code for part in parts if getattr(part, flag))
        measured = 1e6 / rate.best_window_per_s
        lines.append(
            f"| *{label}: the rest of the {measured:.0f} µs a code took in the fastest "
            f"{BEST_WINDOW_CODES:,} (parts add up to {total:.0f} µs)* "
            f"| {measured - total:.1f} | | |"
        )
    return "\n".join(lines)


def section(
    rates: Sequence[Rate],
    parts: Sequence[Part],
    args: argparse.Namespace,
    loads: tuple[str, str],
    command: str,
) -> str:
    return f"""{MARK_START}
## TL1 QR verification, one core

Written by `loadtests/bench_qr.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with:

    {command}

Machine: {machine()}.
One process, one thread. Load average (1/5/15 min) {loads[0]} before and {loads[1]} after.

{rates_table(rates)}

Where the time goes: each part timed alone over the same codes, the best of {PART_ROUNDS} rounds
({args.part_seconds:g} s in all per part). The "rest" rows compare the parts with the fastest
{BEST_WINDOW_CODES:,} codes in a row above: Python's own work (dispatch, dataclasses, the timing
loop) and what OpenSSL loses when its three operations take turns instead of repeating one.

{parts_table(parts, rates)}

* **Cold**: {args.certificates:,} distinct cards, each with its own certificate and device key,
  one code each, made before timing. Each pass over them starts with an empty certificate cache
  and replay window, so every code misses the cache (and is then stored in it).
* **Warm**: one card whose certificate is cached, {WARM_CODES:,} different codes, each verified
  once per pass; the replay window (bound {ReplayWindow().entries_max:,}) fills and evicts.
* Every timed code is accepted, which the script checks. `--seconds {args.seconds:g}` per mode;
  latency is per `Verifier.verify` call, timed with `perf_counter_ns`.
* **Codes/s** is the sustained rate over the whole run, the figure held against the target.
  **Codes per CPU second** divides by this thread's CPU time (`time.thread_time`), which leaves
  out the time other processes held the core; when the two agree, the core was ours but may still
  have been slowed by work on its sibling hyperthread, which the fastest {BEST_WINDOW_CODES:,}
  codes in a row show.
{MARK_END}"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=BENCH_SECONDS_DEFAULT)
    parser.add_argument("--certificates", type=int, default=CERTIFICATES_DEFAULT)
    parser.add_argument("--out", type=Path, default=report.OUT_DEFAULT)
    args = parser.parse_args(argv)
    if not BENCH_SECONDS_MIN <= args.seconds <= BENCH_SECONDS_MAX:
        parser.error(f"--seconds must be in {BENCH_SECONDS_MIN:g}..{BENCH_SECONDS_MAX:g}")
    if not CERTIFICATES_MIN <= args.certificates <= CERTIFICATES_MAX:
        parser.error(f"--certificates must be in {CERTIFICATES_MIN}..{CERTIFICATES_MAX}")
    args.part_seconds = max(PART_SECONDS_MIN, args.seconds * PART_SHARE)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console()
    load_before = report.load_average()
    with console.status(f"making {args.certificates:,} certificates and {WARM_CODES:,} codes"):
        workload = make_workload(args.certificates)
    with console.status(f"cold: verifying for {args.seconds:g} s"):
        cold = verify_rate(
            new_verifier(workload.keys),
            workload.cold_texts,
            args.seconds,
            cold=True,
            target=TARGET_COLD_PER_S,
        )
    with console.status(f"warm: verifying for {args.seconds:g} s"):
        warm = verify_rate(
            new_verifier(workload.keys),
            workload.warm_texts,
            args.seconds,
            cold=False,
            target=TARGET_WARM_PER_S,
        )
    with console.status("timing the parts"):
        parts = time_parts(workload, args.part_seconds)
    rates = [cold, warm]
    console.print(rates_table(rates))
    console.print(parts_table(parts, rates))
    loads = (load_before, report.load_average())
    report.write_section(
        args.out,
        section(rates, parts, args, loads, report.command_line("loadtests.bench_qr")),
        marker=MARKER,
    )
    console.print(f"Written to {args.out}")


if __name__ == "__main__":
    main()
