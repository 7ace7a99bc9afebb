"""Field types shared by several wire formats."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

# Up to 10^14 with at most 4 decimal places (NUMERIC(18, 4) in PostgreSQL); the currency may
# allow fewer (schemas/money.py). On the wire: a JSON number or, better, a decimal string.
Amount = Annotated[
    Decimal,
    Field(gt=0, max_digits=18, decimal_places=4, allow_inf_nan=False),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": 99999999999999},
                {"type": "string", "pattern": r"^[0-9]{1,14}(\.[0-9]{1,4})?$"},
            ],
            "description": "Positive amount; decimals as the currency allows (USD 2, JPY 0, ...)",
        }
    ),
]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
# PostgreSQL text cannot hold NUL: refuse it at the edge rather than fail at the database.
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^[^\x00]+$"),
]
OptionalRef = (
    Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00]+$")] | None
)
# What the system itself stamps (scored_at, created_at, ...): always "now" somewhere.
Timestamp = AwareDatetime

# The one range for an instant a client states (transaction_date, received_at), on HTTP and
# Kafka alike. Python, and so every reader, holds only the years 1 to 9999 in UTC, and an
# offset moves 0001-01-01T00:00:00+14:00 into 1 BC and 9999-12-31T23:59:59-14:00 into
# 10000: PostgreSQL stores both, and a read of either then fails. No payment is that far
# off; the bounds leave room for old imports and long-dated schedules.
EARLIEST_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
END_OF_INSTANTS = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
INSTANT_RANGE = "from 1970-01-01T00:00:00Z up to, not including, 2100-01-01T00:00:00Z"


def _within_range(value: datetime) -> datetime:
    # Aware datetimes compare as instants, without overflow whatever their offsets.
    if not EARLIEST_INSTANT <= value < END_OF_INSTANTS:
        raise PydanticCustomError("instant_range", "must be {range}", {"range": INSTANT_RANGE})
    # Kept as the instant in UTC: RFC 3339 allows offsets up to ±23:59, PostgreSQL only up to
    # ±15:59, so a record carrying "+23:59" as stated failed every write of its batch.
    return value.astimezone(UTC)


InputTimestamp = Annotated[
    AwareDatetime,
    AfterValidator(_within_range),
    Field(description=f"ISO 8601 with a time zone, {INSTANT_RANGE}"),
]
# A client-stated instant read back from PostgreSQL. A row stored before the range existed
# may lie outside the years Python holds: it reads as PostgreSQL's own text (e.g.
# "10000-01-01 13:59:59+00", "0001-12-31 10:00:00+00 BC") instead of failing the read.
StoredTimestamp = Annotated[
    AwareDatetime | str,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "description": "PostgreSQL's text, outside years 1-9999"},
            ]
        }
    ),
]
