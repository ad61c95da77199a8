"""The tap path's transcoder writes what the library's would, byte for byte, or lets it write."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder
from hypothesis import given, settings
from hypothesis import strategies as st

from ticketing.taps.adapters.flat_transcoder import FlatJSONTranscoder

values = st.one_of(
    st.text(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.uuids(),
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(),
    st.floats(allow_nan=False),
    st.lists(st.uuids(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def transcoders() -> tuple[JSONTranscoder, FlatJSONTranscoder]:
    app: Application[UUID] = Application()
    library, flat = JSONTranscoder(), FlatJSONTranscoder()
    app.register_transcodings(library)
    app.register_transcodings(flat)
    return library, flat


LIBRARY, FLAT = transcoders()


@settings(max_examples=500)
@given(st.dictionaries(st.text(), values, max_size=12))
def test_any_state_is_written_as_the_library_writes_it(state: dict[str, Any]) -> None:
    assert FLAT.encode(state) == LIBRARY.encode(state)


def test_a_tap_state_reads_back_the_same() -> None:
    state = {
        "card_id": uuid4(),
        "tapped_at": datetime(2026, 11, 21, 7, 30, tzinfo=UTC),
        "seq": 2**40,
        "code_text": "TL1:6BFOXN*TS0BI$ZD",
        "refusal_reason": None,
        "display_name": "Nguyễn Văn Minh\n\t\u2028",
    }
    written = FLAT.encode(state)
    assert written == LIBRARY.encode(state)
    assert LIBRARY.decode(written) == state


def test_states_that_are_not_flat_are_left_to_the_library() -> None:
    nested = {"legs": [{"from": uuid4()}], "at": datetime.now(UTC)}
    assert FLAT.encode(nested) == LIBRARY.encode(nested)
    assert FLAT.encode([1, 2]) == LIBRARY.encode([1, 2])
