import numpy as np
import pytest
import tensorflow as tf

from nasp_tf.data import images


def test_digits_are_real_offline_images():
    source = images.digits_source()
    assert (source.num_train, source.num_test) == (1500, 297)
    assert source.image_shape == (8, 8, 3) and source.num_classes == 10
    x, y = next(iter(source.train.batch(1500)))
    assert x.dtype == tf.uint8 and int(tf.reduce_max(x)) == 255
    assert sorted(np.unique(y.numpy())) == list(range(10))
    # The three channels repeat the grey image.
    np.testing.assert_array_equal(x[..., 0].numpy(), x[..., 2].numpy())


def test_search_split_halves_the_training_set():
    source = images.synthetic_source(num_train=64, num_test=8)
    data = images.search_data(source, batch_size=8, seed=0)
    assert data.steps_per_epoch == 4
    (xt, yt), (xv, yv) = next(iter(data.pairs))
    assert xt.shape == xv.shape == (8, 32, 32, 3) and xt.dtype == tf.float32
    assert sum(int(b[0].shape[0]) for b in data.validation) == 32


def test_search_split_rejects_tiny_data():
    with pytest.raises(images.DataError, match="lower --batch_size"):
        images.search_data(images.synthetic_source(num_train=20), batch_size=16, seed=0)


def test_augmentation_is_reproducible_for_a_seed():
    source = images.synthetic_source(num_train=16, num_test=4)

    def first(seed):
        return next(iter(images.batched(source.train, source, 16, seed, True, True, 16)))[0]

    np.testing.assert_array_equal(first(3).numpy(), first(3).numpy())
    assert not np.array_equal(first(3).numpy(), first(4).numpy())


def test_cutout_makes_one_clipped_square_hole():
    for seed in range(20):
        mask = images.cutout_mask(32, 32, 16, tf.constant([seed, 1])).numpy()[..., 0]
        rows, cols = np.nonzero(mask == 0)
        assert mask.shape == (32, 32) and len(rows) > 0
        assert rows.max() - rows.min() < 16 and cols.max() - cols.min() < 16
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)


def test_imagenet_preprocessing_shapes():
    source = images.ImageSource("imagenet2012", None, None, 0, 0, (224, 224, 3), 1000,
                                images.IMAGENET_MEAN, images.IMAGENET_STD, 0, True, "imagenet")
    image = tf.constant(np.random.default_rng(0).integers(0, 256, (300, 400, 3)), tf.uint8)
    for augment in (True, False):
        out, label = images.make_preprocess(source, augment)(image, 7, tf.constant([1, 2],
                                                                                  tf.int64))
        assert out.shape == (224, 224, 3) and label == 7
        assert np.isfinite(out.numpy()).all()


def test_unknown_dataset():
    with pytest.raises(ValueError, match="Unknown dataset"):
        images.get_source("mnist")
