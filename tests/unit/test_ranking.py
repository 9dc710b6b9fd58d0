"""The supernet-ranking check's statistics: Spearman's rank correlation and
its permutation p-value against scipy-free references computed here."""

import itertools
import math

import numpy as np
import pytest

from nasp_tf.bench import ranking


def pearson_of_ranks(x, y):
    # Ranks by counting (average rank on ties), then Pearson's formula.
    def ranks(v):
        v = np.asarray(v, float)
        return np.array([np.sum(v < a) + (np.sum(v == a) + 1) / 2 for a in v])

    return float(np.corrcoef(ranks(x), ranks(y))[0, 1])


@pytest.mark.parametrize("seed", range(5))
def test_spearman_equals_pearson_of_ranks(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, 15)  # with ties
    y = x + rng.normal(0, 2, 15)
    assert ranking.spearman(x, y) == pytest.approx(pearson_of_ranks(x, y), abs=1e-12)
    # Without ties: 1 - 6 sum d^2 / (n (n^2 - 1)).
    x = rng.permutation(10)
    y = rng.permutation(10)
    d = x - y
    assert ranking.spearman(x, y) == pytest.approx(1 - 6 * np.sum(d ** 2) / (10 * 99))


def test_spearman_permutation_p_value_matches_the_enumeration():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    y = [1.0, 3.0, 2.0, 5.0, 4.0]
    observed = ranking.spearman(x, y)
    # All 120 pairings: the exact one-sided p-value.
    exact = np.mean([ranking.spearman(x, p) >= observed - 1e-12
                     for p in itertools.permutations(y)])
    p = ranking.spearman_greater(x, y, seed=1, permutations=20000)
    assert abs(p - exact) < 4 * math.sqrt(exact * (1 - exact) / 20000)
    # A perfect order: 1/120 by enumeration.
    assert ranking.spearman_greater(x, x, seed=2) == pytest.approx(1 / 120, abs=0.003)


def test_searched_cell_place_counts_the_cells_above_it():
    assert ranking._position(0.9, [0.95, 0.8, 0.91]) == 3
    assert ranking._position(1.0, [0.95, 0.8]) == 1
