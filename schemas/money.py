"""Currency rules for amounts: a known ISO 4217 code, and no more decimals than it has."""

from decimal import Decimal

from babel.numbers import get_currency_precision, is_currency


def money_problem(amount: Decimal, currency: str) -> tuple[str, str] | None:
    """(field, message) when the amount does not fit its currency, else None."""
    if not is_currency(currency):
        return "currency", f"{currency} is not an ISO 4217 currency code"
    places = get_currency_precision(currency)
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        return "amount", f"{currency} amounts have at most {places} decimal places"
    return None
