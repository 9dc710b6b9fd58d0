"""The paper's PA-standard (eq. 10) and PA-lazy (eq. 11), one step against a
direct computation: the gradient of the dense supernet at Ā by autodiff
(first order) or DARTS's §4.3 written out eagerly (second order), then the
plain step and, for PA-standard, prox_C."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from small_spaces import OPS4 as OPS, SMALL4 as SPACE

from nasp_tf import optimizers, proximal
from nasp_tf.cnn import search_model
from nasp_tf.search import pa

pytestmark = pytest.mark.slow

NODE_SIZES = [2, 3]
KINDS = ("normal", "reduce")


def batch(seed, size=4):
    rng = np.random.default_rng(seed)
    return (tf.constant(rng.normal(size=(size, 8, 8, 3)).astype(np.float32)),
            tf.constant(rng.integers(0, 5, size)))


def make(cls, epsilon, order, eta=0.0):
    # The same weights whatever ran before: the PA-standard test compares
    # argmaxes after a step of 200, which a near tie between two ops (a draw
    # of the initial weights) could flip with float32 round-off.
    keras.utils.set_random_seed(0)
    net = search_model.SearchNetwork(SPACE, 5, 4, 3, 2, (8, 8, 3), name="supernet")
    searcher = cls(net, order=order, eta=eta, name="searcher")
    searcher.compile(optimizers.TorchSGD(0.1, 0.9, 3e-4),
                     optimizers.TorchSGD(epsilon, momentum=0.0, l2=0.0))
    searcher.update_weights(*batch(7))  # a non-zero momentum buffer for the unrolled step
    return searcher


def prox_c(a):
    return proximal.prox_c1(np.clip(a, 0.0, 1.0), NODE_SIZES)


def dense_loss(searcher, data, abars):
    """The mean loss of the dense supernet sum_k ā_k op_k(x) (training mode)."""
    images, labels = data
    feed = {k: (abars[k], tf.zeros([abars[k].shape[0]], tf.int32)) for k in KINDS}
    logits = searcher.supernet(images, feed, mode="dense", training=True)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=logits))


def gradient_at(searcher, data, abars):
    with tf.GradientTape() as tape:
        tape.watch(list(abars.values()))
        loss = dense_loss(searcher, data, abars)
    return {k: g.numpy() for k, g in zip(KINDS, tape.gradient(loss, [abars[k] for k in KINDS]))}


def start(searcher, rng, on_c):
    for kind in KINDS:
        a = rng.uniform(-0.3, 1.3, (5, len(OPS))).astype(np.float32)
        searcher.arch_vars[kind].assign(prox_c(a)[0].numpy() if on_c else a)
    return {k: searcher.arch_vars[k].numpy().copy() for k in KINDS}


def test_pa_lazy_first_order_step_is_a_minus_eps_grad_at_prox_c():
    searcher = make(pa.LazyPASearcher, epsilon=2.0, order=1, eta=0.5)
    a = start(searcher, np.random.default_rng(0), on_c=False)
    abars = {k: prox_c(a[k])[0] for k in KINDS}
    grads = gradient_at(searcher, batch(1), abars)
    # eta R on the normal cell: d/dĀ = 2 eta (p_k / sum p) Ā.
    costs = np.array(searcher.op_costs["normal"])
    grads["normal"] += 2 * 0.5 * (costs / costs.sum()) * abars["normal"].numpy()
    searcher.update_arch(batch(0), batch(1))
    for kind in KINDS:
        np.testing.assert_allclose(searcher.arch_vars[kind].numpy(), a[kind] - 2.0 * grads[kind],
                                   atol=1e-5)
    moved = searcher.arch_vars["normal"].numpy()
    assert moved.max() > 1.0 and moved.min() < 0.0  # never clipped


def test_pa_lazy_second_order_step_matches_the_direct_computation(direct_second_order):
    # With the complexity penalty on the normal cell (the default --penalize):
    # its gradient 2 eta (p_k / sum p) Ā[:, k] joins the normal cell's step only.
    eta = 0.5
    searcher = make(pa.LazyPASearcher, epsilon=3.0, order=2, eta=eta)
    a = start(searcher, np.random.default_rng(1), on_c=False)
    train, val = batch(0), batch(1)
    abars = {k: prox_c(a[k])[0] for k in KINDS}
    weights = searcher.supernet.trainable_weights
    statistics = [s.numpy() for s in searcher.supernet.non_trainable_weights]
    expected, _ = direct_second_order(searcher, train, val, dense_loss, abars)
    first = gradient_at(searcher, val, abars)
    for s, value in zip(searcher.supernet.non_trainable_weights, statistics):
        s.assign(value)
    before = [w.numpy() for w in weights]
    tf.function(searcher.update_arch)(train, val)
    for w, value in zip(weights, before):  # the unrolled step puts the weights back
        np.testing.assert_array_equal(w.numpy(), value)
    costs = np.array(searcher.supernet.op_costs("normal"), np.float64)
    penalty = {"normal": 2.0 * eta * costs / costs.sum() * abars["normal"].numpy(),
               "reduce": 0.0}
    assert np.abs(penalty["normal"]).max() > 1e-2
    for kind in KINDS:
        second = expected[kind] - first[kind]
        assert np.abs(second).max() > 1e-3 * np.abs(first[kind]).max()
        np.testing.assert_allclose(searcher.arch_vars[kind].numpy(),
                                   a[kind] - 3.0 * (expected[kind] + penalty[kind]),
                                   atol=3.0 * 1e-2 * np.abs(second).max() + 1e-6)


def test_pa_standard_step_is_prox_c_of_the_plain_step(direct_second_order):
    searcher = make(pa.PASearcher, epsilon=200.0, order=2)
    a = start(searcher, np.random.default_rng(2), on_c=True)
    train, val = batch(0), batch(1)
    grads, _ = direct_second_order(searcher, train, val, dense_loss,
                                   {k: tf.constant(a[k]) for k in KINDS})
    searcher.update_arch(train, val)
    changed = False
    for kind in KINDS:
        after = searcher.arch_vars[kind].numpy()
        expected, _ = prox_c(a[kind] - 200.0 * grads[kind])
        np.testing.assert_array_equal(after, expected.numpy())
        assert set(np.unique(after)) <= {0.0, 1.0}  # A itself stays on C
        changed |= not np.array_equal(after, a[kind])
    assert changed


def test_second_order_leaves_the_real_batch_norm_statistics_as_the_reference():
    # DARTS's architect: the first pass (L_train at w) runs on the real network
    # and updates its statistics; the other three run on a copy.
    searcher = make(pa.LazyPASearcher, epsilon=1.0, order=2)
    start(searcher, np.random.default_rng(3), on_c=False)
    train, val = batch(0), batch(1)
    statistics = searcher.supernet.non_trainable_weights
    assert statistics
    saved = [s.numpy() for s in statistics]
    arch = searcher.discrete_arch()
    searcher.supernet(train[0], arch, mode="arch", training=True)
    expected = [s.numpy() for s in statistics]
    assert any(not np.array_equal(e, v) for e, v in zip(expected, saved))
    for s, value in zip(statistics, saved):
        s.assign(value)
    searcher.second_order_gradient(train, val)
    for s, e in zip(statistics, expected):
        np.testing.assert_allclose(s.numpy(), e, rtol=1e-6, atol=1e-7)
