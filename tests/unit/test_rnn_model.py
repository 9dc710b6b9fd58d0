import numpy as np
import pytest
import tensorflow as tf

from nasp_tf import spaces
from nasp_tf import counting, proximal
from nasp_tf.rnn import model as model_lib
from nasp_tf.rnn import search_model

DARTS_V2 = [("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2),
            ("sigmoid", 5), ("tanh", 3), ("relu", 5)]
NP_ACT = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0),
          "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)), "identity": lambda v: v}


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def numpy_cell(xs, h, w0, ws, recurrent, concat):
    """REFERENCE.md §6.1 written out in numpy, time-major xs [T, B, D]."""
    outs = []
    for x in xs:
        c0, h0 = np.split(np.concatenate([x, h], 1) @ w0, 2, axis=1)
        states = [h + sigmoid(c0) * (np.tanh(h0) - h)]
        for i, (act, pred) in enumerate(recurrent):
            c, g = np.split(states[pred] @ ws[i], 2, axis=1)
            states.append(states[pred] + sigmoid(c) * (NP_ACT[act](g) - states[pred]))
        h = np.mean([states[j] for j in concat], axis=0)
        outs.append(h)
    return np.stack(outs), h


def test_eval_cell_matches_numpy_reference():
    cell = model_lib.DARTSCell(6, DARTS_V2, range(1, 9), seed=1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 6)).astype(np.float32)
    h = rng.normal(size=(3, 6)).astype(np.float32)
    out, last = cell(x, h, training=False)
    ws = [w.numpy() for w in cell.node_kernels]
    ref, ref_last = numpy_cell(x.transpose(1, 0, 2), h, cell.w0.numpy(), ws, DARTS_V2,
                               range(1, 9))
    np.testing.assert_allclose(out.numpy(), ref.transpose(1, 0, 2), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(last.numpy(), ref_last, rtol=1e-5, atol=1e-5)
    assert len(cell.trainable_weights) == 9


def test_language_model_parameter_counts_from_the_paper():
    genotype = type("G", (), {"recurrent": DARTS_V2, "concat": tuple(range(1, 9))})
    # REFERENCE.md §6.4 (search, 300 units) and §6.5 (PTB 850, WT2 700).
    for vocab, units, expected in ((10000, 300, 4810000), (10000, 850, 22960000),
                                   (33278, 700, 33127878)):
        lm = model_lib.language_model(genotype, vocab, units)
        assert counting.parameter_count(lm) == expected


def test_state_carried_across_chunks_equals_one_long_sequence():
    genotype = type("G", (), {"recurrent": DARTS_V2, "concat": tuple(range(1, 9))})
    lm = model_lib.language_model(genotype, 30, 8, dropout=0.5, dropouth=0.3, dropoutx=0.3,
                                  dropouti=0.2, dropoute=0.1, seed=3)
    tokens = np.random.default_rng(1).integers(0, 30, (4, 11))
    whole, whole_h, _, _ = lm(tokens, lm.zero_state(4), training=False)
    first, h, _, _ = lm(tokens[:, :4], lm.zero_state(4), training=False)
    second, h2, _, _ = lm(tokens[:, 4:], h, training=False)
    np.testing.assert_allclose(np.concatenate([first, second], 1), whole.numpy(), atol=1e-5)
    np.testing.assert_allclose(h2.numpy(), whole_h.numpy(), atol=1e-6)
    # The carried state matters: a fresh state gives other predictions.
    fresh, _, _, _ = lm(tokens[:, 4:], lm.zero_state(4), training=False)
    assert np.abs(fresh.numpy() - second.numpy()).max() > 1e-3


def test_training_dropouts_change_outputs_and_masks_are_locked_over_time():
    genotype = type("G", (), {"recurrent": DARTS_V2, "concat": tuple(range(1, 9))})
    lm = model_lib.language_model(genotype, 30, 8, dropout=0.5, seed=3)
    tokens = np.zeros((2, 6), np.int32)
    _, _, raw, dropped = lm(tokens, lm.zero_state(2), training=True)
    ratio = dropped.numpy() / raw.numpy()
    # One mask per (sequence, unit), shared by every time step: 0 or 1/(1-p).
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, :1], ratio.shape), atol=1e-5)
    assert set(np.round(np.unique(ratio), 4)) <= {0.0, 2.0}


