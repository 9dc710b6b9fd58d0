import numpy as np
import pytest
import tensorflow as tf

from nasp_tf import spaces
from nasp_tf.search import darts

pytestmark = pytest.mark.slow

NODE_SIZES = [2, 3]


@pytest.fixture
def make_darts(tiny_searcher):
    def make(order=1, lr=0.05):
        return tiny_searcher(darts.DARTSSearcher, spaces.with_none(spaces.get_cnn_space("darts7")),
                             lr=lr, arch_lr=3e-3, order=order, genotype_space="darts7")
    return make


def test_darts_space_and_initialisation(make_darts, tiny_supernet):
    assert spaces.with_none(spaces.get_cnn_space("darts7")).name == "darts8"
    nasp12 = spaces.with_none(spaces.get_cnn_space("nasp12"))
    assert nasp12.normal[0] == nasp12.reduce[0] == "none" and len(nasp12.reduce) == 6
    searcher = make_darts()
    a = searcher.arch_vars["normal"].numpy()
    assert a.shape == (5, 8)
    assert 0 < np.abs(a).max() < 1e-2  # 1e-3 * N(0, 1), not constant
    with pytest.raises(ValueError, match="none"):
        darts.DARTSSearcher(tiny_supernet("darts7"))
    with pytest.raises(ValueError, match="Received: order=3"):
        darts.DARTSSearcher(tiny_supernet("darts8"), order=3)


def test_darts_initial_a_follows_the_seed(tiny_searcher, tiny_rnn_searcher):
    # The run's seed decides A's 1e-3 * N(0, 1) start: the same seed the same
    # A, another seed another A (an initializer made at import drew its own
    # seed there, and A was the same for every seed of a process and
    # different in every process).
    space = spaces.with_none(spaces.get_cnn_space("darts7"))

    def cnn_a(seed):
        searcher = tiny_searcher(darts.DARTSSearcher, space, seed=seed)
        return searcher.arch_vars["normal"].numpy()

    def rnn_a(seed):
        return tiny_rnn_searcher("darts", seed=seed).arch_var.numpy()

    for arch_at in (cnn_a, rnn_a):
        first, other, again = arch_at(0), arch_at(1), arch_at(0)
        np.testing.assert_array_equal(first, again)
        assert not np.array_equal(first, other)
        assert 0 < np.abs(first).max() < 1e-2


def test_darts_discrete_architecture_is_the_genotype_rule(make_darts):
    searcher = make_darts()
    rng = np.random.default_rng(3)
    for kind in ("normal", "reduce"):
        a = rng.normal(size=(5, 8)).astype(np.float32)
        a[1, 0] = 9.0  # `none` dominates a row: it must still not be chosen
        searcher.arch_vars[kind].assign(a)
    genotype = searcher.genotype()
    assert genotype.space == "darts7"
    arch = searcher.discrete_arch()
    ops = spaces.DARTS8
    for kind in ("normal", "reduce"):
        a = searcher.arch_vars[kind].numpy()
        probs = np.exp(a) / np.exp(a).sum(axis=1, keepdims=True)
        weights, index = (t.numpy() for t in arch[kind])
        pairs, row = [], 0
        for size in NODE_SIZES:
            block = range(row, row + size)
            kept = sorted([r for r in block if index[r] < 8],
                          key=lambda r: -probs[r, 1:].max())
            assert len(kept) == 2
            for r in kept:
                assert index[r] == 1 + np.argmax(probs[r, 1:])
                assert weights[r, index[r]] == 1.0 and np.count_nonzero(weights[r]) == 1
                pairs.append((ops[index[r]], r - row))
            row += size
        assert tuple(pairs) == genotype.cell(kind)[0]


def test_darts_first_order_step_moves_every_entry(make_darts, image_batch):
    searcher = make_darts()
    before = searcher.arch_vars["normal"].numpy()
    # Eagerly: bin/bench.py's tests run DARTS-1st's compiled steps.
    logs = searcher.train_step((image_batch(0), image_batch(1)))
    moved = searcher.arch_vars["normal"].numpy() - before
    assert np.all(moved != 0)  # the dense mixture gives every (edge, op) a gradient
    assert np.isfinite(float(logs["loss"])) and np.isfinite(float(logs["arch_loss"]))


def test_darts_second_order_gradient_matches_a_direct_computation(make_darts, image_batch,
                                                                   direct_second_order):
    """docs/reference.md §4.3 written out again, eagerly and step by step, against
    the searcher's compiled unrolled step."""
    searcher = make_darts(order=2, lr=0.1)
    searcher.update_weights(*image_batch(7))  # a non-zero momentum buffer enters the unrolled step
    train, val = image_batch(0), image_batch(1)
    weights = searcher.supernet.trainable_weights
    before = [w.numpy() for w in weights]
    ours, _ = tf.function(searcher.second_order_gradient)(train, val)
    for w, value in zip(weights, before):  # the searcher puts the weights back
        np.testing.assert_array_equal(w.numpy(), value)

    matrices = {k: tf.constant(v.numpy()) for k, v in searcher.arch_vars.items()}
    expected, val_grads = direct_second_order(
        searcher, train, val, lambda s, data, m: s.network_loss(*data, m)[0], matrices)
    expected = [expected[k] for k in matrices]
    val_grads = [val_grads[k] for k in matrices]

    for mine, direct, first in zip(ours, expected, val_grads):
        second = direct - first
        assert np.linalg.norm(second) > 1e-3 * np.linalg.norm(first)
        np.testing.assert_allclose(mine.numpy(), direct, atol=1e-2 * np.abs(second).max())
