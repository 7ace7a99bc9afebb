"""Wire decoding: exact decimals, and every bad record becomes a dead letter with a reason."""

import json
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detector_worker.records import DeadLetter, RawRecord, decode_transaction
from schemas import MalformedJson, Transaction, decode_json, encode_model
from schemas.codec import MAX_NESTING
from schemas.records import (
    DLQ_TRUNCATED,
    dead_letter_headers,
    fit_dead_letter,
    parse_transaction_key,
    transaction_key,
)


def record(value: bytes | None) -> RawRecord:
    return RawRecord(topic="transactions", partition=0, offset=7, key=None, value=value)


def valid_body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": str(uuid4()),
        "amount": "12.50",
        "category": "food",
        "merchant": "Cafe",
        "transaction_date": "2026-01-01T10:00:00Z",
    }
    body.update(changes)
    return body


def test_amounts_are_parsed_straight_to_decimal() -> None:
    assert decode_json(b'{"a": 0.1000000000000000055511151231257827}')["a"] == Decimal(
        "0.1000000000000000055511151231257827"
    )


@pytest.mark.parametrize("raw", [b"{", b"NaN", b'{"a": Infinity}', b"\xff\xfe", b"[" * 100])
def test_malformed_documents_are_refused(raw: bytes) -> None:
    with pytest.raises(MalformedJson):
        decode_json(raw)


def test_a_transaction_round_trips_exactly() -> None:
    txn = Transaction.model_validate(valid_body(amount="123456789.12"))
    again = decode_transaction(record(encode_model(txn)))
    assert again == txn


def test_numeric_amounts_from_direct_producers_are_accepted() -> None:
    raw = json.dumps(valid_body()).replace('"12.50"', "12.50").encode()
    result = decode_transaction(record(raw))
    assert isinstance(result, Transaction) and result.amount == Decimal("12.50")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty_value"),
        (b"", "empty_value"),
        (b"not json", "malformed_json"),
        (json.dumps(valid_body(schema_version=2)).encode(), "unsupported_version"),
        (json.dumps(valid_body(amount="-1")).encode(), "invalid_schema"),
        (json.dumps(valid_body(amount="abc")).encode(), "invalid_schema"),
        (json.dumps(valid_body(amount="1e30")).encode(), "invalid_schema"),
        (json.dumps(valid_body(category=7)).encode(), "invalid_schema"),
        (json.dumps(valid_body(transaction_date="2026-01-01T10:00:00")).encode(), "invalid_schema"),
        (json.dumps(valid_body(extra="x")).encode(), "invalid_schema"),
        (b"[1, 2]", "invalid_schema"),
    ],
)
def test_bad_records_become_dead_letters(value: bytes | None, reason: str) -> None:
    result = decode_transaction(record(value))
    assert isinstance(result, DeadLetter)
    assert result.reason == reason
    assert result.error


@given(st.binary(max_size=300))
def test_no_bytes_make_decoding_raise(value: bytes) -> None:
    assert isinstance(decode_transaction(record(value)), Transaction | DeadLetter)


def test_a_number_too_long_to_convert_is_a_dead_letter_not_a_crash() -> None:
    # Python refuses int() of more than 4300 digits with a ValueError.
    raw = b'{"amount": ' + b"9" * 5000 + b"}"
    with pytest.raises(MalformedJson):
        decode_json(raw)
    result = decode_transaction(record(raw))
    assert isinstance(result, DeadLetter)
    assert result.reason == "malformed_json"


def test_a_repeated_key_is_a_dead_letter_naming_it_never_the_last_value() -> None:
    # At any depth: the last "amount" won, so a record read as 10.00 by one tool was stored
    # and scored as 99999.00.
    raw = json.dumps(valid_body(amount="10.00"))[:-1] + ', "amount": "99999.00"}'
    result = decode_transaction(record(raw.encode()))
    assert isinstance(result, DeadLetter)
    assert (result.reason, result.error) == ("malformed_json", "duplicate key 'amount'")
    with pytest.raises(MalformedJson, match="duplicate key 'c'"):
        decode_json('{"a": [{"c": 1, "b": 2, "c": 3}]}')
    assert decode_json('[{"c": 1}, {"c": 2}]') == [{"c": 1}, {"c": 2}]


