"""Named bounds of the parking tariff core. Every amount is an int of VND; every duration has its
unit last in the name."""

from __future__ import annotations

from datetime import timedelta

# One price in a table (a block, a turn, a cap): a whole day of car parking (300,000 VND) is the
# largest published figure; ten times that still catches a slipped digit.
TARIFF_AMOUNT_MAX_VND = 3_000_000
# A block or a turn lasts at least a minute and at most a day.
BLOCK_MINUTES_MAX = 24 * 60
# Tiers in one rule: Hanoi's progressive car tables have three.
TIERS_MAX = 8
# A tier starts at most this far into a stay (a week).
TIER_FROM_MINUTES_MAX = 7 * 24 * 60
# Turns counted for one visit of a period (iParking counts the night as 6).
TURNS_MAX = 48
# Periods in one day (day, evening, night, ...).
PERIODS_MAX = 8
# Versions in one table file; a city revises its tables every few years.
VERSIONS_MAX = 64
# A table file is small: more than this is not a tariff.
TARIFF_FILE_BYTES_MAX = 1_000_000
TEXT_MAX_CHARS = 200
# A source or a version note says which numbers are published and which were chosen.
NOTE_MAX_CHARS = 1000
TABLE_ID_MAX_CHARS = 64

# The longest stay the engine prices at all, even when a table's maximum stay is waived for an
# overstay: a week, the longest hold the ledger keeps.
STAY_LIMIT_MINUTES = 7 * 24 * 60
STAY_LIMIT = timedelta(minutes=STAY_LIMIT_MINUTES)
# A cap ("whole day") covers each successive 24 hours of a stay, counted from its start.
CAP_WINDOW = timedelta(days=1)

PLATE_TEXT_MAX_CHARS = 20

# A handheld that lost its network sends its queued actions with the time they were made; an
# action older than this is refused, and one stamped later than now by more than the skew too.
HANDHELD_OFFLINE_MAX = timedelta(hours=6)
HANDHELD_CLOCK_SKEW_MAX = timedelta(seconds=60)
# Operators and lots.
CATALOGUE_ID_MAX_CHARS = 64
NAME_MAX_CHARS = 120
ADDRESS_MAX_CHARS = 200
# Places of one class in one lot: the largest Hanoi car parks hold a few thousand.
CAPACITY_MAX = 10_000
# Sessions.
REQUEST_ID_MAX_CHARS = 48
# A quote may start a session this long after it was made.
QUOTE_LIFETIME = timedelta(minutes=10)
# A session's holds outlive its paid end by this much, so a driver a little late still pays from
# the hold instead of a debit that may find the account empty.
HOLD_GRACE = timedelta(days=1)
# Credits of one detail record: corrections are rare.
CREDITS_MAX = 16
CREDIT_REASON_MAX_CHARS = 140
# Extensions of one session; with the first hold, fewer than the ledger's pending holds.
EXTENSIONS_MAX = 8
# Lots listed by one search, and its radius.
NEAR_RADIUS_M_DEFAULT = 1_000
NEAR_RADIUS_M_MAX = 20_000
NEAR_RESULTS_MAX = 50
# Sessions in one listing page.
SESSIONS_PAGE_MAX = 500
# Reminders look this far ahead at most.
REMINDER_WINDOW_MINUTES_MAX = 24 * 60
# Reservations.
# Cancelling free of charge ends at most this long before a window starts (a day).
FREE_CANCEL_MINUTES_MAX = 24 * 60
# A window starts at most this far ahead: with the longest stay and the no-show grace after
# it, the booking's hold still ends within the ledger's longest hold (a week).
RESERVATION_AHEAD = timedelta(days=5)
# A driver may arrive this early for a reservation (the session then starts early)...
EARLY_ARRIVAL = timedelta(minutes=15)
# ...and this late; after it the reservation is a no-show and its place is released.
NO_SHOW_GRACE = timedelta(minutes=30)
# The share of a class's places that may be booked ahead, in percent: all of them. Walk-in
# sessions are not refused for a booked place; the attendant keeps booked places free.
RESERVABLE_SHARE_PERCENT = 100
# Windows one lot's class holds on one local day; beyond it the day is refused as full.
BOOKINGS_PER_DAY_MAX = 2_000
RESERVATIONS_PAGE_MAX = 500
