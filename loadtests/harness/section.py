"""The tap benchmark's section of docs/benchmarks.md: the figures against their targets, and
how the run was made, in Markdown between the section's markers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version

from loadtests import raw_appends, report
from loadtests.harness.locust_mix import LocustResult
from loadtests.harness.plan import (
    BATCH,
    FORGED_SHARE,
    LOCUST_GATES,
    LOCUST_VALIDATORS,
    PACED_RATE,
    QR_SHARE_BUS,
    QR_SHARE_METRO,
    WARMUP_SECONDS,
    WRK_VALIDATORS,
)
from loadtests.harness.server import FOLLOW_WARMUP_S, WORKERS, FollowResult
from loadtests.harness.services import REDIS_DB
from loadtests.harness.wrk import WrkResult, wrk_version

MARKER = "bench_taps"
TARGETS = {
    "qr": 7_000.0,
    "card": 12_000.0,
    "single": 2_000.0,
    "paced_p99_ms": 25.0,
    "ratio": 0.6,
}
# The paced row meets its target only if wrk kept up this share of the rate it was paced to.
PACED_RATE_SHARE_MIN = 0.9


@dataclass(frozen=True)
class Figures:
    """Everything the section reports, gathered by the run."""

    started: datetime
    loads: tuple[str, str]  # the load average before and after
    ecdsa_us: float
    wrk: dict[str, WrkResult]
    locust: LocustResult
    raw: raw_appends.RawResult
    follow: FollowResult
    counts: dict[str, int]  # phones and cards seeded
    rate_limit: int
    paced_delay_ms: int


def _locust_row(rows: list[dict[str, str]], name: str) -> dict[str, str]:
    for row in rows:
        if row["Name"] == name:
            return row
    return {}


def _num(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _wrk_line(label: str, r: WrkResult, target: str, verdict: str) -> str:
    wrapped = " (bodies re-sent!)" if r.wrapped else ""
    cpu = ""
    if r.worker_cpu_us is not None and r.postgres_cpu_us is not None:
        cpu = (
            f"; CPU a tap: workers {r.worker_cpu_us:,.0f} µs, "
            f"PostgreSQL {r.postgres_cpu_us:,.0f} µs"
        )
    return (
        f"| {label} | wrk -t1 -c{r.connections}, {r.seconds:.0f} s | "
        f"**{r.taps_per_s:,.0f}** taps/s ({r.req_per_s:,.1f} req/s){wrapped}{cpu} | "
        f"{r.p50_ms:.1f} / {r.p95_ms:.1f} / {r.p99_ms:.1f} ms | "
        f"{r.non_2xx + r.socket_errors} | "
        f"{target} | {verdict} |"
    )


def _wrk_rows(f: Figures) -> list[str]:
    qr, card, single, paced = f.wrk["qr"], f.wrk["card"], f.wrk["single"], f.wrk["paced"]
    paced_ok = (
        paced.p99_ms <= TARGETS["paced_p99_ms"]
        and paced.req_per_s >= PACED_RATE_SHARE_MIN * PACED_RATE
    )
    return [
        _wrk_line(
            f"batched QR ({BATCH} taps/POST, signatures re-verified)",
            qr,
            "≥ 7,000 taps/s",
            _verdict(qr.taps_per_s >= TARGETS["qr"]),
        ),
        _wrk_line(
            f"batched card ({BATCH} taps/POST, MACs re-verified)",
            card,
            "≥ 12,000 taps/s",
            _verdict(card.taps_per_s >= TARGETS["card"]),
        ),
        _wrk_line(
            "single taps (`POST /v1/taps`) at saturation",
            single,
            "≥ 2,000 taps/s",
            _verdict(single.req_per_s >= TARGETS["single"]),
        ),
        _wrk_line(
            f"single taps paced to ~{PACED_RATE}/s ({paced.connections} conn., "
            f"0-{2 * f.paced_delay_ms} ms before each request)",
            paced,
            "p99 ≤ 25 ms at 500/s",
            _verdict(paced_ok),
        ),
    ]


def _other_rows(f: Figures) -> list[str]:
    raw, locust = f.raw, f.locust
    ratio = f.wrk["qr"].taps_per_s / raw.per_s
    card_ratio = f.wrk["card"].taps_per_s / raw.per_s
    batch_row = _locust_row(locust.rows, "POST /v1/taps/batch")
    single_row = _locust_row(locust.rows, "POST /v1/taps")
    locust_taps_per_s = locust.tally.get("taps_sent", 0) / locust.seconds
    return [
        f"| raw `eventsourcing` appends, `save(*{raw.batch})`, {raw.processes} processes | "
        f"{raw.seconds:.0f} s | **{raw.per_s:,.0f}** aggregates/s | "
        f"save {raw.save_p50_ms:.1f} / - / "
        f"{raw.save_p99_ms:.1f} ms | 0 | | |",
        f"| ingestion / raw, QR (card) | | **{ratio:.2f}** ({card_ratio:.2f}) | | | ≥ 0.6 | "
        f"{_verdict(ratio >= TARGETS['ratio'])} |",
        f"| Locust mix: batches | {locust.users} users, {locust.seconds} s | "
        f"{_num(batch_row.get('Requests/s')):,.1f} req/s, **{locust_taps_per_s:,.0f}** taps/s | "
        f"{_num(batch_row.get('50%')):.0f} / {_num(batch_row.get('95%')):.0f} / "
        f"{_num(batch_row.get('99%')):.0f} ms | {batch_row.get('Failure Count', '?')} | | |",
        f"| Locust mix: gates, single taps | (same run) | "
        f"{_num(single_row.get('Requests/s')):,.1f} req/s | "
        f"{_num(single_row.get('50%')):.0f} / {_num(single_row.get('95%')):.0f} / "
        f"{_num(single_row.get('99%')):.0f} ms | {single_row.get('Failure Count', '?')} | | |",
    ]


def _table(f: Figures) -> str:
    header = [
        "| measure | load | throughput | p50 / p95 / p99 | failures | target | |",
        "|---|---|---|---|---|---|---|",
    ]
    return "\n".join(header + _wrk_rows(f) + _other_rows(f))


def _tallied(tally: dict[str, int], prefix: str) -> str:
    return ", ".join(
        f"{k.removeprefix(prefix)} {v:,}" for k, v in sorted(tally.items()) if k.startswith(prefix)
    )


def _header(f: Figures) -> str:
    software = report.machine(
        f"eventsourcing {version('eventsourcing')}",
        f"uvicorn {version('uvicorn')}",
        f"locust {version('locust')}",
        wrk_version(),
        "PostgreSQL (default config, same box)",
    )
    return f"""## Tap path over HTTP: ingestion, online checks, ceilings

