"""The cell-quality benchmark's statistics against references computed
another way: the Mann–Whitney p-value by enumerating every split of the
pooled values, the bootstrap interval against the normal interval of a mean."""

import itertools
import math

import numpy as np
import pytest

from nasp_tf.bench import stats


def enumerated_p(x, y):
    """P(U >= U observed) over all ways to pick len(x) of the pooled values."""
    pooled = list(x) + list(y)
    observed = stats.u_statistic(x, y)
    hits = total = 0
    for chosen in itertools.combinations(range(len(pooled)), len(x)):
        rest = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        u = sum((pooled[i] > b) + 0.5 * (pooled[i] == b) for i in chosen for b in rest)
        hits += u >= observed - 1e-12
        total += 1
    return hits / total


@pytest.mark.parametrize("seed", range(4))
def test_exact_mann_whitney_equals_the_enumeration(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(0.5, 1.0, 4), rng.normal(0.0, 1.0, 7)
    assert stats.mann_whitney_greater(x, y) == pytest.approx(enumerated_p(x, y), abs=1e-12)


def test_mann_whitney_extremes_and_direction():
    # Every x above every y: the smallest possible p, 1 / C(n, nx).
    assert stats.mann_whitney_greater([5, 6, 7], [1, 2, 3, 4]) == pytest.approx(1 / math.comb(7, 3))
    assert stats.mann_whitney_greater([1, 2, 3], [5, 6, 7, 8]) == pytest.approx(1.0)
    assert stats.probability_of_superiority([5, 6], [1, 2, 5]) == pytest.approx(
        (3 + 2 + 0.5) / 6)


def test_mann_whitney_with_ties_is_close_to_the_enumeration():
    x, y = [1, 2, 2, 3, 4], [0, 1, 1, 2, 2, 3]
    # The normal approximation with tie and continuity corrections.
    assert stats.mann_whitney_greater(x, y) == pytest.approx(enumerated_p(x, y), abs=0.03)


def test_bootstrap_interval_matches_the_normal_interval_of_a_mean():
    values = np.random.default_rng(0).normal(10.0, 2.0, 200)
    low, high = stats.bootstrap_interval(values, resamples=20000)
    se = values.std(ddof=0) / math.sqrt(len(values))
    assert low == pytest.approx(values.mean() - 1.96 * se, abs=0.05)
    assert high == pytest.approx(values.mean() + 1.96 * se, abs=0.05)
    assert stats.bootstrap_interval([3.0]) == (3.0, 3.0)
