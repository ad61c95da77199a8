"""What the handheld prints: one line per action's verdict, as text or, with `--json`, as one
JSON object a line (docs/parking-api.md, "The handheld from a terminal"). Notes for the
attendant go to stderr in JSON mode, so stdout stays one object a line."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape

from validators.backend import BackendError
from validators.handheld import Verdict
from validators.handheld_outbox import StoredAction


class HandheldPrinter:
    """One line per action's verdict: plain text, or one JSON object a line with `--json`."""

    def __init__(self, *, json_lines: bool, plain: bool, out: TextIO | None = None) -> None:
        self._json = json_lines
        self._out = out
        self._console = Console(highlight=False, no_color=plain, force_terminal=False, file=out)
        self._notes = Console(stderr=True, highlight=False) if json_lines else self._console

    def verdict(self, verdict: Verdict) -> None:
        if self._json:
            return self._line(verdict.to_json())
        # What the attendant typed and the backend wrote is text, never rich markup.
        where = escape(f"{verdict.plate} · seq {verdict.seq}")
        if verdict.status == "refused":
            why = escape(f"{verdict.code}: {verdict.detail}")
            return self._say(f"[red]REFUSED[/red] {verdict.action} {where} · {why}")
        session = verdict.session or {}
        if verdict.status == "started":
            paid = (
                f"paid until {session.get('paid_until')} · held {session.get('held_vnd', 0):,} VND"
            )
            return self._say(f"[green]STARTED[/green] {where} · {paid}")
        fee = f"fee {session.get('fee_vnd') or 0:,} VND"
        unpaid = session.get("unpaid_vnd") or 0
        self._say(
            f"[green]ENDED[/green] {where} · {fee}" + (f" · unpaid {unpaid:,}" if unpaid else "")
        )

    def queued(self, action: StoredAction, error: BackendError) -> None:
        if self._json:
            body = {"seq": action.seq, "request_id": action.request_id, "action": action.action}
            return self._line(
                body | {"plate": action.plate, "status": "queued", "code": error.code}
            )
        where = escape(f"{action.action} {action.plate} · seq {action.seq} · not sent: {error}")
        self._say(f"[yellow]QUEUED[/yellow] {where}")

    def checked(self, plate: str, answer: dict[str, Any]) -> None:
        if self._json:
            # The backend's own verdict: status paid, expired or unpaid, and the session.
            return self._line({"action": "check", "plate": plate, **answer})
        state = str(answer.get("status", "?")).upper()
        until = f" · paid until {answer['paid_until']}" if answer.get("paid_until") else ""
        self._say(escape(f"{state} {answer.get('plate', plate)}{until}"))

    def check_failed(self, plate: str, error: BackendError) -> None:
        """A check that got no usable answer; a refused one is a `problem`."""
        if self._json:
            body = {"action": "check", "plate": plate, "status": "unavailable"}
            return self._line(body | {"code": error.code, "detail": str(error)})
        self._say(f"[yellow]UNAVAILABLE[/yellow] {escape(f'check {plate} · {error}')}")

    def problem(self, action: str, code: str, message: str) -> None:
        """A line or a request that came to nothing: no action was queued for it."""
        if self._json:
            return self._line(
                {"action": action, "status": "invalid", "code": code, "detail": message}
            )
        self._say(f"[red]INVALID[/red] {escape(f'{action} · {code}: {message}')}")

    def note(self, text: str) -> None:
        self._notes.print(text, soft_wrap=True)

    def _say(self, text: str) -> None:
        self._console.print(text, soft_wrap=True)

    def _line(self, body: dict[str, Any]) -> None:
        out = self._out or sys.stdout
        out.write(json.dumps(body, separators=(",", ":"), default=str) + "\n")
        out.flush()
