"""Base45 (RFC 9285): bytes as text in the QR alphanumeric set.

Two bytes become three characters, a final lone byte two; the first character of a group is its
least significant base-45 digit. Decoding runs once per scanned code, before any signature check,
so it is written to cost a few microseconds rather than a Python loop per character (see `decode`).
"""

from functools import lru_cache

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
BASE = len(ALPHABET)
BASE_SQUARED = BASE * BASE
GROUP_CHARS = 3
GROUP_BYTES = 2
TAIL_CHARS = 2
GROUP_VALUE_MAX = 0xFFFF
TAIL_VALUE_MAX = 0xFF
BYTE_BITS = 8
DIGIT_MASK = 0xFF
# A group is decoded in a 3-byte slot of one big integer: its value is at most 44 + 44*45 + 44*2025
# = 91,124 < 2**24, so one slot never carries into the next, and any value above 0xFFFF shows as
# a bit in the slot's top byte.
SLOT_BYTES = 3
# Masks are cached by group count; a code has 98 groups, so a handful of sizes is plenty.
MASK_CACHE_MAX = 16
# Marks a byte outside the alphabet in the translation table; no digit value reaches it.
NOT_A_DIGIT = 0xFF

_DIGIT_OF = bytes(
    ALPHABET.index(chr(code)) if chr(code) in ALPHABET else NOT_A_DIGIT for code in range(256)
)
_NOT_A_DIGIT_BYTE = bytes([NOT_A_DIGIT])


class Base45Error(ValueError):
    """The text is not Base45: a foreign character, a bad length, or a group out of range."""


def encode(data: bytes) -> str:
    """`data` as Base45 text; encoding runs on the phone once per code, so a loop is fine."""
    chars: list[str] = []
    whole = len(data) - len(data) % GROUP_BYTES
    for index in range(0, whole, GROUP_BYTES):
        value = data[index] << BYTE_BITS | data[index + 1]
        rest, low = divmod(value, BASE)
        high, middle = divmod(rest, BASE)
        chars += (ALPHABET[low], ALPHABET[middle], ALPHABET[high])
    if whole < len(data):
        high, low = divmod(data[whole], BASE)
        chars += (ALPHABET[low], ALPHABET[high])
    return "".join(chars)


def decode(text: str) -> bytes:
    """The bytes `text` encodes; raises `Base45Error` for anything RFC 9285 rejects.

    Every step is a C-level operation on the whole text: `bytes.translate` maps characters to
    digits, one big integer holds every 3-character group in its own 3-byte slot, and shifted
    masks combine each group's digits at once. A decode of a 298-character code costs about as
    much as parsing its fields, not as much as a signature check.
    """
    if not text.isascii():
        raise Base45Error("a character outside the Base45 alphabet")
    digits = text.encode("ascii").translate(_DIGIT_OF)
    if _NOT_A_DIGIT_BYTE in digits:
        raise Base45Error("a character outside the Base45 alphabet")
    groups, tail_chars = divmod(len(digits), GROUP_CHARS)
    if tail_chars not in (0, TAIL_CHARS):
        raise Base45Error(f"length {len(text)} leaves one character over")
    out = bytearray(groups * GROUP_BYTES + (1 if tail_chars else 0))
    if groups:
        _decode_groups(digits[: groups * GROUP_CHARS], groups, out)
    if tail_chars:
        value = digits[-2] + digits[-1] * BASE
        if value > TAIL_VALUE_MAX:
            raise Base45Error(f"final pair decodes to {value}, above 0xFF")
        out[-1] = value
    return bytes(out)


def _decode_groups(digits: bytes, groups: int, out: bytearray) -> None:
    """Writes the 2-byte value of each 3-digit group into `out`, big-endian."""
    low_digit_mask, overflow_mask = _masks(groups)
    packed = int.from_bytes(digits, "big")
    # In each slot the first character is the top byte, as the text is read big-endian.
    first = (packed >> 2 * BYTE_BITS) & low_digit_mask
    second = (packed >> BYTE_BITS) & low_digit_mask
    third = packed & low_digit_mask
    values = first + second * BASE + third * BASE_SQUARED
    if values & overflow_mask:
        raise Base45Error("a 3-character group decodes above 0xFFFF")
    slots = values.to_bytes(groups * SLOT_BYTES, "big")
    # Each slot is [0, high byte, low byte]; interleave the highs and lows into the output.
    end = groups * GROUP_BYTES
    out[0:end:GROUP_BYTES] = slots[1::SLOT_BYTES]
    out[1:end:GROUP_BYTES] = slots[2::SLOT_BYTES]


@lru_cache(maxsize=MASK_CACHE_MAX)
def _masks(groups: int) -> tuple[int, int]:
    """Per-slot masks for `groups` slots: the lowest byte, and the top byte (overflow)."""
    slot_max = (1 << SLOT_BYTES * BYTE_BITS) - 1
    low_digit = int.from_bytes(DIGIT_MASK.to_bytes(SLOT_BYTES, "big") * groups, "big")
    overflow_slot = (slot_max & ~GROUP_VALUE_MAX).to_bytes(SLOT_BYTES, "big")
    return low_digit, int.from_bytes(overflow_slot * groups, "big")
