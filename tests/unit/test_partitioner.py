"""shared/partitioner.py puts every keyed record on the partition aiokafka's (and the Java
client's) default partitioner chooses: other producers of `transactions` and the gateway
must agree on where a transaction id lives."""

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from shared.partitioner import default_partition, murmur2


@given(st.binary(max_size=200))
def test_murmur2_is_aiokafkas(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


@given(st.uuids(), st.integers(min_value=1, max_value=64))
def test_a_transaction_key_lands_where_the_default_partitioner_puts_it(
    transaction_id: object, partitions: int
) -> None:
    key = str(transaction_id).encode("ascii")
    every = list(range(partitions))
    assert default_partition(key, every, every) == DefaultPartitioner()(key, every, every)


def test_the_java_clients_hash_of_known_keys() -> None:
    # Kafka's own test vectors (org.apache.kafka.common.utils.UtilsTest.testMurmur2).
    assert murmur2(b"21") == -973932308 & 0xFFFFFFFF
    assert murmur2(b"foobar") == -790332482 & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-long-string") == -985981536 & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-longer-string") == -1486304829 & 0xFFFFFFFF
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971 & 0xFFFFFFFF
    assert murmur2(bytes([ord("a"), ord("b"), ord("c")])) == 479470107


def test_an_unkeyed_record_goes_to_an_available_partition() -> None:
    assert default_partition(None, [0, 1, 2], [2]) == 2
    assert default_partition(None, [0, 1, 2], []) in (0, 1, 2)
