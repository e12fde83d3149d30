"""Pure statistics for timings: median, quartiles, a distribution-free interval for the median, noise.

Timing samples on a shared machine are skewed (a few slow outliers) and few, so nothing here assumes a
normal distribution. The interval is the order-statistic confidence interval for the median (the one
asv's ``quantile_ci`` uses): the k-th smallest and k-th largest samples, with k the largest for which the
binomial coverage still reaches the level asked for. With fewer than 6 samples no k reaches 95 %; then the
interval is the full range and the coverage it really has is reported.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

LEVEL = 0.95
#: A timing is flagged noisy when its interquartile range exceeds this fraction of its median.
NOISE_THRESHOLD = 0.15


class Interval(NamedTuple):
    """A median and its interval (in files: ``[median, low, high]``)."""

    median: float
    low: float
    high: float

    def apart(self, other: Interval) -> bool:
        """The two intervals do not overlap (asv's test for a step)."""
        return self.high < other.low or other.high < self.low


@dataclass(frozen=True, kw_only=True)
class Summary:
    n: int
    median: float
    q1: float
    q3: float
    low: float  # interval for the median
    high: float
    coverage: float  # the interval's actual coverage probability (>= LEVEL when n allows it)
    noisy: bool

    @property
    def relative_iqr(self) -> float:
        return (self.q3 - self.q1) / self.median if self.median else math.inf

    @property
    def interval(self) -> Interval:
        return Interval(self.median, self.low, self.high)

    def overlaps(self, other: Summary) -> bool:
        """True when the two medians' intervals share any value: the runs do not disagree."""
        return self.low <= other.high and other.low <= self.high


def coverage(n: int, k: int) -> float:
    """P(X_(k) <= true median <= X_(n-k+1)) for n samples of a continuous distribution (k is 1-based)."""
    if not 1 <= k <= (n + 1) // 2:
        raise ValueError(f"k={k} is not an order statistic below the median of {n} samples")
    tail = sum(math.comb(n, i) for i in range(k)) / float(2**n)
    return 1.0 - 2.0 * tail


def median_interval(samples: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """(low, high, coverage): the narrowest order-statistic interval for the median reaching ``level``."""
    ordered = sorted(samples)
    n = len(ordered)
    if n == 0:
        raise ValueError("no samples")
    if n == 1:
        return ordered[0], ordered[0], 0.0
    k = 1
    while k + 1 <= (n + 1) // 2 and coverage(n, k + 1) >= level:
        k += 1
    return ordered[k - 1], ordered[n - k], coverage(n, k)


def summarize(samples: Sequence[float], level: float = LEVEL) -> Summary:
    values = [float(s) for s in samples]
    if not values:
        raise ValueError("no samples to summarize")
    if any(math.isnan(v) or v < 0 for v in values):
        raise ValueError(f"timings must be non-negative numbers, got {values}")
    med = statistics.median(values)
    if len(values) >= 2:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    else:
        q1 = q3 = values[0]
    low, high, cover = median_interval(values, level)
    summary = Summary(n=len(values), median=med, q1=q1, q3=q3, low=low, high=high, coverage=cover, noisy=False)
    return Summary(**{**summary.__dict__, "noisy": summary.relative_iqr > NOISE_THRESHOLD})


def paired_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """Round-by-round ratios of two interleaved series (drift in the machine cancels within a round)."""
    if len(numerator) != len(denominator):
        raise ValueError(f"paired series differ in length: {len(numerator)} and {len(denominator)}")
    return [a / b for a, b in zip(numerator, denominator, strict=True) if b > 0]


def throughput(nbytes: int, seconds: Summary) -> Interval:
    """(median, low, high) in MB/s (10^6 bytes) for a time summary; the slow end of time is the low end."""

    def rate(s: float) -> float:
        return nbytes / s / 1e6 if s > 0 else math.inf

    return Interval(rate(seconds.median), rate(seconds.high), rate(seconds.low))
