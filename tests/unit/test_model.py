import json

import numpy as np
import pytest
import tensorflow as tf

from nasp_tf import genotype as g
from nasp_tf.cnn import model


# REFERENCE.md §5.6, auxiliary head excluded.
@pytest.mark.parametrize("name,cifar,imagenet", [
    ("NASP", 7363486, 9542944), ("DARTS_V2", 3349342, 4718752), ("DARTS_V1", 3169414, 4510432)])
def test_parameter_counts_match_the_papers(name, cifar, imagenet):
    assert model.network_cifar(g.PUBLISHED[name]).count_params_without_auxiliary() == cifar
    assert model.network_imagenet(g.PUBLISHED[name]).count_params_without_auxiliary() == imagenet


def test_auxiliary_head_size_and_place():
    net = model.network_cifar(g.PUBLISHED["DARTS_V2"])
    aux = sum(int(np.prod(w.shape)) for w in net.aux_head.trainable_weights)
    assert aux == 476426
    assert net.aux_cell == 13 and net.cells[13].reduction


def small(stem="cifar", auxiliary=True, shape=(32, 32, 3)):
    build = model.network_cifar if stem == "cifar" else model.network_imagenet
    return build(g.PUBLISHED["NASP"], num_classes=7, channels=8, layers=5, auxiliary=auxiliary,
                 image_shape=shape)


@pytest.mark.parametrize("stem,shape", [("cifar", (32, 32, 3)), ("imagenet", (224, 224, 3))])
def test_shapes_and_auxiliary_only_in_training(stem, shape):
    net = small(stem, shape=shape)
    images = tf.random.normal((2,) + shape)
    logits, aux = net.forward(images, training=True)
    assert logits.shape == (2, 7) and aux.shape == (2, 7)
    logits, aux = net.forward(images, training=False)
    assert logits.shape == (2, 7) and aux is None
    assert net(images).shape == (2, 7)


def test_drop_path_only_in_training():
    net = small(auxiliary=False)
    net.drop_path_probability.assign(0.5)
    images = tf.random.normal((4, 32, 32, 3), seed=0)
    first, second = net(images, training=False), net(images, training=False)
    np.testing.assert_array_equal(first.numpy(), second.numpy())
    # In training, fresh masks make two passes differ (BN statistics are the
    # same batch's both times).
    a, b = (net.forward(images, training=True)[0] for _ in range(2))
    assert not np.allclose(a.numpy(), b.numpy())
    net.drop_path_probability.assign(0.0)
    a, b = (net.forward(images, training=True)[0] for _ in range(2))
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_drop_path_masks_whole_samples_and_rescales():
    prob = tf.Variable(0.25)
    layer = model.DropPath(prob)
    x = tf.ones((2000, 2, 2, 3))
    y = layer(x, training=True).numpy()
    per_sample = y.reshape(2000, -1)
    assert np.all(np.isclose(per_sample, 0.0) | np.isclose(per_sample, 1 / 0.75))
    assert np.all(per_sample.min(axis=1) == per_sample.max(axis=1))  # whole samples
    assert abs((per_sample[:, 0] == 0).mean() - 0.25) < 0.05


def test_identity_is_never_dropped():
    net = small()
    kinds = []
    for cell in net.cells:
        for op, drop in zip(cell.cell_ops, cell.drops):
            assert (drop is None) == (op.spec == ("identity",))
            kinds.append(op.spec == ("identity",))
    assert any(kinds) and not all(kinds)  # both kinds of op occur


@pytest.mark.parametrize("stem,shape", [("cifar", (32, 32, 3)), ("imagenet", (224, 224, 3))])
def test_config_round_trip(stem, shape):
    net = small(stem, shape=shape)
    images = tf.random.normal((2,) + shape, seed=4)
    net.forward(images, training=True)  # batch-norm statistics away from (0, 1)
    config = json.loads(json.dumps(net.get_config()))  # what a .keras file stores
    clone = model.FinalNetwork.from_config(config)
    assert clone.get_config() == config
    assert clone.count_params_without_auxiliary() == net.count_params_without_auxiliary()
    assert clone.count_params() == net.count_params()
    assert clone.genotype == net.genotype
    want = net(images, training=False).numpy()
    assert not np.allclose(clone(images, training=False).numpy(), want)  # its own weights
    clone.set_weights(net.get_weights())
    np.testing.assert_allclose(clone(images, training=False).numpy(), want, rtol=1e-6,
                               atol=1e-7)
