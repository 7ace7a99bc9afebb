"""The floor benchmark's accounting: medians over rounds, and our CPU less the floor's."""

from typing import Any, NamedTuple

import pytest

from benchmarks.floor import batch_rows, paired_gaps, paired_ratios, summarize, tables


def _run(variant: str, c: int, number: int, rate: float, **cpu: float) -> dict[str, Any]:
    return {
        "variant": variant,
        "c": c,
        "round": number,
        "per_second": rate,
        "p50_ms": rate / 100,
        "p99_ms": rate / 10,
        "requests": 1000,
        "non2xx": 0,
        "cpu_ms_per_request": cpu,
    }


def test_summary_gives_each_variant_and_concurrency_its_median_and_spread() -> None:
    runs = [
        _run("roundtrip", 16, 0, 800, gateway=0.3, consumer=0.2),
        _run("roundtrip", 16, 1, 600, gateway=0.5, consumer=0.1),
        _run("roundtrip", 16, 2, 700, gateway=0.4, consumer=0.3),
        _run("roundtrip", 64, 0, 2000, gateway=0.2, consumer=0.1),
    ]

    first, second = summarize(runs)

    assert (first["variant"], first["c"], first["n"]) == ("roundtrip", 16, 3)
    assert first["per_second"] == {"median": 700, "min": 600, "max": 800}
    assert first["cpu_ms"]["gateway"]["median"] == pytest.approx(0.4)
    # the total is summed within each run, then its median taken: 0.5, 0.6, 0.7
    assert first["total_cpu_ms"]["median"] == pytest.approx(0.6)
    assert first["total_cpu_ms"]["min"] == pytest.approx(0.5)
    assert (second["c"], second["n"]) == (64, 1)


def test_gaps_pair_our_run_with_the_floor_run_of_the_same_round() -> None:
    runs = [
        _run("jalytics-201", 16, 0, 500, gateway=0.55, detector=0.40, broker=0.20),
        _run("roundtrip-1s", 16, 0, 800, gateway=0.30, consumer=0.30, broker=0.10),
        _run("jalytics-201", 16, 1, 500, gateway=0.65, detector=0.40, broker=0.20),
        _run("roundtrip-1s", 16, 1, 800, gateway=0.30, consumer=0.25, broker=0.30),
    ]

    gaps = paired_gaps(runs, "jalytics-201", "roundtrip-1s")[16]

    # µs per request: 250 and 350 for the gateway; the detector against the consumer
    assert gaps["gateway"]["median"] == pytest.approx(300)
    assert gaps["gateway"]["min"] == pytest.approx(250)
    assert gaps["detector"]["median"] == pytest.approx(125)
    assert gaps["broker"]["min"] == pytest.approx(-100)
    assert gaps["total"]["median"] == pytest.approx(425)  # 450 and 400


def test_a_process_the_floor_has_not_got_counts_zero_there() -> None:
    runs = [
        _run("jalytics-202", 64, 0, 2000, gateway=0.30, detector=0.10),
        _run("produce", 64, 0, 6000, gateway=0.10),
    ]

    gaps = paired_gaps(runs, "jalytics-202", "produce")[64]

    assert gaps["detector"]["median"] == pytest.approx(100)
    assert gaps["total"]["median"] == pytest.approx(300)


def test_a_round_without_the_floor_run_gives_no_gap() -> None:
    runs = [
        _run("jalytics-201", 16, 0, 500, gateway=0.5),
        _run("roundtrip", 16, 1, 800, gateway=0.3),
    ]

    assert paired_gaps(runs, "jalytics-201", "roundtrip") == {}


def test_the_table_has_a_row_per_variant_and_concurrency() -> None:
    runs = [
        _run("bare", 16, 0, 12000, gateway=0.06, broker=0.0),
        _run("jalytics-201", 16, 0, 500, gateway=0.5, detector=0.4, broker=0.2),
        _run("roundtrip", 16, 0, 800, gateway=0.3, consumer=0.3, broker=0.2),
    ]

    text = tables(runs)

    assert "| bare | 16 | 1 | 12,000 [12,000-12,000] |" in text
    assert "| jalytics-201 - roundtrip | 16 | 200 [200-200] | 100 [100-100] |" in text


def test_ratios_to_the_reference_are_taken_within_each_round() -> None:
    runs = [
        _run("jalytics-201", 64, 0, 1000, gateway=0.5, detector=0.3),
        _run("go-original", 64, 0, 2000, service=0.3, postgresql=0.1),
        _run("jalytics-201", 64, 1, 1500, gateway=0.5, detector=0.3),
        _run("go-original", 64, 1, 1000, service=0.3, postgresql=0.1),
    ]

    ratio = paired_ratios(runs, "jalytics-201", "go-original")[64]

    # 0.5 and 1.5: the median of the rounds' ratios, not the ratio of the medians (1.0)
    assert ratio["per_second"] == {"median": 1.0, "min": 0.5, "max": 1.5}
    assert ratio["cpu"]["median"] == pytest.approx(2.0)
    assert "| jalytics-201 | 64 | 1.00 [0.50-1.50] |" in tables(runs)


class _Record(NamedTuple):
    key: bytes
    value: bytes


def test_a_batch_is_inserted_as_its_raw_keys_and_values() -> None:
    records = [_Record(b"a-1", b'{"amount":1}'), _Record(b"a-2", b'{"amount":2}')]

    assert batch_rows(records) == ([b"a-1", b"a-2"], [b'{"amount":1}', b'{"amount":2}'])
