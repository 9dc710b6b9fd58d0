"""The statistics of the cell-quality benchmark, in numpy only: a percentile
bootstrap interval of a mean, the one-sided Mann–Whitney test and the
probability that a draw of one group beats a draw of another."""

import math

import numpy as np


def bootstrap_interval(values, level=0.95, resamples=10000, seed=0):
    """The percentile bootstrap interval of the mean of `values` (resampled
    with replacement, `resamples` times, from a generator seeded by `seed`).
    One value gives (value, value)."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        raise ValueError("bootstrap_interval needs at least one value. Received: []")
    if values.size == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (resamples, values.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def u_statistic(x, y):
    """Mann–Whitney's U of `x` against `y`: the pairs (a in x, b in y) with
    a > b, ties counting one half."""
    x, y = np.asarray(x, np.float64)[:, None], np.asarray(y, np.float64)[None, :]
    return float(np.sum(x > y) + 0.5 * np.sum(x == y))


def probability_of_superiority(x, y):
    """P(a > b) + P(a = b) / 2 for a drawn from `x` and b from `y`: U / (nx ny)."""
    return u_statistic(x, y) / (len(x) * len(y))


def _exact_upper_tail(u, nx, ny):
    """P(U >= u) under the null for samples without ties: the number of
    arrangements of nx x-ranks among nx + ny with each U, by the recursion
    N(u; m, n) = N(u - n; m - 1, n) + N(u; m, n - 1) (the largest value is an x,
    beating all n ys, or a y)."""
    max_u = nx * ny
    # counts[m][n] is a list over U = 0..m n.
    table = {(0, n): [1] for n in range(ny + 1)}
    for m in range(1, nx + 1):
        table[(m, 0)] = [1]
        for n in range(1, ny + 1):
            size = m * n + 1
            row = [0] * size
            for value, count in enumerate(table[(m - 1, n)]):
                row[value + n] += count
            for value, count in enumerate(table[(m, n - 1)]):
                row[value] += count
            table[(m, n)] = row
    counts = table[(nx, ny)]
    total = math.comb(nx + ny, nx)
    start = max(0, math.ceil(u - 1e-9))
    return sum(counts[start:max_u + 1]) / total


def mann_whitney_greater(x, y):
    """The one-sided Mann–Whitney p-value of "x tends to be larger than y".

    Exact (the permutation distribution of U) when no value is shared
    between or within the samples and nx + ny <= 60; otherwise the normal
    approximation with the tie correction and a continuity correction of
    one half.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    nx, ny = x.size, y.size
    if nx == 0 or ny == 0:
        raise ValueError(f"both samples need values. Received: {nx} and {ny}")
    u = u_statistic(x, y)
    pooled = np.concatenate([x, y])
    _, counts = np.unique(pooled, return_counts=True)
    if counts.max() == 1 and nx + ny <= 60:
        return _exact_upper_tail(u, nx, ny)
    n = nx + ny
    mean = nx * ny / 2.0
    ties = np.sum(counts ** 3 - counts)
    variance = nx * ny / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return 1.0
    z = (u - mean - 0.5) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2.0))
