"""Currency rules for amounts: a known ISO 4217 code, and no more decimals than it has."""

from decimal import Decimal
from functools import cache

from babel.numbers import get_currency_precision, is_currency


@cache
def _decimal_places(currency: str) -> int | None:
    """The currency's minor-unit digits, or None for an unknown code. Cached: Babel's lookup
    is slow next to the rest of validation and every transaction asks; the callers' pattern
    bounds the keys (^[A-Z]{3}$)."""
    return get_currency_precision(currency) if is_currency(currency) else None


def money_problem(amount: Decimal, currency: str) -> tuple[str, str] | None:
    """(field, message) when the amount does not fit its currency, else None."""
    places = _decimal_places(currency)
    if places is None:
        return "currency", f"{currency} is not an ISO 4217 currency code"
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        return "amount", f"{currency} amounts have at most {places} decimal places"
    return None
