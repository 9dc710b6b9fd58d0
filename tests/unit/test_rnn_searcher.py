import numpy as np
import pytest
import tensorflow as tf

from nasp_tf import callbacks as callbacks_lib
from nasp_tf import genotype as genotype_lib
from nasp_tf import proximal
from nasp_tf.data import text
from nasp_tf.rnn import search_model
from nasp_tf.search import nasp_rnn, rnn_base

UNITS, BATCH = 8, 4


def test_weight_step_is_clipped_decayed_and_scaled_by_length(tiny_rnn_searcher, token_batch):
    searcher = tiny_rnn_searcher(grad_clip=0.25, weight_decay=0.01, tar_beta=1e-3)
    lm = searcher.model
    abar, index = searcher.discrete_arch()["recurrent"]
    x, y = token_batch(0, length=3)  # 3 of bptt 5: the step is scaled by 0.6
    h0 = np.random.default_rng(1).normal(size=(BATCH, UNITS)).astype(np.float32)
    searcher.train_hidden.assign(h0)
    variables = lm.trainable_weights
    before = [v.numpy().copy() for v in variables]
    with tf.GradientTape() as tape:
        logits, last, raw, _ = lm(x, h0, weights=abar, index=index, mode="dense",
                                  training=True)
        loss = tf.reduce_mean(rnn_base.token_losses(y, logits)) + 1e-3 * tf.reduce_mean(
            tf.square(raw[:, 1:] - raw[:, :-1]))
    grads = [g.numpy() for g in tape.gradient(loss, variables)]
    norm = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    expected = [w - 20.0 * 0.6 * (g * min(1.0, 0.25 / norm) + 0.01 * w)
                for w, g in zip(before, grads)]
    searcher.weight_step(x, y, abar, index, "discrete")
    for v, e in zip(variables, expected):
        np.testing.assert_allclose(v.numpy(), e, rtol=1e-4, atol=1e-6)
    # The hidden state is carried to the next chunk.
    np.testing.assert_allclose(searcher.train_hidden.numpy(), last.numpy(), atol=1e-6)


def test_nasp_arch_step_uses_the_gradient_at_abar_and_stays_in_the_box(tiny_rnn_searcher,
                                                                        token_batch):
    searcher = tiny_rnn_searcher()
    x, y = token_batch(2)
    abar, index = searcher.discrete_arch()["recurrent"]
    h = np.zeros((BATCH, UNITS), np.float32)
    with tf.GradientTape() as tape:
        w = tf.constant(abar)
        tape.watch(w)
        logits, _, _, _ = searcher.model(x, h, weights=w, index=index, mode="dense",
                                         training=True)
        loss = tf.reduce_mean(rnn_base.token_losses(y, logits))
    grad = tape.gradient(loss, w).numpy()
    a0 = searcher.arch_var.numpy().copy()
    searcher.arch_step(x, y)
    # Keras's first Adam step on g' = g + l2 A: A - lr g' / (|g'| + eps / sqrt(1 - b2)),
    # then the clip to [0, 1].
    g = grad + 1e-3 * a0
    expected = np.clip(a0 - 3e-3 * g / (np.abs(g) + 1e-8 / np.sqrt(1e-3)), 0.0, 1.0)
    np.testing.assert_allclose(searcher.arch_var.numpy(), expected, atol=1e-6)
    assert np.all(searcher.arch_var.numpy() >= 0) and np.all(searcher.arch_var.numpy() <= 1)


def adam_on_l2_alone(a0, steps, lr=3e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, l2=1e-3):
    """Where TorchAdam (Keras's Adam on g + l2 * A, then the clip to [0, 1])
    takes A from `a0` when the loss gradient is zero: the drift of the L2
    term alone, which moves A even when nothing is learned."""
    a, m, v = np.float64(a0), 0.0, 0.0
    for t in range(1, steps + 1):
        g = l2 * a
        m += (g - m) * (1 - beta_1)
        v += (g * g - v) * (1 - beta_2)
        alpha = lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        a = np.clip(a - alpha * m / (np.sqrt(v) + epsilon), 0.0, 1.0)
    return a


