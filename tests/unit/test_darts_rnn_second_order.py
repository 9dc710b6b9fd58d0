"""Recurrent DARTS second order (docs/reference.md §6.4, DARTS's
rnn/architect.py): the searcher's unrolled gradient against the formula
written out step by step with numpy arithmetic, and its finite-difference
Hessian term against TensorFlow's exact Hessian-vector product."""

import numpy as np
import pytest
import tensorflow as tf

CLIP, DECAY, LR = 0.25, 5e-7, 20.0


def _nll(searcher, chunk, hidden, alpha):
    inputs, targets = chunk
    logits, _, _, _ = searcher.model(inputs, hidden, weights=tf.nn.softmax(alpha, axis=-1),
                                     mode="dense", training=True)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits))


def _grads(searcher, chunk, hidden, alpha):
    weights = searcher.model.trainable_weights
    with tf.GradientTape() as tape:
        tape.watch(alpha)
        loss = _nll(searcher, chunk, hidden, alpha)
    g_alpha, g_w = tape.gradient(loss, (alpha, weights))
    g_w = [np.zeros(w.shape, np.float64) if g is None else g.numpy().astype(np.float64)
           for g, w in zip(g_w, weights)]
    return g_alpha.numpy().astype(np.float64), g_w


def _clip(grads):
    norm = np.sqrt(sum(float(np.sum(g ** 2)) for g in grads))
    coefficient = CLIP / (norm + 1e-6)
    return [g * min(coefficient, 1.0) for g in grads], coefficient


def _set(weights, values):
    for w, value in zip(weights, values):
        w.assign(value.astype(np.float32))


def _central_difference(searcher, chunk, hidden, alpha, w0, v):
    """(g+ − g−) / 2R with g± = ∇_α L(w ± R v), R = 0.01 / ‖v‖; the weights put back."""
    weights = searcher.model.trainable_weights
    radius = 0.01 / np.sqrt(sum(float(np.sum(x ** 2)) for x in v))
    sided = []
    for sign in (1.0, -1.0):
        _set(weights, [w + sign * radius * x for w, x in zip(w0, v)])
        sided.append(_grads(searcher, chunk, hidden, alpha)[0])
    _set(weights, w0)
    return (sided[0] - sided[1]) / (2 * radius)


@pytest.fixture
def searcher_and_chunks(tiny_rnn_searcher, token_batch):
    searcher = tiny_rnn_searcher("darts", lr=LR, order=2, grad_clip=CLIP, weight_decay=DECAY)
    train, search = token_batch(1, length=4), token_batch(2)  # seq_len 4 of bptt 5
    searcher(train[0])  # builds the weights
    rng = np.random.default_rng(0)
    searcher.arch_var.assign(rng.normal(size=searcher.arch_var.shape).astype(np.float32))
    for state in (searcher.train_hidden, searcher.search_hidden):
        state.assign(rng.normal(scale=0.5, size=state.shape).astype(np.float32))
    return searcher, train, search


def test_unrolled_gradient_is_darts_formula(searcher_and_chunks):
    searcher, train, search = searcher_and_chunks
    weights = searcher.model.trainable_weights
    w0 = [w.numpy().astype(np.float64) for w in weights]
    alpha = tf.convert_to_tensor(searcher.arch_var)
    train_hidden, search_hidden = (tf.identity(searcher.train_hidden),
                                   tf.identity(searcher.search_hidden))

    eta = LR * 4 / 5
    _, g = _grads(searcher, train, train_hidden, alpha)
    g, coefficient = _clip(g)
    assert coefficient != 1.0
    _set(weights, [w - eta * (gi + DECAY * w) for w, gi in zip(w0, g)])
    first, v = _grads(searcher, search, search_hidden, alpha)
    v, _ = _clip(v)
    expected = first - eta * coefficient * _central_difference(searcher, train, train_hidden,
                                                               alpha, w0, v)

    got, last, losses = searcher.unrolled_gradient(train, search)
    np.testing.assert_allclose(got.numpy(), expected, rtol=2e-3, atol=2e-6)
    assert np.abs(got.numpy() - first).max() > 1e-3 * np.abs(first).max()  # a real correction
    for w, value in zip(weights, w0):  # the weights are put back exactly
        np.testing.assert_array_equal(w.numpy(), value.astype(np.float32))
    assert losses.shape == search[1].shape and last.shape == searcher.search_hidden.shape


def test_finite_difference_term_is_the_hessian_vector_product(searcher_and_chunks):
    """(g+ - g-) / 2R approximates d/dα (∇_w L_train · v) at w: checked with
    TensorFlow's nested tapes, a different computation."""
    searcher, train, _ = searcher_and_chunks
    weights = searcher.model.trainable_weights
    alpha = tf.convert_to_tensor(searcher.arch_var)
    hidden = tf.identity(searcher.train_hidden)
    w0 = [w.numpy().astype(np.float64) for w in weights]
    rng = np.random.default_rng(5)
    v = [rng.normal(size=w.shape) for w in weights]
    v, _ = _clip(v)
    with tf.GradientTape() as outer:
        outer.watch(alpha)
        with tf.GradientTape() as inner:
            loss = _nll(searcher, train, hidden, alpha)
        grads = inner.gradient(loss, weights)
        dot = tf.add_n([tf.reduce_sum(g * x.astype(np.float32))
                        for g, x in zip(grads, v) if g is not None])
    exact = outer.gradient(dot, alpha).numpy()
    approx = _central_difference(searcher, train, hidden, alpha, w0, v)
    assert np.linalg.norm(approx - exact) < 0.05 * np.linalg.norm(exact)


def test_order_two_trains_through_fit_and_order_three_is_refused(tiny_rnn_searcher,
                                                                token_batch):
    searcher = tiny_rnn_searcher("darts", order=2)
    before = searcher.arch_var.numpy()
    data = tf.data.Dataset.from_tensors((token_batch(3), token_batch(4))).repeat(2)
    logs = searcher.fit(data, epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"][0]) and np.isfinite(logs["arch_loss"][0])
    assert not np.array_equal(searcher.arch_var.numpy(), before)
    with pytest.raises(ValueError, match="Received: order=3"):
        tiny_rnn_searcher("darts", order=3)
