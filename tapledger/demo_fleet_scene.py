"""The fleet scene's story (see `tapledger.demo_fleet`): enrol, run, tap, cut a link, check."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from rich.console import Console

from hardware.tlc1.constants import KeyLevel
from tapledger.bootstrap import Container
from tapledger.demo_fleet_card import CARD_RELOAD_VND, loaded_card, present_card, reader_port
from tapledger.demo_fleet_table import fleet_when_reported, print_fleet
from tapledger.demo_taps import Phone, phone_for
from tapledger.device_processes import DeviceFleet, DeviceProcess, enrol_devices
from tapledger.link_relay import LinkRelay
from ticketing.accounts.domain.commands import TopUp
from ticketing.cards.domain.smart_card import CARD_NETWORK_ID_DEFAULT
from ticketing.shared.access import Role
from ticketing.shared.domain.rider import RiderCategory

BUS_01_KIM_MA = 5001
GATE_CAT_LINH_IN = 5101
GATE_YEN_NGHIA_OUT = 5112
# Where each device stands, as the scene registers it; its name in the story and in the table.
PLACES = {
    BUS_01_KIM_MA: ("bus", "bus 01 · Kim Mã", "bus-kim-ma", "01", ""),
    GATE_CAT_LINH_IN: ("metro_gate", "2A Cát Linh · entry", "2A-01", "2A", "entry"),
    GATE_YEN_NGHIA_OUT: ("metro_gate", "2A Yên Nghĩa · exit", "2A-12", "2A", "exit"),
}
# Short enough for the table to fit an 80-column terminal.
TABLE_PLACES = {
    BUS_01_KIM_MA: "01 Kim Mã",
    GATE_CAT_LINH_IN: "2A Cát Linh in",
    GATE_YEN_NGHIA_OUT: "2A Yên Nghĩa out",
}
LISTEN_ANY_PORT = "vpcd-listen:127.0.0.1:0"
# The shortest sync period `validator run` takes: the health table is fresh within it.
SYNC_INTERVAL_S = 5
TOP_UP_VND = 100_000
HTTP_TIMEOUT_S = 10.0
RECORDED_TIMEOUT_S = 20.0
# The entry gate stays cut off until it has failed to upload this many times.
OFFLINE_FAILURES = 3
# How often the sequence report is read while the backend's projection catches up.
RECORDED_POLL_S = 0.1


@dataclass
class FleetScene:
    console: Console
    data_dir: Path
    key_file: Path
    master_keys: dict[KeyLevel, bytes]
    devices: dict[int, DeviceProcess] = field(default_factory=dict)
    decided: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def prepare(cls, console: Console, data_dir: Path) -> FleetScene:
        """The scene's issuer keys: the bus's SAM and the backend read the same key file."""
        master_keys = {level: os.urandom(16) for level in KeyLevel}
        key_file = data_dir / "sam-keys.json"
        key_file.touch(mode=0o600)  # readable by this user only, from the start
        key_file.write_text(json.dumps({str(int(k)): v.hex() for k, v in master_keys.items()}))
        return cls(console, data_dir, key_file, master_keys)

    def run(self, container: Container, url: str, relay: LinkRelay, fleet: DeviceFleet) -> bool:
        staff = container.tokens.issue(Role.OPERATOR, label="demo fleet").token
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {staff}"}, timeout=HTTP_TIMEOUT_S
        ) as client:
            self._enrol(container, url)
            self._start(url, relay, fleet)
            phones = self._phones(container)
            ok = self._online(phones)
            ok &= self._card(container)
            ok &= self._offline(phones, relay, client)
            ok &= self._recorded(client)
            rows = fleet_when_reported(client, set(PLACES))
            ok &= print_fleet(self.console, rows, TABLE_PLACES)
        return ok

    def stopped_cleanly(self, exit_codes: dict[str, int]) -> bool:
        """Each device stopped on SIGTERM with exit 0 (a kill would show as a negative code)."""
        ok = len(exit_codes) == len(PLACES) and not any(exit_codes.values())
        codes = ", ".join(f"{name} {code}" for name, code in exit_codes.items())
        self.console.print(f"  stopped the {len(exit_codes)} devices (exit codes: {codes})")
        return ok

    def _enrol(self, container: Container, url: str) -> None:
        codes: dict[Path, str] = {}
        for validator_id, (kind, _, stop_id, route_id, direction) in PLACES.items():
            container.taps.register_validator(
                validator_id=validator_id,
                kind=kind,
                # The card network: the card is personalised for it, and a validator of
                # another one refuses the card (docs/validator-integration.md).
                network_id=CARD_NETWORK_ID_DEFAULT,
                location=validator_id,
                stop_id=stop_id,
                route_id=route_id,
                direction=direction,
            )
            code, _ = container.taps.issue_enrolment_code(validator_id)
            codes[self._state_dir(validator_id)] = code
        enrol_devices(url, codes)
        self.console.print(
            f"  staff registered {len(codes)} devices and made enrolment codes; each enrolled"
            " with [bold]tapledger validator enrol[/bold]"
        )

    def _start(self, url: str, relay: LinkRelay, fleet: DeviceFleet) -> None:
        for validator_id, (_, place, *_) in PLACES.items():
            # The entry gate reaches the backend through the relay the scene cuts later.
            server = relay.url if validator_id == GATE_CAT_LINH_IN else url
            # The bus also reads smart cards, on a reader the card emulator connects to.
            reader = ("--reader", LISTEN_ANY_PORT, "--sam-key-file", str(self.key_file))
            self.devices[validator_id] = fleet.start(
                place,
                server,
                self._state_dir(validator_id),
                *("--sync-interval-s", str(SYNC_INTERVAL_S)),
                *(reader if validator_id == BUS_01_KIM_MA else ()),
            )
            self.decided[validator_id] = []
        for device in self.devices.values():
            device.wait_running()
        self.console.print(
            f"  {len(self.devices)} [bold]tapledger validator run[/bold] processes synced and"
            " running: "
            + ", ".join(f"{d.name} (pid {d.process.pid})" for d in self.devices.values())
        )

    def _state_dir(self, validator_id: int) -> Path:
        return self.data_dir / "devices" / str(validator_id)

    def _phones(self, container: Container) -> dict[str, Phone]:
        phones = {}
        for name, category in (("Lan", RiderCategory.REGULAR), ("Minh", RiderCategory.PRIORITY)):
            phones[name] = phone_for(container, _topped_up(container, name, category))
        return phones

    def _tap(self, validator_id: int, who: str, phone: Phone) -> dict[str, Any]:
        device = self.devices[validator_id]
        decision = device.present_code(phone.code(datetime.now(UTC)))
        self.decided[validator_id].append(decision)
        self.console.print(
            f"  {who}'s phone at {device.name}: [bold]{decision['decision']}[/bold]"
            f" ({decision['reason']}, seq {decision['seq']})"
        )
        return decision

    def _online(self, phones: dict[str, Phone]) -> bool:
        taps = [
            (BUS_01_KIM_MA, "Lan"),
            (GATE_CAT_LINH_IN, "Lan"),
            (GATE_YEN_NGHIA_OUT, "Lan"),
        ]
        decisions = [(v, self._tap(v, who, phones[who])) for v, who in taps]
        return all(self._uploaded(v, [d]) for v, d in decisions)

    def _card(self, container: Container) -> bool:
        """Tuấn's smart card, loaded at the desk, pays its ride at the bus from its purse."""
        tuan = _topped_up(container, "Tuấn", RiderCategory.REGULAR)
        card = loaded_card(container, tuan, self.master_keys)
        bus = self.devices[BUS_01_KIM_MA]
        port = reader_port(bus)
        decision = present_card(card, bus, port)
        self.decided[BUS_01_KIM_MA].append(decision)
        charged = decision["charged_vnd"] or 0
        self.console.print(
            f"  Tuấn's smart card (emulated, {CARD_RELOAD_VND:,} VND in its purse) at {bus.name},"
            f" through vpcd-listen:127.0.0.1:{port}: [bold]{decision['decision']}[/bold]"
            f" ({decision['reason']}, seq {decision['seq']}, {charged:,} VND from the purse)"
        )
        paid = decision["medium"] == "card" and decision["decision"] == "accepted" and charged > 0
        return self._uploaded(BUS_01_KIM_MA, [decision]) and paid

    def _offline(self, phones: dict[str, Phone], relay: LinkRelay, client: httpx.Client) -> bool:
        gate = self.devices[GATE_CAT_LINH_IN]
        failed_before = sum("upload failed" in note for note in gate.notes())
        relay.cut()
        cut_at_s = time.monotonic()
        self.console.print(f"  [yellow]the link of {gate.name} is cut[/yellow]")
        offline = [self._tap(GATE_CAT_LINH_IN, who, phones[who]) for who in ("Minh", "Lan")]
        # Offline for a while: until the gate has tried, and failed, to upload a few times (each
        # after a longer back-off), which shows it keeps the taps and keeps trying.
        failed = gate.wait_notes(
            "upload failed", failed_before + OFFLINE_FAILURES, RECORDED_TIMEOUT_S
        )
        seen = _sequence(client, GATE_CAT_LINH_IN)["highest_seq"] or 0
        first_offline = min(d["seq"] for d in offline)
        waiting = all(d["decision"] == "accepted" for d in offline) and seen < first_offline
        self.console.print(
            f"  decided offline, waiting in its outbox: {len(offline)} taps; the gate's upload"
            f" failed {OFFLINE_FAILURES} times ({_code(failed)}); the backend has none of them:"
            f" {_verdict(waiting)}"
        )
        early = [v for v in gate.of_type("verdict") if v["seq"] >= first_offline]
        relay.restore()
        self.console.print(
            f"  [green]the link of {gate.name} is back[/green] after"
            f" {time.monotonic() - cut_at_s:.1f} s; the gate retries on its own"
        )
        arrived = self._uploaded(GATE_CAT_LINH_IN, offline)
        for who in ("Minh", "Lan"):
            self._tap(GATE_YEN_NGHIA_OUT, who, phones[who])
        arrived &= self._uploaded(GATE_YEN_NGHIA_OUT, self.decided[GATE_YEN_NGHIA_OUT][-2:])
        self.console.print(
            f"  the offline taps arrived only after the link came back: {_verdict(not early)}"
        )
        return waiting and arrived and not early

    def _uploaded(self, validator_id: int, decisions: list[dict[str, Any]]) -> bool:
        """Waits for the backend's verdicts on these taps; True when each was accepted."""
        device = self.devices[validator_id]
        verdicts = device.wait_verdicts({d["seq"] for d in decisions})
        statuses = sorted({v["status"] for v in verdicts})
        seqs = ", ".join(str(d["seq"]) for d in decisions)
        self.console.print(f"    {device.name} uploaded seq {seqs}: backend {', '.join(statuses)}")
        return statuses == ["accepted"]

    def _recorded(self, client: httpx.Client) -> bool:
        """Every tap a device decided is in the backend exactly once, with no gap."""
        ok = True
        for validator_id, decisions in self.decided.items():
            expected = len(decisions)
            deadline = time.monotonic() + RECORDED_TIMEOUT_S
            report = _sequence(client, validator_id)
            while report["taps_recorded"] != expected and time.monotonic() < deadline:
                time.sleep(RECORDED_POLL_S)
                report = _sequence(client, validator_id)
            seen = (report["taps_recorded"], report["highest_seq"], report["missing_count"])
            if seen != (expected, expected, 0):
                ok = False
                self.console.print(
                    f"  [red]{self.devices[validator_id].name} decided {expected} taps; the"
                    f" backend recorded {seen[0]}, highest seq {seen[1]}, {seen[2]} missing[/red]"
                )
        total = sum(len(d) for d in self.decided.values())
        self.console.print(
            f"  each of the {total} taps the devices decided is in the backend exactly once:"
            f" {_verdict(ok)}"
        )
        return ok


def _topped_up(container: Container, name: str, category: RiderCategory) -> UUID:
    """A new rider's account with money on it, as the app's payment provider would put it."""
    account = container.ledger.open_account(rider_category=category, display_name=name)
    container.ledger.execute(TopUp(account.id, TOP_UP_VND, f"fleet-{account.id}"))
    return account.id


def _sequence(client: httpx.Client, validator_id: int) -> dict[str, Any]:
    answer = client.get(f"/v1/validators/{validator_id}")
    answer.raise_for_status()
    report: dict[str, Any] = answer.json()["sequence"]
    return report


def _code(note: str) -> str:
    """The error code in a device's note, e.g. "upload failed (backend_unavailable): …"."""
    found = re.search(r"\((\w+)\)", note)
    return found.group(1) if found else "?"


def _verdict(ok: bool) -> str:
    return "[green]yes[/green]" if ok else "[red]NO[/red]"