Written by `loadtests/run_taps.py` on {f.started:%Y-%m-%d %H:%M} UTC with:

    {report.command_line("loadtests.run_taps")}

Machine: {software}. One ECDSA P-256 verification takes {f.ecdsa_us:.0f} µs of one core here
(`cryptography`, measured before the run): every QR tap pays it once.
While it ran: load average (1/5/15 min) {f.loads[0]} before and {f.loads[1]} after. The load
generators (Locust, wrk) run on the same CPUs as the server and PostgreSQL."""


def _load_notes(f: Figures) -> str:
    """How the server ran and what it was sent."""
    paced, phones, cards = f.wrk["paced"], f.counts["phones"], f.counts["cards"]
    return f"""\
* **Server**: `tapledger serve --workers {WORKERS}` on 127.0.0.1,
  `TAPLEDGER_ENVIRONMENT=production`, a fresh PostgreSQL database, Redis db {REDIS_DB}
  flushed, a sealed SAM key file (every card MAC is re-verified), the rate limit raised to
  {f.rate_limit:,} requests per minute per token
  (the default 1,200 would refuse the load; the Redis-backed limiter still runs on every request).
* **Taps**: all built before the clock starts. {phones} phones (P-256 keys, virtual cards
  issued over HTTP) sign TL1 codes; {cards} smart cards issued over HTTP, their session
  proofs from one real emulated session per card (`loadtests/harness/card_proofs.py`), the
  rest MAC'd with the card's session keys. {100 * FORGED_SHARE:.1f} % of QR taps carry a
  forged signature (device decision `refused`). Each tap is new (its `(validator, seq)` and
  its code or card counter unused), unless it is one of Locust's re-sends; a wrk row marked
  "bodies re-sent" ran out of new bodies.
