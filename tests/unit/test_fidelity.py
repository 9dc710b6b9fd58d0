"""Fidelity to the reference where a read of the code found small deviations:
one batch-norm update per architecture step, genotypes of --prox_value=keep
from the selection, and a whole-half shuffle of the search data."""

import numpy as np
import tensorflow as tf

from nasp_tf import optimizers
from nasp_tf.cnn import search_model
from nasp_tf.data import image_source, images
from nasp_tf.rnn import search_model as rnn_search_model
from nasp_tf.search import nasp, nasp_rnn


def tiny_searcher(**kwargs):
    net = search_model.SearchNetwork("darts7", 5, 4, 3, 2, (8, 8, 3), name="supernet")
    searcher = nasp.NASPSearcher(net, name="nasp", **kwargs)
    searcher.compile(optimizers.TorchSGD(0.05, 0.9, 3e-4), optimizers.TorchAdam(3e-3))
    return searcher


def test_arch_step_updates_each_batch_norm_once():
    # PyTorch's running mean after one update from 0 is 0.1 * the batch mean.
    # The architecture step runs every op once for the gradient of A and the
    # selected op again for dL/dx: that second run must not update it again.
    searcher = tiny_searcher()
    images_ = tf.constant(np.random.default_rng(0).normal(size=(4, 8, 8, 3)), tf.float32)
    arch = searcher.discrete_arch()
    edge = searcher.supernet.cells[0].edges[0]
    selected = edge.candidates[int(arch["normal"][1][0])]
    bn_means = [w for w in selected.weights if "moving_mean" in w.path]
    assert bn_means
    searcher.supernet(images_, arch, mode="arch", training=True)
    after_arch = [m.numpy().copy() for m in bn_means]
    for m in bn_means:
        m.assign(tf.zeros_like(m))
    searcher.supernet(images_, arch, mode="discrete", training=True)  # runs each op once
    for once, arch_value in zip(bn_means, after_arch):
        assert np.abs(once.numpy()).max() > 0
        np.testing.assert_allclose(arch_value, once.numpy(), rtol=1e-5, atol=1e-7)


def test_keep_value_genotype_keeps_a_kept_row_clipped_to_zero():
    searcher = tiny_searcher(keep_value=True)
    a = np.zeros((5, 7), np.float32)  # node 0 has rows 0-1: both kept, both all zero
    a[2:, :] = np.random.default_rng(1).uniform(0.1, 0.9, (3, 7))
    searcher.arch_vars["normal"].assign(a)
    abar, index = searcher.discrete_arch()["normal"]
    assert np.all(index.numpy()[:2] == 0) and np.all(abar.numpy()[:2] == 0)
    genotype = searcher.genotype()
    assert len(genotype.normal) == 4  # two edges per node, node 0's included
    assert genotype.normal[:2] == (("max_pool_3x3", 0), ("max_pool_3x3", 1))


def test_keep_value_recurrent_genotype_keeps_a_row_clipped_to_zero():
    lm = rnn_search_model.search_language_model(10, 4, seed=0)
    searcher = nasp_rnn.NASPRNNSearcher(lm, batch_size=2, search_batch_size=2,
                                        eval_batch_size=2, keep_value=True)
    a = np.random.default_rng(2).uniform(0.1, 0.9, (36, 4)).astype(np.float32)
    a[0] = 0.0  # node 1's only row, clipped to zero
    searcher.arch_var.assign(a)
    genotype = searcher.genotype()
    assert genotype.recurrent[0] == ("tanh", 0)
    assert len(genotype.recurrent) == 8


def test_search_halves_are_permuted_as_a_whole():
    n, batch = 4000, 8
    x = np.zeros((n, 4, 4, 3), np.uint8)
    labels = np.arange(n)
    source = image_source.from_arrays("ordered", x, labels, x[:8], labels[:8], n, 0, False)
    data = images.search_data(source, batch, seed=0)
    seen = []
    for (train, val), _ in zip(data.pairs, range(data.steps_per_epoch)):
        seen.append(train[1].numpy())
    seen = np.concatenate(seen)
    np.testing.assert_array_equal(np.sort(seen), np.arange(n // 2))  # one pass, each once
    # A whole-half permutation reaches the far end of the half from the first
    # batches (a 1,080-example shuffle buffer would not reach past ~1,100).
    assert seen[:4 * batch].max() > 1500
