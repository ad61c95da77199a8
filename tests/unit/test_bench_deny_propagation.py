"""The deny-list benchmark's bookkeeping: a device holds a card from the first page that lists
it after the version it held, and the quantiles are read from the samples."""

from __future__ import annotations

from loadtests.bench_deny_propagation import DeviceProbe, Figures


def page(version: int, *card_ids: str) -> dict[str, object]:
    return {"entries": [{"card_id": c, "serial": None} for c in card_ids], "version": version}


def test_a_device_holds_a_card_from_the_first_page_listing_it_and_follows_versions() -> None:
    probe = DeviceProbe()
    probe.apply(0, page(0))
    probe.apply(0, page(3, "card-a"))
    first = probe.seen_at["card-a"]
    probe.apply(3, page(4, "card-a", "card-b"))
    assert (probe.version, probe.polls) == (4, 3)
    assert probe.seen_at["card-a"] == first
    assert set(probe.seen_at) == {"card-a", "card-b"}


def test_a_page_asked_for_from_an_older_version_is_not_applied() -> None:
    probe = DeviceProbe(version=5)
    probe.apply(2, page(6, "card-a"))
    assert (probe.version, probe.seen_at) == (5, {})


def test_quantiles_are_read_from_the_sorted_samples() -> None:
    figures = Figures(samples=[0.9, 0.1, 0.5, 0.3, 0.7], missed=0, devices=5, blocks=1)
    assert (figures.quantile_s(0.5), figures.quantile_s(0.99), figures.quantile_s(0)) == (
        0.5,
        0.9,
        0.1,
    )
