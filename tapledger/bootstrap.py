"""The composition root: every adapter is chosen here, and tests pass fakes to the same function."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from clearing.adapters.line_table import SqlLineStore
from clearing.adapters.operator_files import load_packaged
from clearing.adapters.terms_files import load_packaged_terms
from clearing.application.cycles import ClearingCycles
from clearing.application.pass_revenue import feed_pass_networks
from clearing.application.revenue_lines import fare_engine_standalone
from clearing.application.service import build_clearing
from hardware.sam import Sam
from parking.adapters.tariff_files import load_rate_tables
from parking.application.service import Parking
from parking.domain.ports import CodeReader
from tapledger.auth import TokenStore
from tapledger.fare_feed import load_fares
from tapledger.fleet import fleet_parts
from tapledger.http.hotstate import HotState
from tapledger.http.hotstate_memory import MemoryHotState
from tapledger.http.hotstate_redis import RedisHotState
from tapledger.http.idempotency_records import SqlIdempotencyRecords
from tapledger.invalidation import PostgresChannel
from tapledger.parking_codes import TapVerifierCodes
from tapledger.parking_index import make_enforcement_index
from tapledger.sam_key_file import make_sam
from tapledger.settings import (
    CLEARING_POOL_MAX,
    POSTGRES_POOL_MAX,
    READ_MODEL_POOL_KEPT,
    SQLITE_LOCK_TIMEOUT_S,
    Settings,
)
from ticketing.accounts.adapters.ledger_follower import LedgerFollower
from ticketing.accounts.adapters.read_model import LedgerReadModel
from ticketing.accounts.application.ledger import Clock, Ledger, utc_now
from ticketing.cards.adapters.card_views import CardFollower, CardViews
from ticketing.cards.adapters.key_vault import KeyVault
from ticketing.cards.application.card_issuer import CardIssuer
from ticketing.cards.application.deny_list_watch import DenyListWatch
from ticketing.cards.application.invalidation import (
    InvalidationChannel,
    LocalChannel,
    card_invalidations,
)
from ticketing.cards.application.smart_cards import SmartCards
from ticketing.cards.domain.smart_card import SmartCard
from ticketing.fares.engine import FareEngine
from ticketing.journeys.adapters.journey_views import JourneyFollower, JourneyViews
from ticketing.journeys.adapters.pricing_locks import FilePricingLock, PostgresPricingLock
from ticketing.journeys.application.journeys import Journeys
from ticketing.journeys.application.pass_sales import PassSales
from ticketing.journeys.application.pricing_lock import PricingLock
from ticketing.journeys.application.reconciliation import Discrepancy, reconcile
from ticketing.shared.access import Role
from ticketing.shared.adapters.follower import Follower
from ticketing.taps.adapters.health_views import HealthFollower, HealthViews
from ticketing.taps.adapters.refusal_views import RefusalFollower, RefusalViews
from ticketing.taps.adapters.tap_views import TapFollower, TapViews
from ticketing.taps.application.ingestion import TapIngestion
from ticketing.taps.application.tap_verification import TapVerifier, start_thread
from ticketing.taps.application.validator_health import ValidatorHealth

FOLLOWER_STOP_TIMEOUT_S = 5.0
# How long a starting worker waits to hear the invalidation channel before it serves anyway.
LISTENING_START_WAIT_S = 5.0

logger = logging.getLogger(__name__)


@dataclass
class Container:
    """Everything a process of the product needs, built once and closed once."""

    settings: Settings
    ledger: Ledger
    cards: CardIssuer
    smart_cards: SmartCards
    engine: Engine
    read_model: LedgerReadModel
    follower: LedgerFollower
    card_views: CardViews
    card_follower: CardFollower
    taps: TapIngestion
    tap_views: TapViews
    tap_follower: TapFollower
    refusal_follower: RefusalFollower
    journeys: Journeys
    journey_views: JourneyViews
    journey_follower: JourneyFollower
    hot_state: HotState
    tokens: TokenStore
    pass_sales: PassSales
    idempotency_records: SqlIdempotencyRecords
    parking: Parking
    clearing: ClearingCycles
    # News that a cached token, key set or deny list is stale (`tapledger.invalidation`).
    invalidations: PostgresChannel | LocalChannel
    validator_health: ValidatorHealth
    health_views: HealthViews
    health_follower: HealthFollower
    # Wakes the deny list's long polls (`GET /v1/deny-list?wait_s=`) when a card is denied.
    deny_list_watch: DenyListWatch
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def refusal_views(self) -> RefusalViews:
        """What devices were refused (`refusal_follower`'s tables)."""
        return RefusalViews(self.engine)

    @property
    def followers(self) -> tuple[Follower, ...]:
        return (
            self.follower,
            self.card_follower,
            self.tap_follower,
            self.refusal_follower,
            self.journey_follower,
            self.parking.follower,
            self.health_follower,
        )

    def create_tables(self) -> None:
        """The read models' tables, the tokens' and the idempotency records' (first process)."""
        for follower in self.followers:
            follower.create_tables()
        self.tokens.create_tables()
        self.idempotency_records.create_tables()
        SqlLineStore(self.engine).create_tables()

    def catch_up(self) -> None:
        """Brings every read model up to the end of the log (for the CLI and the demo)."""
        self.tap_follower.catch_up()
        self.journeys.catch_up()
        for follower in self.followers:
            follower.catch_up()

    def close_service_day(self, day: date) -> int:
        """Charges the journeys of `day` still open the maximum fare (after catching up)."""
        self.catch_up()
        closed = self.journeys.close_service_day(day)
        self.journey_follower.catch_up()
        return closed

    def close_ended_day(self, day: date | None = None) -> tuple[date, int]:
        """Closes an ended service day (by default the last) after catching up; idempotent."""
        self.catch_up()
        closed = self.journeys.close_ended_day(day)
        self.journey_follower.catch_up()
        return closed

    def reconcile_journeys(self, account_id: UUID | None = None) -> list[Discrepancy]:
        """Where the ledger and the journeys disagree (after catching up); empty when they
        agree: of one account, or of all."""
        self.catch_up()
        return reconcile(
            self.read_model.journey_lines(account_id),
            self.read_model.pending_journey_holds(account_id),
            self.journeys.get_journey,
        )

    def start_invalidations(self) -> None:
        """Hears the revocations and blocks other processes commit (serving processes only).
        Waits a moment for the first LISTEN, so a worker does not answer requests deaf to
        news; if the database is slow to answer, the caches' timers cover until it does."""
        if isinstance(self.invalidations, PostgresChannel):
            self.invalidations.start()
            if not self.invalidations.listening.wait(LISTENING_START_WAIT_S):
                logger.warning("not yet listening for invalidations; serving on timers")

    def start_followers(self) -> None:
        """Follows the event store in background threads, woken by every local save."""
        self.ledger.after_save.append(self.follower.wake.set)
        self.cards.after_save.append(self.card_follower.wake.set)
        self.taps.after_save.append(self.tap_follower.wake.set)
        self.taps.after_save.append(self.refusal_follower.wake.set)
        self.taps.after_save.append(self.journeys.wake.set)
        self.taps.after_save.append(self.health_follower.wake.set)
        self.journeys.after_save.append(self.journey_follower.wake.set)
        self.parking.store.after_save.append(self.parking.follower.wake.set)
        self.parking.store.after_save.append(self.parking.index_follower.wake.set)
        # The fare follower runs in-process with the view followers; its effects are events.
        # So does the enforcement index's, which writes hot state, not views.
        for name, run in (
            ("follower-journeys", self.journeys.run),
            ("follower-enforcement-index", self.parking.index_follower.run),
        ):
            thread = threading.Thread(target=run, args=(self._stop,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        for follower in self.followers:
            thread = threading.Thread(
                target=follower.run,
                args=(self._stop,),
                name=f"follower-{follower.projection.name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        if isinstance(self.invalidations, PostgresChannel):
            self.invalidations.close()
        self._stop.set()
        for follower in self.followers:
            follower.wake.set()
        self.journeys.wake.set()
        self.parking.index_follower.wake.set()
        for thread in self._threads:
            thread.join(FOLLOWER_STOP_TIMEOUT_S)
        self.ledger.close()
        self.cards.close()
        self.taps.close()
        self.journeys.close()
        self.parking.close()
        self.clearing.store.close()
        self.hot_state.close()
        self.engine.dispose()


def bootstrap(
    settings: Settings | None = None,
    *,
    clock: Clock = utc_now,
    hot_state: HotState | None = None,
    sam: Sam | None = None,
    create_schema: bool = True,
) -> Container:
    """Builds the product from settings. `create_schema=False` is for worker processes started
    after a first process created the tables (concurrent DDL is unsafe on PostgreSQL); `sam`
    replaces the software SAM the settings name (tests pass one holding the vectors' keys)."""
    settings = settings or Settings()
    # First, so a feed that cannot price a tap stops the process before any store is opened.
    fares = load_fares(settings)
    if settings.postgres_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    ledger, cards = make_ledger_and_cards(settings, clock, create_schema=create_schema)
    engine = make_engine(settings.read_model_url())
    card_views = CardViews(engine)
    verifier = make_verifier(
        cards, card_views, sam if sam is not None else make_sam(settings), clock
    )
    taps = TapIngestion(
        settings.event_store_env(create_tables=create_schema), verifier=verifier, clock=clock
    )
    invalidations = make_invalidations(settings, engine)
    invalidations.subscribe(verifier.invalidate)
    cards.after_events.append(lambda events: publish_card_news(invalidations, cards, events))
    smart_cards = SmartCards(cards, ledger)
    journey_views = JourneyViews(engine)
    journeys = make_journeys(
        settings, taps=taps, ledger=ledger, cards=cards, smart_cards=smart_cards, fares=fares,
        journey_views=journey_views, create_schema=create_schema,
    )  # fmt: skip
    tokens = TokenStore(engine, invalidations=invalidations)
    invalidations.subscribe(tokens.invalidate)
    parking = make_parking(
        settings, ledger=ledger, codes=TapVerifierCodes(verifier, cards), engine=engine,
        clock=clock, create_schema=create_schema,
    )  # fmt: skip
    clearing = make_clearing(
        settings, ledger=ledger, journeys=journeys, parking=parking, fares=fares, engine=engine,
        clock=clock, create_schema=create_schema,
    )  # fmt: skip
    container = Container(
        settings=settings,
        ledger=ledger,
        cards=cards,
        smart_cards=smart_cards,
        engine=engine,
        read_model=LedgerReadModel(engine),
        follower=LedgerFollower(ledger, engine),
        card_views=card_views,
        card_follower=CardFollower(cards, engine),
        taps=taps,
        tap_views=TapViews(engine),
        tap_follower=TapFollower(taps, engine),
        refusal_follower=RefusalFollower(taps, engine),
        journeys=journeys,
        journey_views=journey_views,
        journey_follower=JourneyFollower(journeys, engine),
        hot_state=hot_state or make_hot_state(settings),
        tokens=tokens,
        pass_sales=PassSales(journeys, ledger),
        idempotency_records=SqlIdempotencyRecords(engine),
        parking=parking,
        clearing=clearing,
        invalidations=invalidations,
        **fleet_parts(taps, card_views, invalidations),
    )
    if create_schema:
        container.create_tables()
    tokens.ensure(settings.bootstrap_admin_token, Role.ADMIN, label="bootstrap admin")
    cards.ensure_issuer_key()
    return container


def make_ledger_and_cards(
    settings: Settings, clock: Clock, *, create_schema: bool
) -> tuple[Ledger, CardIssuer]:
    """Transport accounts, and the card issuer that reads them."""
    ledger = Ledger(
        settings.event_store_env(create_tables=create_schema),
        clock=clock,
        overdraft_default_vnd=settings.overdraft_default_vnd,
    )
    cards = CardIssuer(
        settings.event_store_env(create_tables=create_schema),
        sealer=KeyVault(settings.key_encryption_key_bytes),
        account_of=ledger.get_account,
        clock=clock,
        virtual_cards_active_max=settings.virtual_cards_active_max,
    )
    return ledger, cards


def make_parking(
    settings: Settings,
    *,
    ledger: Ledger,
    codes: CodeReader,
    engine: Engine,
    clock: Clock,
    create_schema: bool,
) -> Parking:
    """Street parking, paid by holds on the ledger, charging by the shipped rate tables."""
    return Parking.build(
        settings.event_store_env(create_tables=create_schema),
        ledger=ledger,
        codes=codes,
        tables=load_rate_tables(),
        engine=engine,
        clock=clock,
        index=make_enforcement_index(settings, engine),
    )


def make_clearing(
    settings: Settings,
    *,
    ledger: Ledger,
    journeys: Journeys,
    parking: Parking,
    fares: FareEngine,
    engine: Engine,
    clock: Clock,
    create_schema: bool,
) -> ClearingCycles:
    """Clearing on the Hanoi operators and terms, writing its files under `<data>/clearing`."""
    # One run a day: no connection kept open for it in every serving process.
    env = settings.event_store_env(create_tables=create_schema) | {
        "POSTGRES_POOL_SIZE": "0",
        "POSTGRES_MAX_OVERFLOW": str(CLEARING_POOL_MAX),
    }
    return build_clearing(
        env,
        ledger=ledger,
        journeys=journeys,
        journey_log=journeys,
        parking=parking.store,
        standalone_fare=fare_engine_standalone(fares),
        operators=load_packaged(),
        terms=load_packaged_terms(),
        engine=engine,
        files_root=settings.data_dir / "clearing",
        lock=make_run_lock(settings, "Clearing"),
        clock=clock,
        pass_rides=JourneyViews(engine).covered_by_pass,
        pass_networks=lambda product, route: feed_pass_networks(fares.feed, product, route),
    )


def make_journeys(
    settings: Settings,
    *,
    taps: TapIngestion,
    ledger: Ledger,
    cards: CardIssuer,
    smart_cards: SmartCards,
    fares: FareEngine,
    journey_views: JourneyViews,
    create_schema: bool,
) -> Journeys:
    """The fare follower: builds journeys from the taps and charges them to the ledger."""
    return Journeys(
        settings.event_store_env(create_tables=create_schema),
        taps=taps,
        ledger=ledger,
        cards=cards,
        smart_cards=smart_cards,
        fares=fares,
        open_journeys=journey_views.open_journeys,
        pricing_lock=make_pricing_lock(settings),
    )


def make_verifier(
    cards: CardIssuer, card_views: CardViews, sam: Sam | None, clock: Clock
) -> TapVerifier:
    """The backend's check of every tap: the issuer's published keys, the deny list, the smart
    cards issued, and the SAM for card sessions (none: card taps cannot be checked)."""
    return TapVerifier(
        keys=cards.published_keys,
        deny_list=card_views,
        card_issued=lambda serial: SmartCard.create_id(serial) in cards.repository,
        sam=sam,
        clock=clock,
        spawn=start_thread,
    )


def make_invalidations(settings: Settings, engine: Engine) -> PostgresChannel | LocalChannel:
    """LISTEN/NOTIFY on PostgreSQL; in-process on the embedded store (one serving process)."""
    if settings.postgres_url is None:
        return LocalChannel()
    url = make_url(settings.postgres_url).set(drivername="postgresql")
    return PostgresChannel(url.render_as_string(hide_password=False), engine)


def publish_card_news(
    invalidations: InvalidationChannel, cards: CardIssuer, events: Sequence[object]
) -> None:
    """After a card issuer commit: each card denied and a changed key set, to every process."""

    def serial_of(card_id: UUID) -> str:
        card: SmartCard = cards.repository.get(card_id)
        return card.serial

    for message in card_invalidations(events, serial_of):
        invalidations.publish(message)


def make_pricing_lock(settings: Settings) -> PricingLock:
    """One journey pricer at a time across every process on the configured store."""
    return make_run_lock(settings, Journeys.name)


def make_run_lock(settings: Settings, name: str) -> PricingLock:
    """One holder at a time of the lock `name` across every process on the configured store."""
    if settings.postgres_url is None:
        suffix = "pricing" if name == Journeys.name else name.lower()
        return FilePricingLock(settings.sqlite_path.with_name(f"tapledger.{suffix}.lock"))
    url = make_url(settings.postgres_url).set(drivername="postgresql")
    return PostgresPricingLock(url.render_as_string(hide_password=False), name)


def make_hot_state(settings: Settings) -> HotState:
    if settings.redis_url:
        return RedisHotState(settings.redis_url)
    return MemoryHotState()


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=READ_MODEL_POOL_KEPT,
            max_overflow=POSTGRES_POOL_MAX - READ_MODEL_POOL_KEPT,
        )
    engine = create_engine(url, connect_args={"timeout": SQLITE_LOCK_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets the follower and the API read while the event store writes.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine
