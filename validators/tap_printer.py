"""What `validator run` prints: a line per decision for people, or JSON Lines for programs.

With `--json`, stdout carries one JSON object a line and nothing else; notes for the person at
the terminal go to stderr. Every object names its `type`:

- `decision`: the gate's offline decision on one tap, once the tap is in the outbox
  (`medium`, `decision` accepted/refused, `reason`, `seq` or null when nothing was recorded,
  `charged_vnd`);
- `verdict`: after each upload, the backend's answer for one uploaded tap (`seq`, `epoch`,
  `status` accepted/refused/duplicate/seq_conflict, `reason`, the backend's refusal reason or
  null, and `tap_id`);
- `no_card`: `--once` with `--reader` saw no card within `waited_s`;
- `summary`: the end of a `--once` run (`uploaded`, `pending`, `held`, `last_seq`,
  `exit_code`).

Decisions, verdicts and notes come from several threads (the scanner, the card reader, the
upload loop); a lock keeps each line whole.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape

from validators.backend import TapAnswer
from validators.gate import GateDecision


class TapPrinter:
    """One line per decision: text, or with `json_lines` one JSON object a line."""

    def __init__(self, *, plain: bool, json_lines: bool = False, out: TextIO | None = None) -> None:
        self._json = json_lines
        self._out = out
        self._lock = threading.Lock()
        self._console = Console(highlight=False, no_color=plain, force_terminal=False, file=out)
        # In JSON mode stdout is for the objects alone, so notes go to stderr.
        self._notes = Console(stderr=True, highlight=False) if json_lines else self._console
        self._errors = Console(stderr=True, highlight=False, no_color=plain)

    @property
    def json_lines(self) -> bool:
        return self._json

    def decision(self, decision: GateDecision) -> None:
        if self._json:
            return self._line(
                {
                    "type": "decision",
                    "medium": decision.medium,
                    "decision": "accepted" if decision.accepted else "refused",
                    "reason": decision.reason,
                    "seq": decision.seq,
                    "charged_vnd": decision.charged_vnd,
                }
            )
        verdict = "ACCEPTED" if decision.accepted else "REFUSED"
        colour = "green" if decision.accepted else "red"
        seq = "not recorded" if decision.seq is None else f"seq {decision.seq}"
        charged = f" · charged {decision.charged_vnd:,} VND" if decision.charged_vnd else ""
        self._say(
            f"[{colour}]{verdict}[/{colour}] {decision.medium} {decision.reason} · {seq}{charged}"
        )

    def verdicts(self, epoch: int, answers: Sequence[TapAnswer]) -> None:
        """The backend's answers to one upload; text mode shows only its refusals."""
        for answer in answers:
            if self._json:
                self._line(
                    {
                        "type": "verdict",
                        "seq": answer.seq,
                        "epoch": epoch,
                        "status": answer.status,
                        "reason": answer.reason,
                        "tap_id": answer.tap_id,
                    }
                )
            elif answer.status == "refused":
                why = escape(f"{answer.reason} · seq {answer.seq}")
                self._say(f"[yellow]BACKEND REFUSED[/yellow] {why}")

    def no_card(self, waited_s: float) -> None:
        if self._json:
            return self._line({"type": "no_card", "waited_s": waited_s})
        with self._lock:
            self._errors.print(
                f"[red]no card was presented within {waited_s:g} s[/red]"
                " (--card-wait-s to wait longer)",
                soft_wrap=True,
            )

    def summary(self, body: dict[str, Any], text: str) -> None:
        """The end of a `--once` run: `body` as JSON, or `text` for people."""
        if self._json:
            return self._line({"type": "summary", **body})
        self._say(escape(text))

    def note(self, text: str) -> None:
        self._notes_say(escape(text))

    def _say(self, text: str) -> None:
        with self._lock:
            self._console.print(text, soft_wrap=True)

    def _notes_say(self, text: str) -> None:
        with self._lock:
            self._notes.print(text, soft_wrap=True)

    def _line(self, body: dict[str, Any]) -> None:
        out = self._out or sys.stdout
        with self._lock:
            out.write(json.dumps(body, separators=(",", ":")) + "\n")
            out.flush()
