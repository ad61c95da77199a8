"""The replies the pipelined Redis connection reads, byte for byte, whole and in pieces."""

from __future__ import annotations

import pytest

from parking.adapters.redis_pipeline import (
    ProtocolViolation,
    RedisPipelineError,
    Replies,
    Reply,
    encode_command,
)

# MGET of a marker that is set and an entry that is not, then an OK, then an error.
STREAM = b"*2\r\n$1\r\n1\r\n$-1\r\n+OK\r\n-ERR unknown command\r\n:42\r\n"


def read_all(replies: Replies) -> list[Reply | Exception]:
    found = []
    while (read := replies.next()) is not None:
        found.append(read[0])
    return found


def test_a_command_is_written_as_an_array_of_bulk_strings() -> None:
    # MGET of two keys
    assert encode_command(b"MGET", "k:1", 7) == b"*3\r\n$4\r\nMGET\r\n$3\r\nk:1\r\n$1\r\n7\r\n"


def test_replies_are_read_one_after_the_other() -> None:
    replies = Replies()
    replies.feed(STREAM)

    found = read_all(replies)

    assert found[:2] == [[b"1", None], b"OK"]
    assert isinstance(found[2], RedisPipelineError)
    assert str(found[2]) == "ERR unknown command"
    assert found[3:] == [42]


def test_a_reply_cut_anywhere_is_incomplete_until_its_last_byte() -> None:
    mget = b"*2\r\n$1\r\n1\r\n$11\r\n3|ab|cd\r\nef\r\n"
    replies = Replies()

    cut = []
    for byte in mget[:-1]:
        replies.feed(bytes([byte]))
        cut.append(replies.next())
    replies.feed(mget[-1:])

    assert cut == [None] * (len(mget) - 1)
    assert replies.next() == ([b"1", b"3|ab|cd\r\nef"],)


@pytest.mark.parametrize(
    "reply",
    [b"?what\r\n", b"$-2\r\n", b"*-5\r\n"],
    ids=["unknown type", "negative bulk", "negative array"],
)
def test_bytes_that_are_no_reply_are_refused(reply: bytes) -> None:
    replies = Replies()
    replies.feed(reply)

    with pytest.raises(ProtocolViolation):
        replies.next()
