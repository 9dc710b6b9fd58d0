import numpy as np
import pytest
import tensorflow as tf

from nasp_tf import optimizers


def test_epoch_cosine_schedule_matches_the_reference():
    # The search's schedule: the reference steps its scheduler before each epoch.
    schedule = optimizers.EpochCosineDecay(0.025, 0.001, 50, 391, offset=1)
    assert float(schedule(0)) == pytest.approx(0.024976, abs=1e-6)
    assert float(schedule(24 * 391 + 5)) == pytest.approx(0.013, abs=1e-6)
    assert float(schedule(49 * 391)) == pytest.approx(0.001, abs=1e-6)


def test_epoch_cosine_schedule_starts_at_the_initial_rate():
    # Retraining's schedule: epoch e of E runs at min + (max - min)(1 + cos(pi e / E)) / 2,
    # on every step of the epoch, so a one-epoch run trains at the initial rate.
    one = optimizers.EpochCosineDecay(0.025, 0.0, epochs=1, steps_per_epoch=10)
    assert one.lr_at_epoch(0) == pytest.approx(0.025)
    assert [float(one(step)) for step in (0, 9)] == pytest.approx([0.025, 0.025])
    four = optimizers.EpochCosineDecay(0.1, 0.01, epochs=4, steps_per_epoch=3)
    for epoch in range(4):
        expected = 0.01 + 0.09 * (1 + np.cos(np.pi * epoch / 4)) / 2
        assert four.lr_at_epoch(epoch) == pytest.approx(expected)
        for step in range(3):
            assert float(four(epoch * 3 + step)) == pytest.approx(expected, rel=1e-6)


def test_torch_sgd_matches_pytorch_update_rule():
    var = tf.Variable([1.0, -2.0])
    opt = optimizers.TorchSGD(0.1, momentum=0.9, l2=0.01)
    opt.build([var])
    buf = np.zeros(2)
    w = np.array([1.0, -2.0])
    for g in ([0.5, 0.5], [-1.0, 2.0]):
        opt.apply([tf.constant(g)], [var])
        grad = np.array(g) + 0.01 * w
        buf = 0.9 * buf + grad
        w = w - 0.1 * buf
    np.testing.assert_allclose(var.numpy(), w, rtol=1e-6)


def test_torch_sgd_keeps_pytorch_momentum_when_the_rate_changes():
    # Keras folds the learning rate into its velocity; PyTorch does not. They
    # differ exactly when the rate changes, as it does every epoch.
    import keras

    var = keras.Variable(np.array([[1.0, -2.0], [0.5, 3.0]], np.float32))
    schedule = optimizers.EpochCosineDecay(0.2, 0.01, epochs=4, steps_per_epoch=1)
    opt = optimizers.TorchSGD(schedule, momentum=0.9, l2=0.05)
    opt.build([var])
    buf, w = np.zeros((2, 2)), var.numpy().astype(np.float64)
    rng = np.random.default_rng(0)
    step = tf.function(lambda g: opt.apply([g], [var]))
    for epoch in range(4):
        g = rng.normal(size=(2, 2)).astype(np.float32)
        step(tf.constant(g))
        buf = 0.9 * buf + g + 0.05 * w
        w = w - schedule.lr_at_epoch(epoch) * buf
    np.testing.assert_allclose(var.numpy(), w, rtol=1e-5)
    assert int(opt.iterations.numpy()) == 4


@pytest.mark.parametrize("clip_norm", [0.5, 100.0])
def test_clip_by_global_norm_is_tfs_and_the_formula(clip_norm):
    # Our lean clip (no per-tensor identity ops) must give TF's numbers bit
    # for bit, clipped (0.5) or not (100), and numpy's formula.
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=s).astype(np.float32) for s in ((3, 3, 4, 1), (4,), (2, 5))]
    ours = [g.numpy() for g in optimizers.clip_by_global_norm(
        [tf.constant(g) for g in grads], clip_norm)]
    theirs = [g.numpy() for g in tf.clip_by_global_norm(grads, clip_norm)[0]]
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
    norm = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
    for a, g in zip(ours, grads):
        np.testing.assert_allclose(a, g * min(1.0, clip_norm / norm), rtol=1e-6)
    # A non-finite norm makes every clipped gradient NaN, as TF's.
    bad = optimizers.clip_by_global_norm([tf.constant([np.inf, 1.0]), tf.constant([2.0])], 1.0)
    assert all(np.isnan(g.numpy()).all() for g in bad)
