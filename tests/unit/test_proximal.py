import numpy as np
import pytest
import tensorflow as tf

from nasp_tf import proximal, spaces


def reference_prox_c1(matrix, node_sizes, keep=2, keep_value=False):
    """REFERENCE.md §3.2 step by step: numpy argmax, stable sort per node."""
    rows, ops = matrix.shape
    out = np.zeros_like(matrix)
    index = np.full(rows, ops)
    choice = matrix.argmax(axis=1)
    strength = matrix[np.arange(rows), choice]
    start = 0
    for size in node_sizes:
        block = list(range(start, start + size))
        ranked = sorted(block, key=lambda r: -strength[r])  # stable: ties keep lower row
        for r in ranked[:keep]:
            out[r, choice[r]] = strength[r] if keep_value else 1.0
            index[r] = choice[r]
        start += size
    return out, index


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("keep_value", [False, True])
def test_prox_c1_matches_reference_on_random_matrices(seed, keep_value):
    rng = np.random.default_rng(seed)
    node_sizes = spaces.edges_per_node(4)
    # Coarse values make ties frequent, which is where the rules matter.
    matrix = rng.integers(0, 4, size=(14, 7)).astype(np.float32) / 4
    abar, index = proximal.prox_c1(matrix, node_sizes, 2, keep_value)
    want_abar, want_index = reference_prox_c1(matrix, node_sizes, 2, keep_value)
    np.testing.assert_array_equal(abar.numpy(), want_abar)
    np.testing.assert_array_equal(index.numpy(), want_index)


def test_prox_c1_structure():
    rng = np.random.default_rng(7)
    matrix = rng.uniform(size=(14, 8)).astype(np.float32)
    abar, index = proximal.prox_c1(matrix, [2, 3, 4, 5])
    abar = abar.numpy()
    kept = (abar != 0).any(axis=1)
    assert np.all((abar != 0).sum(axis=1)[kept] == 1)  # one entry per kept row
    assert set(np.unique(abar)) <= {0.0, 1.0}
    start = 0
    for size in (2, 3, 4, 5):
        assert kept[start:start + size].sum() == 2  # two edges per node
        start += size
    # The kept op is the row's argmax; pruned rows point past the last op.
    np.testing.assert_array_equal(index.numpy()[kept], matrix.argmax(axis=1)[kept])
    assert np.all(index.numpy()[~kept] == 8)


def test_prox_c1_ties_pick_first_op_and_first_edges():
    abar, index = proximal.prox_c1(np.full((14, 7), 0.5, np.float32), [2, 3, 4, 5])
    # The reference's first architecture: op 0 on the edges from s0 and s1.
    want = np.zeros((14, 7), np.float32)
    for row in (0, 1, 2, 3, 5, 6, 9, 10):
        want[row, 0] = 1.0
    np.testing.assert_array_equal(abar.numpy(), want)
    assert list(index.numpy()) == [0, 0, 0, 0, 7, 0, 0, 7, 7, 0, 0, 7, 7, 7]


def test_prox_c1_keeps_one_edge_per_node_for_rnn_cells():
    rng = np.random.default_rng(3)
    sizes = list(range(1, 9))
    matrix = rng.uniform(size=(36, 4)).astype(np.float32)
    abar, _ = proximal.prox_c1(matrix, sizes, keep_edges=1)
    want, _ = reference_prox_c1(matrix, sizes, keep=1)
    np.testing.assert_array_equal(abar.numpy(), want)


def test_prox_c1_runs_in_graph_without_retracing():
    traces = []

    @tf.function
    def project(a):
        traces.append(1)
        return proximal.prox_c1(a, [2, 3, 4, 5])

    for seed in range(3):
        project(tf.random.uniform((14, 7), seed=seed))
    assert len(traces) == 1


def test_prox_c1_rejects_wrong_node_sizes():
    with pytest.raises(ValueError, match="node_sizes"):
        proximal.prox_c1(np.zeros((14, 7), np.float32), [2, 3, 4])


def test_prox_c2_clips_to_unit_box():
    a = tf.constant([[-0.5, 0.2], [1.5, 1.0]])
    np.testing.assert_allclose(proximal.prox_c2(a).numpy(), [[0.0, 0.2], [1.0, 1.0]])


def test_complexity_penalty_value_and_gradient():
    rng = np.random.default_rng(0)
    costs = [0, 864, 252, 144, 1296, 504, 888, 1464]  # REFERENCE.md §1.6
    abar = tf.constant(rng.uniform(size=(14, 8)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(abar)
        r = proximal.complexity_penalty(abar, costs)
    burden = np.array(costs) / 5412.0
    want = (burden * (abar.numpy() ** 2).sum(axis=0)).sum()
    np.testing.assert_allclose(r.numpy(), want, rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(r, abar).numpy(), 2 * burden * abar.numpy(),
                               rtol=1e-5)
    # The paper's "ten times": sep_7x7 against conv 1x1.
    assert burden[7] / burden[3] == pytest.approx(10.17, abs=0.01)


def test_complexity_penalty_of_free_ops_is_zero():
    assert proximal.complexity_penalty(tf.ones((3, 2)), [0, 0]).numpy() == 0.0
