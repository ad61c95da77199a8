"""QR images of TL1 codes: version 10 at most, alphanumeric mode, read back by another decoder."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence

import pytest
import zxingcpp
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.vectors import QR_VECTORS_PATH
from ticketing.shared.domain.invariants import InvariantViolated
from ticketing.tl1.qr_image import (
    CodeTooLongForQr,
    QrTextRefused,
    TextNotQrAlphanumeric,
    make_symbol,
    render_png,
    render_svg,
    render_terminal,
)

# The numbers below come from spec/QR.md and ISO/IEC 18004, not from the module under test, so a
# change there that breaks the spec fails here.
BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
CODE_PREFIX = "TL1:"
CODE_BYTES = 196
CODE_CHARS = 298
SPEC_VERSION_MAX = 10
# Alphanumeric capacity of version 10 at level M; one character more needs version 11.
V10_M_CAPACITY_CHARS = 311
# Above version 10's capacity at level L too (395), so no level could squeeze it into version 10.
TOO_LONG_CHARS = 400
# Above version 40's capacity at any level: segno itself gives up on this one.
BEYOND_ANY_QR_CHARS = 5000
QUIET_ZONE_MODULES = 4
SVG_NAMESPACE = "http://www.w3.org/2000/svg"
HYPOTHESIS_EXAMPLES = 30
# Modules read off the terminal text become 6 px squares: a decoder needs several pixels a module.
TERMINAL_IMAGE_SCALE = 6
GREY_DARK, GREY_LIGHT = 0, 255

# Black glyphs on a bright white background, and the reset after each line.
SGR_DARK_ON_LIGHT = "\x1b[30;107m"
SGR_RESET = "\x1b[0m"
# Each half-block glyph as (top module dark, bottom module dark).
GLYPH_MODULES = {
    "\u2588": (True, True),
    "\u2580": (True, False),
    "\u2584": (False, True),
    " ": (False, False),
}


def base45(data: bytes) -> str:
    """RFC 9285: each pair of bytes as three digits base 45, least significant first; a last lone
    byte as two."""
    digits: list[int] = []
    for start in range(0, len(data) - 1, 2):
        value = data[start] * 256 + data[start + 1]
        digits += [value % 45, value // 45 % 45, value // 45**2]
    if len(data) % 2:
        digits += [data[-1] % 45, data[-1] // 45]
    return "".join(BASE45_ALPHABET[digit] for digit in digits)


def code_from(payload: bytes) -> str:
    return CODE_PREFIX + base45(payload)


def load_vector_codes() -> dict[str, str]:
    """The spec's test vectors whose text has a full code's length, by name."""
    vectors = json.loads(QR_VECTORS_PATH.read_text(encoding="utf-8"))["vectors"]
    codes = {v["name"]: v["code"] for v in vectors if len(v["code"]) == CODE_CHARS}
    assert codes, f"{QR_VECTORS_PATH} holds no {CODE_CHARS}-character codes"
    return codes


VECTOR_CODES = load_vector_codes()
DRAWABLE_VECTORS = {
    name: code for name, code in VECTOR_CODES.items() if set(code) <= set(BASE45_ALPHABET)
}
# Vectors that test the verifier's Base45 parsing carry characters a QR cannot hold in alphanumeric
# mode ("not_base45"); drawing them must be refused, not fall back to byte mode.
UNDRAWABLE_VECTORS = {
    name: code for name, code in VECTOR_CODES.items() if name not in DRAWABLE_VECTORS
}


def read_qr(image: Image.Image) -> zxingcpp.Barcode:
    # No inversion retry: a symbol drawn light on dark must fail here rather than be rescued.
    barcode = zxingcpp.read_barcode(image, try_invert=False)
    assert barcode is not None, "the decoder found no symbol"
    return barcode


def assert_reads_back(image: Image.Image, code: str) -> None:
    barcode = read_qr(image)
    assert barcode.format == zxingcpp.BarcodeFormat.QRCode
    assert barcode.text == code
    # The decoder's own view of the symbol, independent of segno's.
    assert barcode.ec_level == "M"
    extra = barcode.extra
    assert isinstance(extra, dict)
    assert int(extra["Version"]) <= SPEC_VERSION_MAX


def png_image(code: str) -> Image.Image:
    return Image.open(io.BytesIO(render_png(code)))


def matrix_with_quiet_zone(matrix: Sequence[Sequence[int]]) -> list[list[bool]]:
    width = len(matrix[0]) + 2 * QUIET_ZONE_MODULES
    light_rows = [[False] * width for _ in range(QUIET_ZONE_MODULES)]
    margin = [False] * QUIET_ZONE_MODULES
    body = [margin + [bool(module) for module in row] + margin for row in matrix]
    return light_rows + body + [list(row) for row in light_rows]


def modules_from_terminal(drawing: str) -> list[list[bool]]:
    """Read the half-block drawing back into rows of modules, two rows a line."""
    rows: list[list[bool]] = []
    for line in drawing.split("\n"):
        assert line.startswith(SGR_DARK_ON_LIGHT), "each line sets dark-on-light colours"
        assert line.endswith(SGR_RESET), "each line resets its colours before the newline"
        pairs = [GLYPH_MODULES[glyph] for glyph in line[len(SGR_DARK_ON_LIGHT) : -len(SGR_RESET)]]
        rows.append([top for top, _ in pairs])
        rows.append([bottom for _, bottom in pairs])
    return rows


def image_from_modules(rows: list[list[bool]]) -> Image.Image:
    height, width = len(rows), len(rows[0])
    pixels = bytes(GREY_DARK if dark else GREY_LIGHT for row in rows for dark in row)
    image = Image.frombytes("L", (width, height), pixels)
    size = (width * TERMINAL_IMAGE_SCALE, height * TERMINAL_IMAGE_SCALE)
    return image.resize(size, Image.Resampling.NEAREST)


CODE_PAYLOADS = st.binary(min_size=CODE_BYTES, max_size=CODE_BYTES)
ALL_ZERO_BYTES = bytes(CODE_BYTES)
ALL_FF_BYTES = b"\xff" * CODE_BYTES


@pytest.mark.parametrize(
    ("data", "text"),
    [(b"AB", "BB8"), (b"Hello!!", "%69 VD92EX0"), (b"ietf!", "QED8WEX0")],
)
def test_the_local_base45_encoder_matches_rfc_9285_examples(data: bytes, text: str) -> None:
    assert base45(data) == text


@settings(max_examples=HYPOTHESIS_EXAMPLES, deadline=None)
@example(ALL_ZERO_BYTES)
@example(ALL_FF_BYTES)
@given(CODE_PAYLOADS)
def test_every_code_is_drawn_at_version_10_or_below_in_alphanumeric_mode(payload: bytes) -> None:
    code = code_from(payload)
    assert len(code) == CODE_CHARS
    symbol = make_symbol(code)
    assert isinstance(symbol.version, int)
    assert symbol.version <= SPEC_VERSION_MAX
    assert symbol.mode == "alphanumeric"
    assert symbol.error == "M"


@settings(max_examples=HYPOTHESIS_EXAMPLES, deadline=None)
@example(ALL_ZERO_BYTES)
@example(ALL_FF_BYTES)
@given(CODE_PAYLOADS)
def test_an_independent_decoder_reads_every_code_back_from_the_png(payload: bytes) -> None:
    code = code_from(payload)
    assert_reads_back(png_image(code), code)


@pytest.mark.parametrize("name", sorted(DRAWABLE_VECTORS))
def test_spec_vector_codes_are_drawn_within_version_10_and_read_back_exactly(name: str) -> None:
    code = DRAWABLE_VECTORS[name]
    symbol = make_symbol(code)
    assert isinstance(symbol.version, int)
    assert symbol.version <= SPEC_VERSION_MAX
    assert symbol.mode == "alphanumeric"
    assert_reads_back(png_image(code), code)


@pytest.mark.parametrize("name", sorted(UNDRAWABLE_VECTORS))
def test_spec_vectors_outside_the_alphanumeric_set_are_refused(name: str) -> None:
    with pytest.raises(TextNotQrAlphanumeric):
        make_symbol(UNDRAWABLE_VECTORS[name])


def test_the_svg_is_a_complete_document_in_the_svg_namespace() -> None:
    code = code_from(bytes(range(CODE_BYTES)))
    scale = 3
    svg = render_svg(code, scale=scale)
    assert svg.startswith("<svg")
    # The SVG is this module's own output, not untrusted input.
    root = ET.fromstring(svg)  # noqa: S314
    assert root.tag == f"{{{SVG_NAMESPACE}}}svg"
    modules_across = len(make_symbol(code).matrix) + 2 * QUIET_ZONE_MODULES
    assert root.get("width") == root.get("height") == str(modules_across * scale)


def test_the_terminal_drawing_holds_the_symbols_modules_with_a_quiet_zone() -> None:
    code = code_from(bytes(range(CODE_BYTES)))
    expected = matrix_with_quiet_zone(make_symbol(code).matrix)
    drawn = modules_from_terminal(render_terminal(code))
    assert drawn[: len(expected)] == expected
    # An odd number of rows leaves one half line, which must be light: more quiet zone.
    assert len(drawn) - len(expected) in (0, 1)
    assert not any(dark for row in drawn[len(expected) :] for dark in row)


@settings(max_examples=HYPOTHESIS_EXAMPLES // 3, deadline=None)
@example(ALL_FF_BYTES)
@given(CODE_PAYLOADS)
def test_an_independent_decoder_reads_the_code_back_from_the_terminal_drawing(
    payload: bytes,
) -> None:
    code = code_from(payload)
    image = image_from_modules(modules_from_terminal(render_terminal(code)))
    assert_reads_back(image, code)


RENDERERS: list[Callable[[str], object]] = [make_symbol, render_png, render_svg, render_terminal]


@pytest.mark.parametrize("render", RENDERERS, ids=lambda render: render.__name__)
@pytest.mark.parametrize(
    "text",
    [
        code_from(ALL_FF_BYTES).lower(),
        "TL1:AB_C",
        "TL1:ABC\n",
        "TL1:\u0110\u00c0",
        "",
    ],
    ids=["lowercase", "underscore", "newline", "vietnamese-letters", "empty"],
)
def test_text_outside_the_qr_alphanumeric_set_is_refused(
    render: Callable[[str], object], text: str
) -> None:
    with pytest.raises(TextNotQrAlphanumeric) as refused:
        render(text)
    assert refused.value.code == "qr_text_not_alphanumeric"


def test_the_refusal_names_the_position_but_not_the_code() -> None:
    code = code_from(ALL_ZERO_BYTES)
    with pytest.raises(TextNotQrAlphanumeric, match="position 5") as refused:
        make_symbol(code[:5] + "a" + code[6:])
    assert code[CODE_CHARS // 2 :] not in str(refused.value)


def test_text_filling_version_10_at_level_m_exactly_is_drawn() -> None:
    symbol = make_symbol("A" * V10_M_CAPACITY_CHARS)
    assert symbol.version == SPEC_VERSION_MAX
    assert symbol.error == "M"


@pytest.mark.parametrize(
    "length_chars", [V10_M_CAPACITY_CHARS + 1, TOO_LONG_CHARS, BEYOND_ANY_QR_CHARS]
)
@pytest.mark.parametrize("render", RENDERERS, ids=lambda render: render.__name__)
def test_text_too_long_for_version_10_is_refused_not_drawn_larger(
    render: Callable[[str], object], length_chars: int
) -> None:
    with pytest.raises(CodeTooLongForQr) as refused:
        render("A" * length_chars)
    assert refused.value.code == "qr_code_too_long"
    assert refused.value.length_chars == length_chars


def test_refusals_are_value_errors_for_callers_that_catch_bad_input_broadly() -> None:
    assert issubclass(CodeTooLongForQr, QrTextRefused)
    assert issubclass(TextNotQrAlphanumeric, QrTextRefused)
    with pytest.raises(ValueError, match="version 10"):
        make_symbol("A" * TOO_LONG_CHARS)


@pytest.mark.parametrize(
    ("scale", "border"),
    [(0, 4), (33, 4), (8, 3), (8, 17)],
    ids=["scale-0", "scale-33", "border-3", "border-17"],
)
def test_a_drawing_size_out_of_bounds_is_a_programmer_error(scale: int, border: int) -> None:
    code = code_from(ALL_ZERO_BYTES)
    with pytest.raises(InvariantViolated):
        render_png(code, scale=scale, border=border)
    with pytest.raises(InvariantViolated):
        render_svg(code, scale=scale, border=border)


def test_the_png_draws_dark_modules_inside_a_light_quiet_zone_at_the_given_scale() -> None:
    code = code_from(ALL_ZERO_BYTES)
    scale = 5
    image = Image.open(io.BytesIO(render_png(code, scale=scale))).convert("L")
    modules_across = len(make_symbol(code).matrix) + 2 * QUIET_ZONE_MODULES
    assert image.size == (modules_across * scale, modules_across * scale)
    # The corner pixel lies in the quiet zone; the first one inside it is a finder pattern's corner.
    inside = QUIET_ZONE_MODULES * scale
    assert image.getpixel((0, 0)) == GREY_LIGHT
    assert image.getpixel((inside - 1, inside - 1)) == GREY_LIGHT
    assert image.getpixel((inside, inside)) == GREY_DARK
