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


def _positions(dataset):
    """The positions encoded in the first two pixels of `with_positions` images."""
    return {int(x[0, 0, 0]) + 256 * int(x[0, 1, 0]) for x, _ in dataset.as_numpy_iterator()}


def test_digits_protocol_search_pool_and_folds_are_disjoint_and_cover_the_digits(monkeypatch):
    real = images._digits_arrays

    def with_positions():  # each image carries its position in the fixed order
        x, y = (a.copy() for a in real())
        n = np.arange(len(x))
        x[:, 0, 0, :], x[:, 0, 1, :] = (n % 256)[:, None], (n // 256)[:, None]
        return x, y

    monkeypatch.setattr(images, "_digits_arrays", with_positions)
    search = images.digits_source("digits_search")
    assert (search.num_train, search.num_test) == (797, 0)
    pool = _positions(search.train)
    assert pool == set(range(797))
    tests = []
    for k in range(2):
        fold = images.digits_source(f"digits_fold{k}")
        assert (fold.num_train, fold.num_test) == (1297, 500)
        tests.append(_positions(fold.test))
        assert not tests[k] & pool and not tests[k] & _positions(fold.train)
        assert _positions(fold.train) >= pool
    assert not tests[0] & tests[1] and tests[0] | tests[1] == set(range(797, 1797))
    # `digits` itself is unchanged: 1,500 train, 297 test.
    plain = images.digits_source()
    assert _positions(plain.test) == set(range(1500, 1797))


def test_a_second_iterator_reads_the_stream_a_first_one_reads():
    """Keras reads one batch of the training stream to build a model under a
    distribution strategy and then iterates it afresh: the fresh iterator
    must read what a lone iterator of a new stream reads, or two identical
    runs (and a resumed run) train on different batches."""
    from nasp_tf.data import passes

    def stream():
        return passes.permuted_passes(tf.data.Dataset.range(10).cache(), 10, seed=3)

    alone = [int(x) for x in stream().take(30)]
    used = stream()
    probe = iter(used)
    [next(probe) for _ in range(25)]
    del probe
    assert [int(x) for x in used.take(30)] == alone


def test_each_pass_is_a_new_permutation_and_start_skips_into_the_stream():
    from nasp_tf.data import passes

    data = tf.data.Dataset.range(10).cache()
    stream = [int(x) for x in passes.permuted_passes(data, 10, seed=5).take(40)]
    runs = [stream[i:i + 10] for i in range(0, 40, 10)]
    for run in runs:
        assert sorted(run) == list(range(10))
    assert len({tuple(run) for run in runs}) == 4
    for start in (0, 7, 10, 23):
        assert [int(x) for x in passes.permuted_passes(data, 10, 5, start).take(40 - start)] \
            == stream[start:]
    other = [int(x) for x in passes.permuted_passes(data, 10, seed=6).take(10)]
    assert other != stream[:10]


def test_the_search_stream_is_the_same_for_every_iterator():
    """The search pipeline itself: the first batches a new iterator reads
    after another iterator has read its pairs are a lone iterator's."""
    source = images.synthetic_source(num_train=64, num_test=8, image_size=8)

    def first_labels(data):
        return [(t[1].numpy().tolist(), v[1].numpy().tolist()) for t, v in data.take(6)]

    alone = first_labels(images.search_data(source, 8, seed=1).pairs)
    used = images.search_data(source, 8, seed=1).pairs
    probe = iter(used)
    [next(probe) for _ in range(5)]
    del probe
    assert first_labels(used) == alone


def test_a_dataset_smaller_than_said_is_an_error_not_an_endless_empty_stream():
    from nasp_tf.data import passes

    with pytest.raises(tf.errors.InvalidArgumentError, match="num_examples"):
        next(iter(passes.permuted_passes(tf.data.Dataset.range(5), 10, seed=0)))
    pairs = passes.permuted_passes(tf.data.Dataset.from_tensor_slices(
        {"x": np.arange(6), "y": np.arange(6) * 10}), 6, seed=0)
    for element in pairs.take(12):
        assert int(element["y"]) == 10 * int(element["x"])
