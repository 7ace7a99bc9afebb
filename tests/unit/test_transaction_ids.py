"""The ids the gateway makes are the uuid module's: uuid4's text for a new Idempotency-Key,
uuid5 of the caller, key, body digest and batch place for the transaction id (a retry must
get the id its first attempt published under, whichever gateway version answered it)."""

import hashlib
from uuid import NAMESPACE_URL, RFC_4122, UUID, uuid5

from hypothesis import given
from hypothesis import strategies as st

from ingest_gateway.transactions import ingest_key, transaction_id

NAMESPACE = uuid5(NAMESPACE_URL, "https://jalytics.io/transactions")


@given(st.text(), st.text(), st.binary(), st.none() | st.integers(0, 10_000))
def test_the_transaction_id_is_uuid5_of_caller_key_body_digest_and_place(
    caller: str, key: str, body: bytes, item: int | None
) -> None:
    digest = hashlib.sha256(body).hexdigest()
    name = f"{caller}\0{key}\0{digest}\0{'' if item is None else item}"
    assert transaction_id(caller, key, body, item) == uuid5(NAMESPACE, name)


class _Request:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


def test_a_new_key_is_the_text_of_a_random_version_4_uuid() -> None:
    keys = [ingest_key(_Request({})) for _ in range(2000)]  # type: ignore[arg-type]
    parsed = [UUID(key) for key in keys]
    assert all(str(uuid) == key for uuid, key in zip(parsed, keys, strict=True))
    assert {(uuid.version, uuid.variant) for uuid in parsed} == {(4, RFC_4122)}
    assert len(set(keys)) == len(keys)
    # Every one of the 122 random bits takes both values.
    random_bits = [uuid.int for uuid in parsed]
    assert all(
        len({(number >> bit) & 1 for number in random_bits}) == 2
        for bit in range(128)
        if not (76 <= bit < 80 or 62 <= bit < 64)
    )


def test_a_clients_key_is_kept() -> None:
    assert ingest_key(_Request({"Idempotency-Key": "k-1"})) == "k-1"  # type: ignore[arg-type]