def test_short_nasp_search_learns_and_returns_a_valid_genotype(tmp_path, tiny_rnn_searcher,
                                                               tiny_corpus):
    searcher = tiny_rnn_searcher(lr=5.0, grad_clip=0.25)
    train = text.batchify(tiny_corpus.train, BATCH)
    valid = text.batchify(tiny_corpus.valid, BATCH)
    pairs = text.search_pairs(train, valid, 5, 60, 0, 3, 0)
    before = searcher.evaluate(text.eval_chunks(valid, 5), verbose=0, return_dict=True)
    history = searcher.fit(pairs, epochs=3, steps_per_epoch=60, verbose=0, shuffle=False,
                           callbacks=[callbacks_lib.ResetStates()])
    after = searcher.evaluate(text.eval_chunks(valid, 5), verbose=0, return_dict=True)
    arch_loss = history.history["arch_loss"]
    assert np.isfinite(arch_loss).all()
    assert after["ppl"] < 0.9 * before["ppl"]
    # The architecture objective (validation loss at Ā) fell over the run.
    assert arch_loss[-1] < arch_loss[0] - 0.05
    assert int(searcher.arch_optimizer.iterations.numpy()) == 180
    matrix, abar = searcher.arch_numpy()["recurrent"]
    # A learned: many entries are far from where the L2 term alone would have
    # taken them (0.5 -> 0.105 in 180 steps).
    drift = adam_on_l2_alone(0.5, 180)
    assert np.sum(np.abs(matrix - drift) > 0.1) >= 20
    genotype = searcher.genotype()
    path = str(tmp_path / "g.json")
    genotype_lib.write_json(genotype, path)
    assert genotype_lib.load_rnn_genotype(path) == genotype
    expected_abar, _ = proximal.prox_c1(matrix, search_model.rows_per_node(8), keep_edges=1)
    np.testing.assert_array_equal(abar, expected_abar.numpy())


def test_darts_first_order_moves_alpha_through_the_softmax(tiny_rnn_searcher, token_batch):
    searcher = tiny_rnn_searcher("darts")
    assert searcher.arch_var.shape == (36, 5)
    a0 = searcher.arch_var.numpy().copy()
    searcher.train_step((token_batch(3), token_batch(4)))
    moved = np.abs(searcher.arch_var.numpy() - a0)
    assert moved.min() > 0  # every entry, `none` included, gets a gradient
    assert all(act != "none" for act, _ in searcher.genotype().recurrent)
    with pytest.raises(ValueError, match="none"):
        nasp_rnn.NASPRNNSearcher(tiny_rnn_searcher("darts").model, batch_size=4,
                                 search_batch_size=4, eval_batch_size=4)


def test_the_recurrent_nasp_search_starts_from_a_random_cell_of_its_seed(tiny_rnn_searcher):
    starts = []
    for seed in (0, 0, 1):
        searcher = tiny_rnn_searcher("nasp", seed=seed)
        a = searcher.arch_var.numpy()
        # A = 0.5 plus noise of at most 1e-3, and not a constant.
        assert np.all(np.abs(a - 0.5) <= 1e-3) and np.std(a) > 1e-4
        # The cell it starts from is each node's largest entry, by numpy; that
        # entry is unique (float32 noise may repeat a value elsewhere, which
        # decides nothing).
        expected, offset = [], 0
        for node in range(8):
            block = a[offset:offset + node + 1]
            assert np.sum(block == block.max()) == 1
            row, col = np.unravel_index(np.argmax(block), block.shape)
            expected.append([searcher.op_names[col], int(row)])
            offset += node + 1
        assert [list(p) for p in searcher.genotype().recurrent] == expected
        starts.append(expected)
    assert starts[0] == starts[1] and starts[0] != starts[2]
    assert starts[0] != [["tanh", 0]] * 8  # not the tie-broken first cell