* **wrk** rows: one body per request, each sent once, taken in order from files of pre-built
  bodies (`loadtests/taps.lua`), after {WARMUP_SECONDS} s of batched QR taps that are not
  counted. Before each row the database is vacuumed and checkpointed, so no row pays for the
  background work of the one before. The CPU a tap cost the server's workers and PostgreSQL
  is read from `/proc` around each row: on this shared machine it moves less between runs
  than the throughput does. Single taps are half QR and half
  card, from {WRK_VALIDATORS} metro gates.
  wrk2 is not in Debian, so the ~{PACED_RATE}/s row is wrk with a delay before each request,
  drawn uniformly from 0 to {2 * f.paced_delay_ms} ms so that the connections do not move in
  step: a closed loop, so the rate falls when answers slow down, and its p99 is not corrected
  for coordinated omission. Its measured rate was {paced.req_per_s:,.0f} req/s."""


def _comparison_notes(f: Figures) -> str:
    """The raw appends, the followers and the Locust mix, described with their own figures."""
    raw, follow, tally = f.raw, f.follow, f.locust.tally
    answers = _tallied(tally, "result_")
    reasons = _tallied(tally, "reason_")
    return f"""\
* **Raw appends**: `loadtests/raw_appends.py`, {raw.processes} processes (as many as the server's
  workers) each saving {raw.batch} new one-event aggregates per `save()`, the payload shaped like a
  QR tap, on the same database, {raw.seconds:.0f} s after 1 s of warm-up, through the library's
  own PostgreSQL recorder. Ingestion writes one event per tap, plus one claim row per accepted
  code or card session in the same transaction (`ticketing/taps/adapters/tap_recorders.py`),
  through a recorder that sends the events as typed binary arrays.
* **Followers**: the server runs none (`TAPLEDGER_FOLLOW_IN_PROCESS=false`); `tapledger
  projections run` runs beside it during the Locust mix, and after the mix it is given
  {follow.seconds:.0f} s (after {FOLLOW_WARMUP_S:.0f} s of start-up) on the taps the load left:
  the journeys follower priced **{follow.per_s:,.0f} taps/s** ({follow.behind:,} still to price
  when it stopped).
* **Locust** (`loadtests/locustfile.py`): {LOCUST_VALIDATORS} validators (bus and
  metro, {QR_SHARE_BUS:.0%} / {QR_SHARE_METRO:.0%} QR) uploading batches of
  20-100 taps about once a second, 1 % of batches re-sent whole (the
  lost-acknowledgement retry, answered `duplicate`); {LOCUST_GATES} gates asking for one tap at
  a time, 5 taps/s each. It sent {tally.get("taps_sent", 0):,} batched taps
  ({tally.get("taps_resent", 0):,} of them re-sent) and {tally.get("single_sent", 0):,} single
  taps. Answers: {answers or "none"}; refusal reasons: {reasons or "none"}. Locust's request
  statistics count a request as failed if it is not a 200 or if its `duplicate` answers do not
  match what was re-sent."""


def section(f: Figures) -> str:
    """The whole section, markers included."""
    start, end = report.markers(MARKER)
    return (
        f"{start}\n{_header(f)}\n\n{_table(f)}\n\n{_load_notes(f)}\n{_comparison_notes(f)}\n{end}"
    )