def nasp_arch(rng, steps=8, num_ops=4):
    matrix = rng.uniform(size=(steps * (steps + 1) // 2, num_ops)).astype(np.float32)
    return proximal.prox_c1(matrix, search_model.rows_per_node(steps), keep_edges=1)


def test_prox_keeps_one_activation_and_one_edge_per_node():
    rng = np.random.default_rng(4)
    matrix = rng.uniform(size=(36, 4)).astype(np.float32)
    abar, index = proximal.prox_c1(matrix, search_model.rows_per_node(8), keep_edges=1)
    abar, index = abar.numpy(), index.numpy()
    for i, offset in enumerate(search_model.row_offsets(8)):
        block = abar[offset:offset + i + 1]
        assert np.count_nonzero(block) == 1 and block.max() == 1.0
        # The kept row is the one whose largest entry is the largest of the node.
        best = int(np.argmax(matrix[offset:offset + i + 1].max(axis=1)))
        assert block[best].argmax() == matrix[offset + best].argmax()
        np.testing.assert_array_equal(index[offset:offset + i + 1] < 4,
                                      np.arange(i + 1) == best)


def search_lm(op_names=spaces.RECURRENT_ACTIVATIONS, units=6, vocab=20, **kw):
    return search_model.search_language_model(vocab, units, op_names, seed=5, **kw)


@pytest.mark.parametrize("training", [False, True])
def test_discrete_arch_and_dense_agree_on_a_discrete_architecture(training):
    lm = search_lm()
    abar, index = nasp_arch(np.random.default_rng(2))
    tokens = np.random.default_rng(3).integers(0, 20, (4, 5))
    h = np.random.default_rng(4).normal(size=(4, 6)).astype(np.float32)
    outs = {mode: lm(tokens, h, training=training, weights=abar, index=index, mode=mode)[0]
            for mode in search_model.MODES}
    np.testing.assert_allclose(outs["discrete"], outs["dense"], atol=1e-5)
    np.testing.assert_allclose(outs["arch"], outs["dense"], atol=1e-5)


def test_search_cell_discrete_without_bn_effect_is_the_eval_cell():
    # At inference with fresh statistics (mean 0, variance 1) the batch norm is
    # x / sqrt(1 + eps): scale the eval cell's states the same way to compare.
    cell = search_model.RNNSearchCell(5, seed=0, batch_norm="moving")
    abar, index = nasp_arch(np.random.default_rng(8))
    preds, acts = [], []
    for i, offset in enumerate(search_model.row_offsets(8)):
        row = int(np.flatnonzero(index.numpy()[offset:offset + i + 1] < 4)[0])
        preds.append(row)
        acts.append(spaces.RECURRENT_ACTIVATIONS[index.numpy()[offset + row]])
    rng = np.random.default_rng(9)
    x = rng.normal(size=(3, 2, 5)).astype(np.float32)
    h = rng.normal(size=(3, 5)).astype(np.float32)
    out, _ = cell(x, h, weights=abar, index=index, mode="discrete", training=False)
    k = 1.0 / np.sqrt(1.0 + 1e-5)
    ws = [w.numpy() for w in cell.node_kernels]
    hs, ref = h, []
    for xt in x.transpose(1, 0, 2):
        c0, h0 = np.split(np.concatenate([xt, hs], 1) @ cell.w0.numpy(), 2, axis=1)
        states = [k * (hs + sigmoid(c0) * (np.tanh(h0) - hs))]
        for i in range(8):
            s = states[preds[i]]
            c, g = np.split(s @ ws[i], 2, axis=1)
            states.append(k * (s + sigmoid(c) * (NP_ACT[acts[i]](g) - s)))
        hs = np.mean(states[1:], axis=0)
        ref.append(hs)
    np.testing.assert_allclose(out.numpy(), np.stack(ref, 1), rtol=1e-4, atol=1e-5)


def lm_loss(lm, tokens, targets, h, weights, index, mode):
    logits, _, _, _ = lm(tokens, h, training=True, weights=weights, index=index, mode=mode)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits))


