"""Mixed precision (nasp_tf.precision): 16-bit activations with A, the logits
and batch norm in float32; the architecture gradient under bfloat16 against
float32's; float16's dynamic loss scaling against what it must recover and
its rules (skip and halve on overflow, double after a run of finite steps)."""

import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from small_spaces import SMALL3

from nasp_tf import optimizers, precision
from nasp_tf.cnn import search_model
from nasp_tf.search import nasp

KINDS = ("normal", "reduce")
SPACE = SMALL3  # one node per cell below


@contextlib.contextmanager
def policy(name):
    """Keras's global policy set to `name` while models are built, float32 after."""
    precision.set_policy(name)
    try:
        yield
    finally:
        precision.set_policy("float32")


def searcher_under(name, weights_from=None):
    with policy(name):
        keras.utils.set_random_seed(0)
        net = search_model.SearchNetwork(SPACE, 5, 4, 3, 1, (8, 8, 3), name="supernet")
        searcher = nasp.NASPSearcher(net, keep_edges=1, name="searcher")
        searcher.compile(optimizers.TorchSGD(0.05, 0.9, 3e-4), optimizers.TorchAdam(3e-4))
    if weights_from is not None:
        net.set_weights(weights_from.supernet.get_weights())
    return searcher


def arch_gradient(searcher, images, labels):
    """NASP's gradient of the validation loss with respect to Ā (the "arch" mode)."""
    arch = searcher.discrete_arch()
    abars = [arch[k][0] for k in KINDS]
    with tf.GradientTape() as tape:
        tape.watch(abars)
        logits = searcher.supernet(images, {k: (a, arch[k][1]) for k, a in zip(KINDS, abars)},
                                   mode="arch", training=True)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(labels, tf.int32), logits=logits))
    return [g.numpy() for g in tape.gradient(loss, abars)], logits


@pytest.mark.parametrize("name,compute", [("mixed_bfloat16", tf.bfloat16),
                                          ("mixed_float16", tf.float16)])
def test_activations_run_in_16_bits_while_a_logits_and_batch_norm_stay_float32(
        name, compute, image_batch):
    searcher = searcher_under(name)
    images, labels = image_batch(0)
    edge = searcher.supernet.cells[0].edges[0]
    arch = searcher.discrete_arch()
    out = edge(tf.zeros([2, 8, 8, 4]), arch["normal"][0][0], arch["normal"][1][0])
    assert out.dtype == compute
    for kind in KINDS:
        assert searcher.arch_vars[kind].dtype == "float32"
        assert arch[kind][0].dtype == tf.float32
    statistics = searcher.supernet.non_trainable_weights
    assert statistics and all(s.dtype == "float32" for s in statistics)
    before = [s.numpy().copy() for s in statistics]
    searcher.train_step(((images, labels), (images, labels)))
    # The step updated the float32 statistics (finite) and A.
    assert any(not np.array_equal(b, s.numpy()) for b, s in zip(before, statistics))
    assert all(np.isfinite(s.numpy()).all() for s in statistics)
    assert searcher(images).dtype == tf.float32
    assert (searcher.loss_scale is not None) == (name == "mixed_float16")


@pytest.mark.parametrize("name", ["mixed_bfloat16", "mixed_float16"])
def test_16_bit_arch_gradient_is_close_to_float32s(name):
    single = searcher_under("float32")
    half = searcher_under(name, weights_from=single)
    for seed in (3, 4, 5):
        rng = np.random.default_rng(seed)
        images = tf.constant(rng.normal(size=(32, 8, 8, 3)).astype(np.float32))
        labels = tf.constant(rng.integers(0, 5, 32))
        expected, logits32 = arch_gradient(single, images, labels)
        found, logits16 = arch_gradient(half, images, labels)
        assert logits16.dtype == tf.float32
        np.testing.assert_allclose(logits16, logits32, atol=0.03 * np.abs(logits32).max())
        # Both cells' gradient as one vector. The exact gradient of a network
        # with max pools and ReLUs moves where 16-bit rounding flips a maximum
        # or a sign: measured over these batches, bfloat16 (8-bit mantissa)
        # is within 8-13 % of float32's norm with cosine >= 0.991, float16
        # within 0.3-3 %.
        g32 = np.concatenate([g.ravel() for g in expected])
        g16 = np.concatenate([g.ravel() for g in found])
        assert np.linalg.norm(g32) > 1e-3
        assert np.linalg.norm(g16 - g32) < 0.2 * np.linalg.norm(g32)
        assert (g16 * g32).sum() / (np.linalg.norm(g16) * np.linalg.norm(g32)) > 0.98


