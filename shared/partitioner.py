"""Kafka's default partitioner, murmur2 of the key as the Java client computes it, in fewer
Python steps than aiokafka's byte-by-byte loop (the gateway's producer hashes every
transaction id: 11 µs a key there, 2 µs here; docs/performance.md)."""

import random
import struct
from collections.abc import Callable
from functools import lru_cache

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


@lru_cache(maxsize=64)
def _words(count: int) -> Callable[[bytes], tuple[int, ...]]:
    """Reads `count` little-endian 32-bit words from the start of a key."""
    return struct.Struct(f"<{count}I").unpack_from


def murmur2(data: bytes) -> int:
    """The same 32-bit hash as aiokafka.partitioner.murmur2 (and the Java client's)."""
    length = len(data)
    h = _SEED ^ length
    whole = length >> 2
    for word in _words(whole)(data):
        k = (word * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = data[whole << 2 :]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def default_partition(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's DefaultPartitioner: a keyed record goes where every Kafka client puts it,
    an unkeyed one to a random available partition."""
    if key is None:
        return random.choice(available or all_partitions)  # noqa: S311 (spreading load, not a secret)
    return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
