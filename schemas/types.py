"""Field types shared by several wire formats."""

from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints, WithJsonSchema

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
Timestamp = AwareDatetime
