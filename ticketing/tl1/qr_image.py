"""Draw a TL1 code's text as a QR symbol: PNG for the app, SVG for the web, text for a terminal.

The text form (`spec/QR.md`, "Text form") is `"TL1:" + Base45`: 298 characters from the QR
alphanumeric set, which fit version 10 at error-correction level M. A larger version packs more,
smaller modules into the same screen area and reads worse, so a text that would need one is refused
rather than drawn bigger.
"""

from __future__ import annotations

import io
from typing import ClassVar

import segno

from ticketing.shared.domain.invariants import InvariantViolated, require

# The 45 characters QR alphanumeric mode encodes (ISO/IEC 18004); Base45 uses exactly these.
QR_ALPHANUMERIC_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
QR_MODE = "alphanumeric"
# Level M recovers from glare or a scratched screen protector that level L would not, and the
# 298-character code still fits version 10 at M. Never boosted: one symbol size for every code.
QR_ERROR_LEVEL = "m"
QR_VERSION_MAX = 10

# ISO/IEC 18004 asks for four light modules around a QR symbol; fewer and cameras misread the edge.
QUIET_ZONE_MODULES = 4
QUIET_ZONE_MODULES_MAX = 16
# A version 10 symbol with its quiet zone is 65 modules across: 8 px a module makes a 520 px image,
# sharp on a phone screen; the SVG scales freely, so its scale only sets the default CSS size.
PNG_SCALE_DEFAULT = 8
SVG_SCALE_DEFAULT = 4
SCALE_MAX = 32
# Colours are set rather than left to segno's defaults (the SVG's background would be transparent):
# on a dark page or app theme a transparent background shows an inverted symbol, which some
# readers refuse.
DARK_COLOUR = "#000"
LIGHT_COLOUR = "#fff"

# Terminal themes differ (light text on dark, or the reverse), and a QR drawn in the theme's colours
# comes out inverted on some of them, which some phone readers refuse. So every line sets its own
# colours: black glyphs (SGR 30) on a bright white background (SGR 107), then resets them (SGR 0)
# before the newline so the white does not bleed into the rest of the terminal row.
TERMINAL_DARK_ON_LIGHT = "\x1b[30;107m"
TERMINAL_RESET = "\x1b[0m"
# A terminal cell is about twice as tall as it is wide, so one cell holds two modules stacked,
# which keeps the modules square. Keys are (top module dark, bottom module dark).
HALF_BLOCKS: dict[tuple[bool, bool], str] = {
    (True, True): "\u2588",  # full block
    (True, False): "\u2580",  # upper half block
    (False, True): "\u2584",  # lower half block
    (False, False): " ",
}


def make_symbol(text: str) -> segno.QRCode:
    """Encode `text` as a QR symbol in alphanumeric mode at level M, version 10 at most.

    Raises `TextNotQrAlphanumeric` for an empty text or a character outside the alphanumeric set,
    `CodeTooLongForQr` when the text needs a symbol larger than `QR_VERSION_MAX`.
    """
    check_qr_alphanumeric(text)
    try:
        symbol = segno.make(
            text, error=QR_ERROR_LEVEL, mode=QR_MODE, micro=False, boost_error=False
        )
    except segno.DataOverflowError as overflow:
        # Beyond version 40 no QR can hold it; the caller's answer is the same as for version 11.
        raise CodeTooLongForQr(len(text)) from overflow
    version = symbol.version
    if not isinstance(version, int):
        # Only Micro QR versions are strings ("M4"), and micro=False rules them out.
        raise InvariantViolated("a full QR symbol has a numeric version")
    if version > QR_VERSION_MAX:
        raise CodeTooLongForQr(len(text))
    return symbol


def render_png(
    text: str, *, scale: int = PNG_SCALE_DEFAULT, border: int = QUIET_ZONE_MODULES
) -> bytes:
    """A PNG image of the code: black modules on white, `scale` pixels a module."""
    check_drawing_size(scale, border)
    out = io.BytesIO()
    make_symbol(text).save(
        out, kind="png", scale=scale, border=border, dark=DARK_COLOUR, light=LIGHT_COLOUR
    )
    return out.getvalue()


def render_svg(
    text: str, *, scale: int = SVG_SCALE_DEFAULT, border: int = QUIET_ZONE_MODULES
) -> str:
    """A complete SVG document of the code (svg namespace, no XML declaration), for the web page."""
    check_drawing_size(scale, border)
    out = io.BytesIO()
    make_symbol(text).save(
        out,
        kind="svg",
        scale=scale,
        border=border,
        dark=DARK_COLOUR,
        light=LIGHT_COLOUR,
        xmldecl=False,
        svgns=True,
    )
    return out.getvalue().decode("utf-8")


def render_terminal(text: str) -> str:
    """The code drawn with Unicode half blocks, dark on light with a quiet zone, two rows a line.

    The lines are joined by newlines without a trailing one, so `print()` shows it as it is.
    """
    symbol = make_symbol(text)
    rows = [
        [bool(module) for module in row] for row in symbol.matrix_iter(border=QUIET_ZONE_MODULES)
    ]
    if len(rows) % 2:
        # Symbols have an odd number of rows; one more light row only widens the bottom quiet zone.
        rows.append([False] * len(rows[0]))
    lines = []
    for top, bottom in zip(rows[::2], rows[1::2], strict=True):
        cells = "".join(HALF_BLOCKS[pair] for pair in zip(top, bottom, strict=True))
        lines.append(f"{TERMINAL_DARK_ON_LIGHT}{cells}{TERMINAL_RESET}")
    return "\n".join(lines)


def check_qr_alphanumeric(text: str) -> None:
    if not text:
        raise TextNotQrAlphanumeric("there is no text to encode")
    for position, char in enumerate(text):
        if char not in QR_ALPHANUMERIC_CHARS:
            # The position and the character are enough to find the fault; the text itself is a
            # rider's live code and stays out of messages and logs.
            raise TextNotQrAlphanumeric(
                f"character {char!r} at position {position} is not in the QR alphanumeric set"
            )


def check_drawing_size(scale: int, border: int) -> None:
    # Callers pass constants, so a bad size is a bug in the caller, not a rider's input.
    require(1 <= scale <= SCALE_MAX, f"scale is 1..{SCALE_MAX} pixels a module")
    require(
        QUIET_ZONE_MODULES <= border <= QUIET_ZONE_MODULES_MAX,
        f"border is {QUIET_ZONE_MODULES}..{QUIET_ZONE_MODULES_MAX} modules",
    )


class QrTextRefused(ValueError):
    """A text that cannot be drawn as a TL1 QR symbol; `code` is stable for clients and logs."""

    code: ClassVar[str] = "qr_text_refused"


class TextNotQrAlphanumeric(QrTextRefused):
    code: ClassVar[str] = "qr_text_not_alphanumeric"


class CodeTooLongForQr(QrTextRefused):
    code: ClassVar[str] = "qr_code_too_long"

    def __init__(self, length_chars: int) -> None:
        super().__init__(
            f"a text of {length_chars} characters needs a QR symbol larger than version "
            f"{QR_VERSION_MAX} at level {QR_ERROR_LEVEL.upper()}"
        )
        self.length_chars = length_chars
