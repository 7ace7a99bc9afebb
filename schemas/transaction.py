"""Transaction v1: the value of a record on the `transactions` topic (key: the id)."""

from typing import Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from schemas.money import money_problem
from schemas.types import Amount, CurrencyCode, InputTimestamp, Label, OptionalRef


class TransactionFields(BaseModel):
    """What a client states about a payment: shared by the HTTP body and the Kafka record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Amount
    category: Label
    merchant: Label
    transaction_date: InputTimestamp
    currency: CurrencyCode = "USD"
    account_id: OptionalRef = None
    client_transaction_id: OptionalRef = None

    @model_validator(mode="after")
    def _fits_currency(self) -> Self:
        problem = money_problem(self.amount, self.currency)
        if problem is not None:
            raise PydanticCustomError(
                "currency_precision",
                "{field}: {message}",
                {"field": problem[0], "message": problem[1]},
            )
        return self


class Transaction(TransactionFields):
    """One payment as the detector sees it. Producers may write it to Kafka directly."""

    schema_version: Literal[1] = 1
    id: UUID
    # When the system first saw it (gateway receipt, or the producer's own clock).
    received_at: InputTimestamp | None = None
