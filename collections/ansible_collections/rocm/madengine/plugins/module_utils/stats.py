"""Sample statistics of repeated measurements, and the Mann-Whitney U test that tells two samples apart."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

ALPHA = 0.05  # significance level of the two-sided Mann-Whitney U test
EXACT_LIMIT = 400  # n1 * n2 up to which a sample without ties gets the exact distribution of U


@dataclass(frozen=True)
class Stats:
    """Summary of one key's samples: count, median, mean, sample standard deviation (0 for one sample),
    min, max and the coefficient of variation in percent (stdev / |mean| * 100; None when the mean is 0)."""

    n: int
    median: float
    mean: float
    stdev: float
    min: float
    max: float
    cv_percent: Optional[float]

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def describe(values: Sequence[float]) -> Optional[Stats]:
    """Stats of the values; None when there are none."""
    if not values:
        return None
    mean = statistics.fmean(values)
    stdev = statistics.stdev(values) if len(values) > 1 else 0.0
    cv = stdev / abs(mean) * 100 if mean else None
    return Stats(len(values), statistics.median(values), mean, stdev, min(values), max(values), cv)


def _midranks(values: Sequence[float]) -> List[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _exact_cdf_counts(n1: int, n2: int) -> List[int]:
    """counts[u] = number of arrangements of n1 x's and n2 y's with U statistic u (no ties); recurrence
    f(n1, n2, u) = f(n1 - 1, n2, u - n2) + f(n1, n2 - 1, u)."""
    # table[j][u] for the current i (number of x's), j = number of y's
    table = [[1] + [0] * (n1 * n2) for _j in range(n2 + 1)]  # i = 0: U is always 0
    for i in range(1, n1 + 1):
        new = [[0] * (n1 * n2 + 1) for _j in range(n2 + 1)]
        new[0][0] = 1
        for j in range(1, n2 + 1):
            for u in range(i * j + 1):
                above = table[j][u - j] if u >= j else 0
                new[j][u] = above + new[j - 1][u]
        table = new
    return table[n2]


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> Tuple[float, float, str]:
    """Two-sided Mann-Whitney U test of samples a and b: (U of a, p-value, method).

    U of a counts the pairs (x in a, y in b) with x > y, ties counting one half. Without ties and with
    len(a) * len(b) <= EXACT_LIMIT the p-value is exact (the distribution of U by counting arrangements):
    p = min(1, 2 * min(P(U <= u), P(U >= u))), method "exact". Otherwise the normal approximation with the tie
    correction of the variance and a continuity correction of 0.5, method "normal"."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one value")
    ranks = _midranks(list(a) + list(b))
    u = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    tied = len(set(a) | set(b)) < n1 + n2
    if not tied and n1 * n2 <= EXACT_LIMIT:
        counts = _exact_cdf_counts(n1, n2)
        total = sum(counts)
        k = int(round(u))
        lower = sum(counts[: k + 1]) / total
        upper = sum(counts[k:]) / total
        return u, min(1.0, 2 * min(lower, upper)), "exact"
    n = n1 + n2
    tie_sum = 0.0
    for value in set(ranks):
        t = ranks.count(value)
        tie_sum += t**3 - t
    variance = n1 * n2 / 12 * ((n + 1) - tie_sum / (n * (n - 1)))
    if variance <= 0:
        return u, 1.0, "normal"
    mean = n1 * n2 / 2
    z = (abs(u - mean) - 0.5) / math.sqrt(variance)
    p = math.erfc(max(z, 0.0) / math.sqrt(2))
    return u, min(1.0, p), "normal"
