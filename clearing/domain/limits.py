"""Named bounds of the clearing domain. Every amount is an int of VND; every bound is here so a
slipped digit or a runaway list is refused at the edge rather than carried into a settlement."""

from __future__ import annotations

from ticketing.accounts.domain import limits as ledger_limits

# Basis points in a whole: 10,000 bps = 100 %.
BPS_PER_WHOLE = 10_000
# A commission never takes more than the whole of what it is charged on.
COMMISSION_BPS_MAX = BPS_PER_WHOLE
# The iParking carriers' 10 % service fee (spec/HANOI.md), the demo's commission.
COMMISSION_BPS_DEMO = 1_000

# One amount the clearing arithmetic takes (a line, an operator's day, a whole cycle): Hanoi's
# transit and parking together take some tens of billions of dong a day; ten trillion (10^13)
# is far beyond any real cycle and still catches an amount in the wrong unit.
AMOUNT_MAX_VND = 10**13
# One weight of a split (a leg's standalone fare, a ride's fare): bounded like an amount.
WEIGHT_MAX = AMOUNT_MAX_VND
# Parts of one split: the legs of a journey, the rides a monthly pass covered (a few hundred),
# the operators of a network. Ten thousand is far beyond any of them.
SPLIT_PARTS_MAX = 10_000
# Operators in one cycle's positions, and commission rates configured at once.
OPERATORS_MAX = 1_000
# Revenue lines given to one positions computation (already totalled per journey or record
# upstream, so a city day is below this).
REVENUE_LINES_MAX = 10_000_000
# Operator ids as the parking catalogue bounds them; transit operator ids follow the same rule.
OPERATOR_ID_MAX_CHARS = 64
# Settlement files (ISO 20022 pain.001): its ids are Max35Text, its names and remittance lines
# Max140Text; one payment per operator a cycle pays, so no more payments than operators.
PAYMENT_ID_MAX_CHARS = 35
PARTY_NAME_MAX_CHARS = 140
PAYOUTS_MAX = OPERATORS_MAX
# A cycle's sequence number in its message id: six digits, over 2,700 years of daily cycles.
CYCLE_SEQ_MAX = 999_999
# A movement's reference is a ledger transfer id (or a hold id), bounded by the ledger.
REFERENCE_MAX_CHARS = ledger_limits.TRANSFER_ID_MAX_CHARS
# One movement's amount: the ledger's largest top-up, debit, hold or balance (a closed account
# pays out at most its whole balance).
MOVEMENT_MAX_VND = max(
    ledger_limits.TOP_UP_MAX_VND, ledger_limits.TRANSFER_MAX_VND, ledger_limits.BALANCE_MAX_VND
)

# A bank statement (camt.053 or its CSV fallback) is untrusted input read whole into memory:
# the payouts account books at most a few thousand transfers a day, so 20 MiB and 100,000 entries
# are far above a real day and still refuse a runaway file before it is parsed.
STATEMENT_BYTES_MAX = 20 * 1024 * 1024
STATEMENT_ENTRIES_MAX = 100_000
# XML nesting of a camt.053 is about a dozen levels; anything far deeper is an attack on the parser.
STATEMENT_XML_DEPTH_MAX = 64
# One line of the CSV fallback: seven short fields.
STATEMENT_CSV_LINE_MAX_CHARS = 1_024
# ISO 20022 text types: Max35Text for ids and references, Max140Text for names, and an account
# number (IBAN or a bank's own, `Othr/Id`) of at most 34.
END_TO_END_ID_MAX_CHARS = 35
BANK_REFERENCE_MAX_CHARS = 35
COUNTERPARTY_NAME_MAX_CHARS = 140
ACCOUNT_ID_MAX_CHARS = 34
# Payouts one statement is matched against: one per operator, at most, in a cycle.
PAYOUTS_MAX = OPERATORS_MAX

# A pass is apportioned over its rides in the first cycle after its validity ends plus this
# grace: taps reach the backend late (validators upload when they can, and a metro hold waits
# up to 3 days for its exit), so rides made while the pass was valid are counted first.
PASS_APPORTION_GRACE_S = 3 * 24 * 3600

# An operator file (clearing/operators/*.json) is configuration read whole: a few kilobytes for
# a city; 1 MiB refuses a runaway file. Networks are the fare feed's (seven in Hanoi's).
OPERATOR_FILE_BYTES_MAX = 1024 * 1024
NETWORKS_MAX = 1_000
NETWORK_ID_MAX_CHARS = 64

# Operator reconciliation: an operator's own transaction file for one cycle, compared with our
# clearing lines for it. Hanoi's buses carry about a million rides a day across every company,
# so two million lines on either side is far above one operator's day; read whole, a line costs
# a couple of hundred bytes, so the bound also keeps a runaway upload under half a gigabyte.
RECONCILIATION_LINES_MAX = 2_000_000
# The upload itself, checked before a byte is decoded: two million short lines need ~150 MiB.
RECONCILIATION_FILE_BYTES_MAX = 256 * 1024 * 1024
# One line of the upload: an id, an amount, a date and a short description.
RECONCILIATION_LINE_MAX_CHARS = 1_024
RECONCILIATION_DESCRIPTION_MAX_CHARS = 200
# Problems a refused upload lists (every one is counted): enough to fix a file in one pass
# without turning a garbage upload into a megabyte of error text.
RECONCILIATION_PROBLEMS_MAX = 100
# A transaction id is an aggregate's uuid hex (32 digits: a journey, a parking session or
# record); twice that leaves room for an operator-facing id of another length without allowing
# a runaway one.
TRANSACTION_ID_MAX_CHARS = 64
