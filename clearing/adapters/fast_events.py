"""Stored events decoded with orjson, to the very objects the application's own mapper gives.

A cycle decodes millions of events. The library's `JSONTranscoder` parses with `json` and calls
back into Python for every object in them, about as long as everything else clearing does with
an event. orjson parses in C; the objects it gives are then passed, innermost first, through the
library's own object hook (`_decode_obj`, as `json` would call it), so UUIDs, datetimes and every
registered transcoding come back exactly as the library decodes them. JSON orjson refuses and
`json` takes (integers wider than 64 bits, NaN, lone surrogates) goes through the library's path.

The rest of the mapping (topics, originator ids, upcasting, the event object) is the library's
`Mapper.to_domain_event`, unchanged. An application whose mapper or transcoder is not the
library's JSON one, or that compresses or encrypts its events, keeps its own mapper.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent


class OrjsonDecoding(JSONTranscoder):
    """The transcodings of `source`, decoded with orjson; encoding is the library's."""

    def __init__(self, source: JSONTranscoder) -> None:
        super().__init__()
        for transcoding in source.names.values():
            self.register(transcoding)

    def decode(self, data: bytes) -> Any:
        try:
            return _parsed(data, self._decode_obj)
        except _NotTheSame:
            return super().decode(data)


class _NotTheSame(Exception):
    """orjson's reading of a state may differ from `json`'s: the library decodes it."""


def _parsed(data: bytes, hook: Callable[[dict[str, Any]], Any]) -> Any:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise _NotTheSame from None
    kind = type(parsed)
    if kind is dict or kind is list:
        return _hooked(parsed, hook)
    if kind is float:
        raise _NotTheSame
    return parsed


def _hooked(value: Any, hook: Callable[[dict[str, Any]], Any]) -> Any:
    """`value` (a dict or a list) with every object in it passed through `hook`, innermost
    first, as `json` calls `object_hook` while it parses. The hook returns any object of other
    than two keys as it is (`JSONTranscoder._decode_obj`), so it is called for those of two.

    orjson reads an integer beyond 64 bits as a float, where `json` keeps it whole: a float
    anywhere is `_NotTheSame` (no state clearing reads carries one)."""
    if type(value) is dict:
        for key, item in value.items():
            kind = type(item)
            if kind is dict or kind is list:
                value[key] = _hooked(item, hook)
            elif kind is float:
                raise _NotTheSame
        return hook(value) if len(value) == 2 else value
    for index, item in enumerate(value):
        kind = type(item)
        if kind is dict or kind is list:
            value[index] = _hooked(item, hook)
        elif kind is float:
            raise _NotTheSame
    return value


def fast_mapper(app: Application[UUID]) -> Mapper[UUID]:
    """A mapper giving the events `app.mapper` gives, faster when the format allows."""
    transcoder = _orjson_decoding(app)
    return app.mapper if transcoder is None else Mapper(transcoder=transcoder)


def _orjson_decoding(app: Application[UUID]) -> OrjsonDecoding | None:
    """The orjson decoding of `app`'s transcodings; None when its events are stored otherwise
    than by the library's plain JSON mapper."""
    mapper = app.mapper
    transcoder = mapper.transcoder
    if (
        type(mapper) is not Mapper
        or not isinstance(transcoder, JSONTranscoder)
        or type(transcoder).decode is not JSONTranscoder.decode
        or type(transcoder)._decode_obj is not JSONTranscoder._decode_obj
        or mapper.compressor is not None
        or mapper.cipher is not None
    ):
        return None
    return OrjsonDecoding(transcoder)


# The fields of an event's state that a reader needs, by event class; None: not wanted.
FieldsOf = Callable[[type[Any]], "tuple[str, ...] | None"]


class StateFields:
    """Some fields of stored events' state, each decoded as the application's mapper decodes
    it, without decoding the rest (a cycle needs three or four fields of events that carry
    twice as many, timestamps among them).

    Each field's value goes through the object hook as it would inside the whole state (the
    hook sees one object at a time, innermost first), so it is the value the event would hold.
    A state this cannot take apart the same way (an application keeping its own mapper, JSON
    orjson refuses, a state stored at another version than its class's, which is upcast, or
    of exactly two fields) is decoded whole by the application's mapper, and the fields are
    taken from the event."""

    def __init__(self, app: Application[UUID]) -> None:
        self._mapper = app.mapper
        transcoder = _orjson_decoding(app)
        self._hook = None if transcoder is None else transcoder._decode_obj

    def fields(self, stored: StoredEvent, cls: type[Any], names: tuple[str, ...]) -> dict[str, Any]:
        """`names` of the state of `stored`, an event of class `cls` (its topic's)."""
        return self.row_fields(
            cls, names, stored.originator_id, stored.originator_version, stored.topic, stored.state
        )

    def row_fields(
        self,
        cls: type[Any],
        names: tuple[str, ...],
        originator_id: UUID | str,
        version: int,
        topic: str,
        state: bytes,
    ) -> dict[str, Any]:
        """`fields` of a stored event given as its columns."""
        hook = self._hook
        if hook is not None:
            try:
                return _some_fields(state, names, hook, getattr(cls, "class_version", 1))
            except _NotTheSame:
                pass
        stored = StoredEvent(originator_id, version, topic, state)
        decoded = vars(self._mapper.to_domain_event(stored))
        return {name: decoded[name] for name in names}


def _some_fields(
    data: bytes, names: tuple[str, ...], hook: Callable[[dict[str, Any]], Any], class_version: int
) -> dict[str, Any]:
    """`names` of the state `data`, each value decoded as it is inside the whole state, of an
    event class at `class_version`."""
    try:
        state = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise _NotTheSame from None
    # A state of two fields could be a transcoded object itself; one stored at another version
    # than its class's is upcast, which is the mapper's to do (the mapper stores the version
    # in the state when it is above 1, as `class_version`).
    if type(state) is not dict or len(state) == 2:
        raise _NotTheSame
    if state.get("class_version", 1) != class_version:
        raise _NotTheSame
    found: dict[str, Any] = {}
    for name in names:
        value = state[name]
        kind = type(value)
        if kind is dict or kind is list:
            value = _hooked(value, hook)
        elif kind is float:
            raise _NotTheSame
        found[name] = value
    return found
