"""Field types shared by several wire formats."""

from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

# Up to 10^14 with 4 decimal places: matches NUMERIC(18, 4) in PostgreSQL.
Amount = Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=4, allow_inf_nan=False)]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
OptionalRef = Annotated[str, StringConstraints(min_length=1, max_length=128)] | None
Timestamp = AwareDatetime
