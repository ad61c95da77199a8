"""The behaviour every validator `Backend` promises, written once and run against each of them.

The device trusts its backend for a few things only: an answer per uploaded tap, one effect for
a batch sent twice (the device resends whenever an answer is lost), a refusal it can keep its
taps for, and the trust and config it syncs with ETags. The fake the device's unit tests use and
the HTTP adapter talking to the real app must both keep these promises, or the unit tests prove
a device that only works against the fake.

A test module subclasses `BackendContract` as `Test...` and overrides the `site` fixture with a
`BackendSite` for its backend; pytest then runs every test below against it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from validators.backend import Backend, BackendRefused

# An epoch no validator of a test is ever enrolled in.
EPOCH_NEVER_ENROLLED = 7


class BackendSite(Protocol):
    """A backend with one validator registered, and what a contract test needs around it."""

    @property
    def backend(self) -> Backend: ...

    @property
    def validator_id(self) -> int: ...

    def good_tap(self, seq: int) -> dict[str, Any]:
        """A tap, as the device uploads it, that the backend accepts."""
        ...

    def refused_tap(self, seq: int) -> dict[str, Any]:
        """A tap the backend refuses, with a reason."""
        ...

    def recorded_seqs(self) -> list[int]:
        """The numbers of the validator's taps the backend has recorded, each once, sorted."""
        ...

    def deny_a_card(self) -> str:
        """Puts a card on the deny list; returns its id as the deny list writes it."""
        ...


def _statuses(answers: list[Any]) -> list[tuple[int, str]]:
    return [(answer.seq, answer.status) for answer in answers]


class BackendContract:
    """Behaviour tests for a validator `Backend`; not collected itself, as its name lacks `Test`."""

    @pytest.fixture
    def site(self) -> Iterator[BackendSite]:
        raise NotImplementedError("each backend's test class provides a fresh site")

    def test_an_upload_is_answered_tap_by_tap_in_order(self, site: BackendSite) -> None:
        taps = [site.good_tap(1), site.refused_tap(2), site.good_tap(3)]
        answers = site.backend.upload(site.validator_id, taps)
        assert _statuses(answers) == [(1, "accepted"), (2, "refused"), (3, "accepted")]
        assert answers[0].reason is None
        assert answers[1].reason, "a refusal says why"

    def test_a_refused_tap_is_recorded_all_the_same(self, site: BackendSite) -> None:
        site.backend.upload(site.validator_id, [site.refused_tap(1)])
        assert site.recorded_seqs() == [1]

    def test_a_batch_uploaded_twice_has_one_effect(self, site: BackendSite) -> None:
        taps = [site.good_tap(1), site.good_tap(2)]
        site.backend.upload(site.validator_id, taps)
        again = site.backend.upload(site.validator_id, taps)
        assert _statuses(again) == [(1, "duplicate"), (2, "duplicate")]
        assert site.recorded_seqs() == [1, 2]

    def test_another_tap_under_a_taken_number_is_a_conflict_not_a_tap(
        self, site: BackendSite
    ) -> None:
        first = site.good_tap(1)
        site.backend.upload(site.validator_id, [first])
        other = {**first, "tapped_at": first["tapped_at"] + 1}
        [answer] = site.backend.upload(site.validator_id, [other])
        assert (answer.seq, answer.status) == (1, "seq_conflict")
        assert site.recorded_seqs() == [1]

    def test_an_upload_in_an_epoch_never_enrolled_is_refused(self, site: BackendSite) -> None:
        with pytest.raises(BackendRefused):
            site.backend.upload(site.validator_id, [site.good_tap(1)], epoch=EPOCH_NEVER_ENROLLED)
        assert site.recorded_seqs() == []

    def test_the_issuer_keys_come_with_an_etag_that_answers_unchanged(
        self, site: BackendSite
    ) -> None:
        fetched = site.backend.issuer_keys(None)
        assert fetched is not None
        assert fetched.body["keys"], "the device cannot check a code without a key"
        assert fetched.etag is not None
        assert site.backend.issuer_keys(fetched.etag) is None

    def test_the_config_is_the_validators_own_with_an_etag(self, site: BackendSite) -> None:
        fetched = site.backend.config(site.validator_id, None)
        assert fetched is not None
        assert fetched.body["validator"]["validator_id"] == site.validator_id
        assert fetched.body["media"], "the device needs a fare for each medium"
        assert fetched.etag is not None
        assert site.backend.config(site.validator_id, fetched.etag) is None

    def test_the_deny_list_grows_by_deltas_from_a_version(self, site: BackendSite) -> None:
        empty = site.backend.deny_list(0)
        assert (empty["entries"], empty["more"]) == ([], False)
        card_id = site.deny_a_card()
        grown = site.backend.deny_list(0)
        assert [entry["card_id"] for entry in grown["entries"]] == [card_id]
        assert grown["version"] > empty["version"]
        assert site.backend.deny_list(grown["version"])["entries"] == []

    def test_a_long_poll_answers_at_once_for_a_card_listed_after_the_version(
        self, site: BackendSite
    ) -> None:
        empty = site.backend.deny_list(0)
        card_id = site.deny_a_card()
        # The entry is there already: the wait is never used, the answer comes at once.
        grown = site.backend.deny_list(empty["version"], wait_s=25)
        assert [entry["card_id"] for entry in grown["entries"]] == [card_id]

    def test_a_health_report_is_taken_and_answered_with_the_backends_clock(
        self, site: BackendSite
    ) -> None:
        report = {
            "sent_at_ms": 1_800_000_000_000,
            "outbox_depth": 2,
            "oldest_tap_age_s": 30,
            "last_upload_at": None,
            "last_sync_at": 1_800_000_000,
            "clock_offset_ms": None,
            "software_version": "0.1.0",
            "keys_version": 1,
            "keys_etag": '"keys-1"',
            "deny_version": 0,
            "config_etag": None,
        }
        server_time_ms = site.backend.report_health(site.validator_id, report)
        assert server_time_ms > 0
