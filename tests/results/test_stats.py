"""Timing statistics against inputs whose answers are known by hand."""

from __future__ import annotations

import math

import pytest

from runner.results import stats


def test_coverage_matches_the_binomial_by_hand() -> None:
    # n=6, k=1: 1 - 2/64; n=9, k=2: 1 - 2*(1+9)/512; n=10, k=2: 1 - 2*(1+10)/1024
    assert stats.coverage(6, 1) == pytest.approx(1 - 2 / 64)
    assert stats.coverage(9, 2) == pytest.approx(1 - 20 / 512)
    assert stats.coverage(10, 2) == pytest.approx(1 - 22 / 1024)
    with pytest.raises(ValueError):
        stats.coverage(5, 4)


@pytest.mark.parametrize(
    ("n", "k", "expected_coverage"),
    [
        (5, 1, 1 - 2 / 32),  # below 95 % whatever k: the full range, honest about its 93.75 %
        (6, 1, 1 - 2 / 64),
        (8, 1, 1 - 2 / 256),  # k=2 would cover 1 - 18/256 = 93 %
        (9, 2, 1 - 20 / 512),
        (20, 6, 1 - 2 * sum(math.comb(20, i) for i in range(6)) / 2**20),
    ],
)
def test_median_interval_picks_the_narrowest_order_statistics(n: int, k: int, expected_coverage: float) -> None:
    samples = [float(i) for i in range(1, n + 1)]  # X_(i) == i
    low, high, cover = stats.median_interval(list(reversed(samples)))
    assert (low, high) == (k, n - k + 1)
    assert cover == pytest.approx(expected_coverage)


def test_summary_of_a_known_sample() -> None:
    s = stats.summarize([5.0, 1.0, 3.0, 2.0, 4.0, 100.0, 3.0])
    # sorted: 1 2 3 3 4 5 100; median 3; inclusive quartiles at positions 1.5 and 4.5 -> 2.5, 4.5
    assert (s.n, s.median, s.q1, s.q3) == (7, 3.0, 2.5, 4.5)
    assert (s.low, s.high) == (1.0, 100.0)  # n=7: only the range reaches 95 % (k=2 gives 87.5 %)
    assert s.coverage == pytest.approx(1 - 2 / 128)
    assert s.relative_iqr == pytest.approx(2 / 3)
    assert s.noisy


def test_a_tight_sample_is_not_noisy_and_one_sample_has_no_interval() -> None:
    tight = stats.summarize([1.00, 1.01, 0.99, 1.02, 1.00, 0.98, 1.01])
    assert not tight.noisy and tight.median == 1.00
    one = stats.summarize([2.0])
    assert (one.median, one.low, one.high, one.coverage, one.noisy) == (2.0, 2.0, 2.0, 0.0, False)


def test_bad_samples_are_refused() -> None:
    for bad in ([], [1.0, float("nan")], [-1.0]):
        with pytest.raises(ValueError):
            stats.summarize(bad)


def test_overlap_is_symmetric_and_strict_about_gaps() -> None:
    a = stats.summarize([1.0, 1.1, 1.2, 1.3, 1.4, 1.5])
    b = stats.summarize([1.5, 1.6, 1.7, 1.8, 1.9, 2.0])
    c = stats.summarize([1.6, 1.7, 1.8, 1.9, 2.0, 2.1])
    assert a.overlaps(b) and b.overlaps(a)  # they touch at 1.5
    assert not a.overlaps(c) and not c.overlaps(a)


def test_paired_ratios_cancel_drift_within_a_round() -> None:
    store = [2.0, 4.0, 8.0]  # the machine slows down 2x per round...
    raw = [1.0, 2.0, 4.0]  # ...for both series alike
    assert stats.paired_ratios(store, raw) == [2.0, 2.0, 2.0]
    assert not stats.summarize(stats.paired_ratios(store, raw)).noisy
    assert stats.summarize(store).noisy  # while the times themselves spread 4x
    with pytest.raises(ValueError):
        stats.paired_ratios([1.0], [1.0, 2.0])


def test_throughput_turns_the_slow_end_into_the_low_end() -> None:
    s = stats.summarize([0.5, 1.0, 2.0, 1.0, 1.0, 1.0])
    median, low, high = stats.throughput(10_000_000, s)
    assert median == pytest.approx(10.0)
    assert low == pytest.approx(10.0 / s.high) and high == pytest.approx(10.0 / s.low)
    assert low <= median <= high