class ScaledDense(precision.LossScaling, keras.Model):
    """A dense layer with LossScaling mixed in, as the searchers and trainers have it."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3, use_bias=False, kernel_initializer="ones")

    def call(self, x):
        return self.dense(x)


def test_float16_loss_scaling_recovers_gradients_that_underflow_without_it():
    with policy("mixed_float16"):
        model = ScaledDense()
        model(tf.zeros([1, 4]))
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    tiny = 1e-8  # d loss / d output: below float16's smallest subnormal (6e-8)
    with tf.GradientTape(persistent=True) as tape:
        loss = tiny * tf.reduce_sum(tf.cast(model(x), tf.float32))
    plain = tape.gradient(loss, model.dense.kernel)
    scaled = model.gradients(tape, loss, [model.dense.kernel])[0]
    expected = tiny * np.repeat(x.sum(axis=0)[:, None], 3, axis=1)  # d/dK sum(xK) = x^T 1
    assert not np.any(plain.numpy())  # lost without scaling
    np.testing.assert_allclose(scaled.numpy(), expected, rtol=2e-3)


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "tf.function"])
def test_float16_steps_skip_on_overflow_and_the_scale_follows_the_rules(traced):
    with policy("mixed_float16"):
        model = ScaledDense()
        model(tf.zeros([1, 4]))
    model.growth_interval = 2
    kernel = model.dense.kernel
    sgd = optimizers.TorchSGD(0.5, 0.0, 0.0)
    sgd.build([kernel])
    step = lambda g: model.apply_if_finite(sgd, [g], [kernel])  # noqa: E731
    if traced:
        step = tf.function(step)
    grad = np.full((4, 3), 0.25, np.float32)
    start = float(model.loss_scale.numpy())
    expected_kernel = kernel.numpy().copy()
    # overflow: skip and halve; the second finite step in a row doubles.
    steps = [(True, start / 2), (False, start / 2), (False, start), (True, start / 2),
             (False, start / 2)]
    for overflow, expected_scale in steps:
        g = grad.copy()
        if overflow:
            g[1, 2] = np.inf
        else:
            expected_kernel -= 0.5 * grad
        step(tf.constant(g))
        np.testing.assert_array_equal(kernel.numpy(), expected_kernel)
        assert float(model.loss_scale.numpy()) == expected_scale
    assert int(sgd.iterations.numpy()) == 3  # the skipped steps are not steps


@pytest.mark.parametrize("kind", ["nasp", "darts"])
def test_recurrent_search_and_retraining_steps_under_float16(kind, tiny_rnn_searcher,
                                                             token_batch):
    from nasp_tf import genotype as genotype_lib
    from nasp_tf.rnn import model as model_lib
    from nasp_tf.rnn import trainer as trainer_lib

    with policy("mixed_float16"):
        searcher = tiny_rnn_searcher(kind, lr=2.0, dropouts=0.1)
        lm = model_lib.language_model(genotype_lib.RNN_PUBLISHED["DARTS_V2"], 30, 8,
                                      dropout=0.1, dropouth=0.1, dropoutx=0.1, seed=1)
        trainer = trainer_lib.LMTrainer(lm, 4, 4, bptt=5)
        trainer.compile(optimizers.TorchSGD(2.0, 0.0, 0.0))
    chunk = token_batch(0)
    cell = searcher.model.cell
    arch = searcher.discrete_arch()["recurrent"]
    raw, _ = cell(tf.zeros([4, 5, 8]), tf.zeros([4, 8]), weights=arch[0], index=arch[1])
    assert raw.dtype == tf.float16
    a_before = searcher.arch_var.numpy().copy()
    weights_before = [w.numpy().copy() for w in searcher.model.trainable_weights]
    logs = searcher.train_step((chunk, token_batch(1)))
    assert np.isfinite(float(logs["loss"]))
    assert searcher.arch_var.dtype == "float32" and searcher.train_hidden.dtype == tf.float32
    assert not np.array_equal(a_before, searcher.arch_var.numpy())
    assert any(not np.array_equal(b, w.numpy())
               for b, w in zip(weights_before, searcher.model.trainable_weights))
    assert float(searcher.loss_scale.numpy()) == precision.LossScaling.initial_scale

    before = [w.numpy().copy() for w in lm.trainable_weights]
    logs = trainer.train_step(chunk)
    assert np.isfinite(float(logs["loss"]))
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, lm.trainable_weights))


def test_float16_loss_scale_counts_search_steps_not_optimizer_applications(image_batch):
    # A search step applies two optimizers. With growth_interval = 2, S doubles
    # after two finite search steps (four applications: it would double twice),
    # and a step that overflows halves S once (it would halve twice), with
    # both of its updates skipped.
    searcher = searcher_under("mixed_float16")
    searcher.growth_interval = 2
    # Far from float16's largest value (65504), where a doubled S would overflow by itself.
    searcher.loss_scale.assign(1024.0)
    step = tf.function(searcher.train_step)
    start = float(searcher.loss_scale.numpy())
    finite = (image_batch(0, size=8), image_batch(1, size=8))
    images, labels = finite[0]
    broken = (images * np.float32(np.nan), labels)
    # The broken step's validation batch overflows the architecture gradient:
    # its weight update is skipped too, though its own gradient is finite.
    expected = [(finite, start), (finite, 2 * start), (finite, 2 * start),
                ((finite[0], broken), start)]
    for data, scale in expected:
        a_before = {k: v.numpy().copy() for k, v in searcher.arch_vars.items()}
        w_before = [w.numpy().copy() for w in searcher.supernet.trainable_weights]
        step(data)
        assert float(searcher.loss_scale.numpy()) == scale
        moved = any(not np.array_equal(w, v.numpy())
                    for w, v in zip(w_before, searcher.supernet.trainable_weights))
        assert moved == (data is finite)
    assert int(searcher.arch_optimizer.iterations.numpy()) == 3
    assert int(searcher.weight_optimizer.iterations.numpy()) == 3
    np.testing.assert_array_equal(a_before["normal"], searcher.arch_vars["normal"].numpy())
