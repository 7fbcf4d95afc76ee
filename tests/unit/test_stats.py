"""Sample statistics and the Mann-Whitney U test, checked against independent computations."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils.stats import describe, mann_whitney_u


def brute_force_p(a, b):
    """Two-sided exact p-value by enumerating every split of the pooled values (midranks, ties allowed)."""
    pooled = list(a) + list(b)
    n1 = len(a)
    observed = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in b)
    us = []
    for idx in itertools.combinations(range(len(pooled)), n1):
        chosen = set(idx)
        first = [pooled[i] for i in idx]
        rest = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        us.append(sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in first for y in rest))
    lower = sum(1 for u in us if u <= observed + 1e-9) / len(us)
    upper = sum(1 for u in us if u >= observed - 1e-9) / len(us)
    return observed, min(1.0, 2 * min(lower, upper))


def test_describe_matches_the_statistics_module() -> None:
    values = [10.0, 12.0, 11.0, 15.0, 9.0]
    s = describe(values)
    assert s is not None
    assert (s.n, s.median, s.min, s.max) == (5, 11.0, 9.0, 15.0)
    assert s.mean == pytest.approx(statistics.fmean(values))
    assert s.stdev == pytest.approx(statistics.stdev(values))
    assert s.cv_percent == pytest.approx(statistics.stdev(values) / statistics.fmean(values) * 100)


def test_describe_edge_cases() -> None:
    assert describe([]) is None
    one = describe([4.0])
    assert one is not None and one.stdev == 0.0 and one.cv_percent == 0.0
    zero_mean = describe([-1.0, 1.0])
    assert zero_mean is not None and zero_mean.cv_percent is None


@pytest.mark.parametrize(
    "a,b",
    [
        ([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]),
        ([1.5, 3.2, 9.1, 4.4], [2.2, 8.8, 7.7, 6.1, 5.0]),
        ([10, 20, 30], [15, 25, 35, 45]),
        ([3.3], [1.1, 2.2, 4.4]),
        ([5, 6, 7, 8, 9, 10], [1, 2, 3, 4, 11, 12]),
    ],
)
def test_exact_p_values_equal_brute_force_enumeration(a, b) -> None:
    u, p, method = mann_whitney_u(a, b)
    expected_u, expected_p = brute_force_p(a, b)
    assert method == "exact"
    assert u == expected_u
    assert p == pytest.approx(expected_p, abs=1e-12)


def test_exact_on_random_samples_without_ties() -> None:
    rng = random.Random(7)
    for _ in range(20):
        pool = rng.sample(range(1000), rng.randint(2, 9))
        cut = rng.randint(1, len(pool) - 1)
        a, b = pool[:cut], pool[cut:]
        _u, p, method = mann_whitney_u(a, b)
        assert method == "exact"
        assert p == pytest.approx(brute_force_p(a, b)[1], abs=1e-12)


def test_known_exact_value_five_against_five() -> None:
    # Completely separated 5 vs 5: one arrangement of 252 at each extreme, two-sided p = 2/252.
    assert mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])[1] == pytest.approx(2 / 252)
    assert mann_whitney_u([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])[0] == 25.0


def test_small_samples_can_never_be_significant() -> None:
    # 3 vs 3 fully separated: p = 2/20 = 0.1, above alpha 0.05.
    assert mann_whitney_u([1, 2, 3], [4, 5, 6])[1] == pytest.approx(0.1)


def test_ties_use_the_normal_approximation_close_to_the_exact_permutation_value() -> None:
    a, b = [100, 101, 100, 102, 102], [50, 51, 50, 52, 51]
    u, p, method = mann_whitney_u(a, b)
    assert method == "normal"
    assert u == 25.0
    # Normal approximation by hand: mean 12.5, tie-corrected variance, continuity 0.5.
    n1 = n2 = 5
    ties = [2, 2, 2, 1, 2, 1]  # 50,50 51,51 52 ; 100,100 101 102,102 -> group sizes
    variance = n1 * n2 / 12 * ((11) - sum(t**3 - t for t in ties) / (10 * 9))
    z = (25 - 12.5 - 0.5) / math.sqrt(variance)
    assert p == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert p < 0.05
    assert brute_force_p(a, b)[1] < 0.05


def test_large_samples_use_the_normal_approximation() -> None:
    a = [float(i) for i in range(30)]
    b = [float(i) + 0.5 for i in range(30)]
    _u, p, method = mann_whitney_u(a, b)
    assert method == "normal"
    assert 0.5 < p <= 1.0


def test_identical_samples_are_not_different() -> None:
    assert mann_whitney_u([5, 5, 5], [5, 5])[1] == 1.0


def test_empty_sample_is_an_error() -> None:
    with pytest.raises(ValueError):
        mann_whitney_u([], [1])