@pytest.mark.parametrize(("opener", "closer"), [("[", "]"), ('{"a":', "}")])
def test_nesting_is_refused_only_beyond_the_limit(opener: str, closer: str) -> None:
    def nested(depth: int) -> str:
        return opener * depth + "1" + closer * depth

    assert decode_json(nested(MAX_NESTING)) is not None
    with pytest.raises(MalformedJson, match="nested deeper"):
        decode_json(nested(MAX_NESTING + 1))


@given(st.text())
def test_brackets_inside_strings_do_not_count_as_nesting(text: str) -> None:
    assert decode_json(json.dumps({"note": text + "[{" * 40})) == {"note": text + "[{" * 40}


@given(
    key=st.binary(max_size=64) | st.none(),
    value=st.binary(max_size=4000),
    max_bytes=st.integers(min_value=0, max_value=3000),
)
def test_f2_a_dead_letter_too_large_is_cut_short_and_says_so(
    key: bytes | None, value: bytes, max_bytes: int
) -> None:
    headers = dead_letter_headers("malformed_json", "bad", "transactions", 2, 99)
    fitted, marked = fit_dead_letter(key, value, headers, max_bytes)
    assert fitted is not None and value.startswith(fitted)
    if fitted == value:
        assert marked == headers
    else:
        assert marked == [*headers, (DLQ_TRUNCATED, str(len(value)).encode())]
        size = len(key or b"") + len(fitted) + sum(len(n) + len(v) for n, v in marked)
        assert size <= max(max_bytes, size - len(fitted))  # only the headers can exceed it


def test_transaction_keys_round_trip() -> None:
    txn_id = uuid4()
    assert parse_transaction_key(transaction_key(txn_id)) == txn_id
    for key in (None, b"", b"garbage-1", b"\xff\xfe"):
        assert parse_transaction_key(key) is None


@pytest.mark.parametrize(
    "key", [b"k", b"\xff\xfe", b"00000000-0000-0000-0000-000000000000", None, b""]
)
def test_a_record_is_taken_by_its_value_s_id_whatever_its_key(key: bytes | None) -> None:
    # A producer may key by account or card for its own ordering: the value names the
    # transaction, and refusing it for its key would lose a valid transaction.
    body = valid_body()
    result = decode_transaction(RawRecord("transactions", 0, 7, key, json.dumps(body).encode()))
    assert isinstance(result, Transaction)
    assert str(result.id) == str(body["id"])


def test_a_version_that_is_a_string_says_so() -> None:
    result = decode_transaction(record(json.dumps(valid_body(schema_version="1")).encode()))
    assert isinstance(result, DeadLetter)
    assert (result.reason, result.error) == (
        "unsupported_version",
        "schema_version '1' not supported (1 is)",
    )


@pytest.mark.parametrize("field", ["transaction_date", "received_at"])
@pytest.mark.parametrize(
    "instant",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "1969-12-31T23:59:59Z"],
)
def test_f3_a_record_dated_outside_the_range_is_dead_lettered_naming_the_field(
    field: str, instant: str
) -> None:
    # At 37aed69 the first was stored as year 10000, and every read of it then failed.
    result = decode_transaction(record(json.dumps(valid_body(**{field: instant})).encode()))
    assert isinstance(result, DeadLetter)
    assert result.reason == "invalid_schema"
    assert result.error.startswith(f"{field}: must be from 1970-01-01T00:00:00Z")


@pytest.mark.parametrize("instant", ["1970-01-01T00:00:00Z", "2099-12-31T23:59:59.999999Z"])
def test_f3_the_ends_of_the_range_are_accepted(instant: str) -> None:
    body = valid_body(transaction_date=instant, received_at=instant)
    assert isinstance(decode_transaction(record(json.dumps(body).encode())), Transaction)


def test_a_leading_byte_order_mark_is_ignored() -> None:
    body = valid_body()
    value = b"\xef\xbb\xbf" + json.dumps(body).encode()
    assert decode_json(value)["amount"] == body["amount"]
    assert isinstance(decode_transaction(RawRecord("transactions", 0, 7, None, value)), Transaction)
    # Only first: a mark anywhere else is still not JSON.
    with pytest.raises(MalformedJson):
        decode_json(b'{"a": 1}\xef\xbb\xbf')