def test_arch_gradient_equals_the_dense_formula():
    lm = search_lm(dropouth=0.0)
    rng = np.random.default_rng(6)
    abar, index = nasp_arch(rng)
    tokens = rng.integers(0, 20, (4, 6))
    targets = rng.integers(0, 20, (4, 6))
    h = rng.normal(size=(4, 6)).astype(np.float32)
    grads = {}
    for mode in ("arch", "dense"):
        w = tf.Variable(abar)
        with tf.GradientTape() as tape:
            loss = lm_loss(lm, tokens, targets, h, w, index, mode)
        grads[mode] = tape.gradient(loss, [w] + lm.trainable_weights)
    # Every entry of the 36 x 4 matrix gets its gradient, equal to the dense one.
    assert np.count_nonzero(grads["arch"][0].numpy()) == 36 * 4
    np.testing.assert_allclose(grads["arch"][0], grads["dense"][0], rtol=1e-4, atol=1e-7)
    for a, d in zip(grads["arch"][1:], grads["dense"][1:]):
        np.testing.assert_allclose(a, d, rtol=1e-4, atol=1e-7)


def test_only_the_selected_activation_runs(monkeypatch):
    calls = {name: tf.Variable(0) for name in model_lib.ACTIVATIONS}
    for name, fn in list(model_lib.ACTIVATIONS.items()):
        def counted(g, name=name, fn=fn):
            calls[name].assign_add(1)
            return fn(g)
        monkeypatch.setitem(model_lib.ACTIVATIONS, name, counted)
    lm = search_lm()
    abar, index = nasp_arch(np.random.default_rng(7))
    tokens = np.zeros((2, 3), np.int32)

    @tf.function(autograph=False)
    def discrete_step(weights, index):
        with tf.GradientTape() as tape:
            loss = lm_loss(lm, tokens, tokens, tf.zeros([2, 6]), weights, index, "discrete")
        return tape.gradient(loss, lm.trainable_weights)

    discrete_step(abar, index)
    selected = [spaces.RECURRENT_ACTIVATIONS[int(i)] for i in index.numpy() if i < 4]
    assert len(selected) == 8
    for name in spaces.RECURRENT_ACTIVATIONS:
        # Per time step, each node runs its own activation once (s0's tanh is
        # the fixed first node, not a candidate), nothing else.
        assert int(calls[name].numpy()) == 3 * selected.count(name), name


def test_batch_norm_statistics_update_as_sequential_pytorch_updates():
    cell = search_model.RNNSearchCell(3, steps=2, seed=0, batch_norm="moving")
    rng = np.random.default_rng(1)
    stats = rng.uniform(0.5, 2.0, size=(4, 3, 2, 3)).astype(np.float32)
    mean, var = np.zeros(3), np.ones(3)
    for call in stats.reshape(-1, 2, 3):
        mean = 0.9 * mean + 0.1 * call[0]
        var = 0.9 * var + 0.1 * call[1] * 8 / 7  # batch 8, unbiased
    cell.update_statistics(tf.constant(stats), 8)
    np.testing.assert_allclose(cell.moving_mean.numpy(), mean, rtol=1e-5)
    np.testing.assert_allclose(cell.moving_variance.numpy(), var, rtol=1e-5)


def test_search_cell_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Received"):
        search_model.RNNSearchCell(4, op_names=("tanh", "gelu"))
    with pytest.raises(ValueError, match="Received"):
        model_lib.DARTSCell(4, [("tanh", 1)], [1])
    cell = search_model.RNNSearchCell(4, steps=1)
    with pytest.raises(ValueError, match="mode"):
        cell(np.zeros((1, 1, 4), np.float32), np.zeros((1, 4), np.float32),
             weights=np.ones((1, 4), np.float32), mode="soft")
