"""HTTP field types every context's schemas share; every field is bounded."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

# Free text (labels, names, descriptions, reasons, references) refuses control characters: a NUL
# cannot be stored in a PostgreSQL text column, and line breaks or escapes forge log lines and
# break the CSV and terminal output staff read. C0, DEL and C1 are refused; the rest of Unicode
# (Vietnamese names) is accepted. A character class both Rust's regex (pydantic) and ECMA
# regex (OpenAPI clients, schemathesis) read the same way.
PRINTABLE_TEXT_REGEX = r"^[^\x00-\x1f\x7f-\x9f]*$"


# The shared text type; every use bounds its length too (`Annotated[PrintableText, Field(...)]`).
PrintableText = Annotated[str, Field(pattern=PRINTABLE_TEXT_REGEX)]
LABEL_MAX_CHARS = 80
LabelField = Annotated[PrintableText, Field(max_length=LABEL_MAX_CHARS)]

# The largest values the read models' integer columns hold: an integer in a path or a query is
# compared with one of them, and a larger number overflows the database driver (a 500) before
# any row is read. SQLAlchemy's Integer is 32-bit on PostgreSQL, BigInteger 64-bit.
INTEGER_COLUMN_MAX = 2**31 - 1
BIG_INTEGER_COLUMN_MAX = 2**63 - 1
# The deny list's version is a notification id of the event log, a BigInteger column.
DENY_LIST_VERSION_MAX = BIG_INTEGER_COLUMN_MAX
# An issuer key id is kept in the card views' Integer `issuer_key_id` column.
ISSUER_KEY_ID_MAX = INTEGER_COLUMN_MAX
