"""The replies the pipelined Redis connection reads, byte for byte, whole and in pieces."""

from __future__ import annotations

import pytest

from parking.adapters.redis_pipeline import (
    PIPELINE_ARRAY_MAX_ITEMS,
    ProtocolViolation,
    RedisPipelineError,
    encode_command,
    parse_reply,
)

# MGET of a marker that is set and an entry that is not, then an OK, then an error.
STREAM = b"*2\r\n$1\r\n1\r\n$-1\r\n+OK\r\n-ERR unknown command\r\n:42\r\n"


def test_a_command_is_written_as_an_array_of_bulk_strings() -> None:
    # MGET of two keys
    assert encode_command(b"MGET", "k:1", 7) == b"*3\r\n$4\r\nMGET\r\n$3\r\nk:1\r\n$1\r\n7\r\n"


def test_replies_are_read_one_after_the_other() -> None:
    replies, start = [], 0
    while (parsed := parse_reply(STREAM, start)) is not None:
        reply, start = parsed
        replies.append(reply)

    assert replies[:2] == [[b"1", None], b"OK"]
    assert isinstance(replies[2], RedisPipelineError)
    assert str(replies[2]) == "ERR unknown command"
    assert replies[3] == 42
    assert start == len(STREAM)


def test_a_reply_cut_anywhere_is_incomplete_until_its_last_byte() -> None:
    mget = b"*2\r\n$1\r\n1\r\n$11\r\n3|ab|cd\r\nef\r\n"

    cut = [parse_reply(mget[:end], 0) for end in range(len(mget))]

    assert cut == [None] * len(mget)
    assert parse_reply(mget, 0) == ([b"1", b"3|ab|cd\r\nef"], len(mget))


@pytest.mark.parametrize(
    "reply",
    [b"?what\r\n", b"$-2\r\n", b"*-5\r\n", b"*%d\r\n" % (PIPELINE_ARRAY_MAX_ITEMS + 1)],
    ids=["unknown type", "negative bulk", "negative array", "array too long"],
)
def test_bytes_that_are_no_reply_are_refused(reply: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        parse_reply(reply, 0)
