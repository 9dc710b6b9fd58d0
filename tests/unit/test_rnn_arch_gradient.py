"""The recurrent NASP architecture step carries signal for the selected entries.

The reference: the search language model written out in numpy (float64, the
dense formula s_{i+1} = sum_jk ā_jk (s_j + σ(c_j)(act_k(g_j) - s_j))), and
its gradient in Ā by central finite differences.
"""

import numpy as np
import tensorflow as tf

from nasp_tf import optimizers, proximal, spaces
from nasp_tf.rnn import search_model
from nasp_tf.search import nasp_rnn

VOCAB, UNITS, BATCH, TIME = 12, 5, 3, 4
ACTS = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0),
        "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)), "identity": lambda v: v}


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def numpy_loss(abar, tokens, targets, hidden, w0, kernels, embedding, bias):
    """Mean NLL of the search language model (no dropout, no batch norm)."""
    h = hidden
    total = 0.0
    for t in range(tokens.shape[1]):
        x = embedding[tokens[:, t]]
        c0, h0 = np.split(np.concatenate([x, h], axis=1) @ w0, 2, axis=1)
        states = [h + sigmoid(c0) * (np.tanh(h0) - h)]
        offset = 0
        for i, kernel in enumerate(kernels):
            node = 0.0
            for j in range(i + 1):
                c, g = np.split(states[j] @ kernel, 2, axis=1)
                for k, name in enumerate(spaces.RECURRENT_ACTIVATIONS):
                    term = states[j] + sigmoid(c) * (ACTS[name](g) - states[j])
                    node = node + abar[offset + j, k] * term
            states.append(node)
            offset += i + 1
        h = np.mean(states[1:], axis=0)
        logits = h @ embedding.T + bias
        logits -= logits.max(axis=1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        total += -log_probs[np.arange(len(targets)), targets[:, t]].sum()
    return total / targets.size


def test_arch_gradient_at_the_selected_entries_matches_finite_differences():
    lm = search_model.search_language_model(VOCAB, UNITS, seed=3)
    searcher = nasp_rnn.NASPRNNSearcher(lm, batch_size=BATCH, search_batch_size=BATCH,
                                        eval_batch_size=BATCH, bptt=TIME)
    searcher.compile(optimizers.TorchSGD(1.0, 0.0, 0.0), optimizers.TorchAdam(3e-3))
    rng = np.random.default_rng(0)
    searcher.arch_var.assign(rng.uniform(0.2, 0.9, searcher.arch_var.shape).astype(np.float32))
    abar, index = searcher.discrete_arch()["recurrent"]
    tokens = rng.integers(0, VOCAB, (BATCH, TIME + 1))
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    hidden = rng.normal(0.0, 0.5, (BATCH, UNITS)).astype(np.float32)

    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(abar)
        logits, _, _, _ = lm(inputs, hidden, weights=abar, index=index, mode="arch",
                             training=True)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=targets, logits=logits))
    ours = tape.gradient(loss, abar).numpy()

    weights = [np.float64(w.numpy()) for w in
               [lm.cell.w0, *lm.cell.node_kernels, lm.embedding, lm.decoder_bias]]
    w0, kernels, embedding, bias = weights[0], weights[1:-2], weights[-2], weights[-1]
    point = np.float64(abar.numpy())
    args = (inputs, targets, np.float64(hidden), w0, kernels, embedding, bias)
    assert abs(numpy_loss(point, *args) - float(loss)) < 1e-4
    expected = np.zeros_like(point)
    step = 1e-5
    for r, c in np.ndindex(*point.shape):
        plus, minus = point.copy(), point.copy()
        plus[r, c] += step
        minus[r, c] -= step
        expected[r, c] = (numpy_loss(plus, *args) - numpy_loss(minus, *args)) / (2 * step)
    np.testing.assert_allclose(ours, expected, atol=2e-5, rtol=1e-3)

    selected = point > 0
    assert selected.sum() == 8  # one (predecessor, activation) per node
    # The selected entries carry signal of the same order as the others (with
    # a batch norm after each node they were ~1e-7, the others ~1e-4).
    assert np.median(np.abs(ours[selected])) > 0.1 * np.median(np.abs(ours[~selected]))


def test_complexity_penalty_on_the_recurrent_cell_is_the_squared_norm_over_ops():
    lm = search_model.search_language_model(VOCAB, UNITS, seed=3)
    searchers = []
    for eta in (0.0, 2.0):
        searcher = nasp_rnn.NASPRNNSearcher(lm, batch_size=BATCH, search_batch_size=BATCH,
                                            eval_batch_size=BATCH, bptt=TIME, eta=eta)
        searcher.compile(optimizers.TorchSGD(1.0, 0.0, 0.0), optimizers.TorchAdam(3e-3))
        searchers.append(searcher)
    rng = np.random.default_rng(1)
    a = rng.uniform(0.2, 0.9, (36, 4)).astype(np.float32)
    tokens = tf.constant(rng.integers(0, VOCAB, (BATCH, TIME + 1)), tf.int32)
    grads = []
    for searcher in searchers:
        searcher.arch_var.assign(a)
        searcher.search_hidden.assign(tf.zeros_like(searcher.search_hidden))
        recorded = []
        searcher.apply_arch_gradient = lambda grad, *rest, out=recorded: out.append(grad)
        searcher.arch_step(tokens[:, :-1], tokens[:, 1:])
        grads.append(recorded[0].numpy())
    abar, _ = proximal.prox_c1(a, search_model.rows_per_node(8), keep_edges=1)
    # d(eta * ||Ā||² / 4) / dĀ = eta * Ā / 2: only at the selected entries.
    np.testing.assert_allclose(grads[1] - grads[0], 2.0 * 2 * abar.numpy() / 4, atol=1e-5)


def test_nasp_search_cell_evaluation_does_not_depend_on_the_batch():
    # Without a batch norm nothing mixes the examples of a batch: a batch of one
    # gives each example's own output (the normalised cell gave zeros there).
    cell = search_model.RNNSearchCell(UNITS, seed=0)
    rng = np.random.default_rng(4)
    a = rng.uniform(0.2, 0.9, (36, 4)).astype(np.float32)
    abar, index = proximal.prox_c1(a, search_model.rows_per_node(8), keep_edges=1)
    x = rng.normal(size=(3, 4, UNITS)).astype(np.float32)
    h = rng.normal(size=(3, UNITS)).astype(np.float32)
    together, _ = cell(x, h, weights=abar, index=index, mode="discrete", training=False)
    for b in range(3):
        alone, _ = cell(x[b:b + 1], h[b:b + 1], weights=abar, index=index, mode="discrete",
                        training=False)
        assert np.abs(alone.numpy()).max() > 1e-3
        np.testing.assert_allclose(alone.numpy()[0], together.numpy()[b], atol=1e-5)
