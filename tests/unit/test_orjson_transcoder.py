"""The stores' transcoder writes what the library's would, byte for byte, or lets it write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder
from hypothesis import given, settings
from hypothesis import strategies as st

from ticketing.shared.adapters.orjson_transcoder import OrjsonTranscoder

leaves = st.one_of(
    st.text(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.uuids(),
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(timezones=st.timezones()),
    st.datetimes(),
    st.floats(allow_nan=False),
)
# States as aggregates' events hold them: nested lists, tuples and dicts (a few keyed by
# numbers, which `json` writes as strings and this transcoder leaves to it).
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=5), inner, max_size=3),
        st.dictionaries(st.integers(), inner, max_size=2),
    ),
    max_leaves=12,
)


def transcoders() -> tuple[JSONTranscoder, OrjsonTranscoder]:
    app: Application[UUID] = Application()
    library, flat = JSONTranscoder(), OrjsonTranscoder()
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


def test_a_nested_state_reads_back_the_same() -> None:
    state = {
        "holds": [{"hold_id": "parking:1:start", "amount_vnd": 25_000}],
        "segments": ({"from": datetime(2026, 12, 7, 8, tzinfo=UTC), "version": 3},),
        "extensions": {"ext-1": uuid4()},
    }
    written = FLAT.encode(state)
    assert written == LIBRARY.encode(state)
    assert LIBRARY.decode(written) == {**state, "segments": list(state["segments"])}


@settings(max_examples=300)
@given(
    st.datetimes(),
    st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
    ),
)
def test_a_datetime_at_any_offset_is_written_as_the_library_writes_it(
    moment: datetime, offset: timedelta
) -> None:
    state = {"at": moment.replace(tzinfo=timezone(offset))}
    assert FLAT.encode(state) == LIBRARY.encode(state)


def test_offsets_with_seconds_and_ambiguous_local_times_are_written_as_the_library_does() -> None:
    hanoi, berlin = ZoneInfo("Asia/Ho_Chi_Minh"), ZoneInfo("Europe/Berlin")
    for moment in (
        datetime(1900, 1, 1, tzinfo=hanoi),  # local mean time, +07:06:40
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30, seconds=15))),
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5, microseconds=15))),
        datetime(2026, 10, 25, 2, 30, fold=0, tzinfo=berlin),
        datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=berlin),
        datetime(2026, 12, 7, 6, 0, 8, 2500, tzinfo=hanoi),
    ):
        state = {"at": moment}
        assert FLAT.encode(state) == LIBRARY.encode(state), moment


def test_what_orjson_would_write_differently_is_left_to_the_library() -> None:
    for state in ({"fare": 1.1}, {"by_leg": {1: 5_000}}, {"big": 2**70}, [1, 2]):
        assert FLAT.encode(state) == LIBRARY.encode(state)
