"""vsmartcard's vpcd wire protocol, shared by both of its ends here: the card emulator, which
connects as the card (`hardware.emulator.vpcd`), and the listening reader, which stands where
vpcd does (`hardware.vpcd_listen`).

Every message either way is a 2-byte big-endian length and a payload. From the reader's side a
1-byte payload is a control code (power off, power on, reset: none answered; get ATR: answered
with the ATR); a longer one is a command APDU, answered with the response APDU. A reply of
length 0, or a closed connection, is the card leaving the field.
"""

from __future__ import annotations

LENGTH_BYTES = 2
CONTROL_BYTES = 1
CONTROL_POWER_OFF, CONTROL_POWER_ON, CONTROL_RESET, CONTROL_GET_ATR = 0x00, 0x01, 0x02, 0x04
# The longest payload a 2-byte length can announce.
MESSAGE_BYTES_MAX = (1 << (8 * LENGTH_BYTES)) - 1


def framed(payload: bytes) -> bytes:
    """`payload` with its length in front: one send, so Nagle never holds back half of it."""
    if len(payload) > MESSAGE_BYTES_MAX:
        raise ValueError(f"a vpcd message holds at most {MESSAGE_BYTES_MAX} bytes")
    return len(payload).to_bytes(LENGTH_BYTES, "big") + payload
