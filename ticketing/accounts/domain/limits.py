"""Named bounds of the transport-account ledger. Every amount is an int of VND."""

# One top-up: a rider tops up by bank transfer or e-wallet; 5 million VND covers
# more than a year of monthly passes and keeps a mistyped amount from landing.
TOP_UP_MAX_VND = 5_000_000
# One debit or hold: a whole day of car parking (300,000 VND) is the largest real charge.
TRANSFER_MAX_VND = 2_000_000
# Stored value on one account; above it top-ups are refused, as e-wallets cap balances.
BALANCE_MAX_VND = 20_000_000
# A configurable overdraft covers one ride of risk; never more than this.
OVERDRAFT_MAX_VND = 100_000
# Pending holds at once: a metro entry, a few parking sessions, a reservation.
HOLDS_PENDING_MAX = 16
# A hold lives at most a week (a long parking reservation); at least a minute.
HOLD_TTL_MIN_S = 60
HOLD_TTL_MAX_S = 7 * 24 * 3600
HOLD_TTL_DEFAULT_S = 24 * 3600

TRANSFER_ID_MAX_CHARS = 64
PAYMENT_REFERENCE_MAX_CHARS = TRANSFER_ID_MAX_CHARS - len("top-up:")
DESCRIPTION_MAX_CHARS = 140
DISPLAY_NAME_MAX_CHARS = 80
BLOCK_REASON_MAX_CHARS = 140
# Caller-chosen ids are printable and unambiguous in logs and files. Matched whole
# (`re.fullmatch`): a `$` anchor in Python would also accept a trailing newline.
TRANSFER_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]*"
