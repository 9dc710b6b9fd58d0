"""Image data for search and retraining: CIFAR-10 (tfds), digits, synthetic
(the user's own images are in `nasp_tf.data.user_images`).

Every source yields uint8 images [H, W, 3] and int labels. Augmentation
follows the reference (docs/reference.md §7): random crop from a zero-padded uint8
image, horizontal flip, scaling to [0, 1], normalisation, then an optional
cutout hole. Random ops are stateless and seeded per element by (seed,
position in the stream), so a seeded pipeline is reproducible even with
parallel maps, and a resumed run sees the batches an uninterrupted one
would.
"""

import dataclasses
import os
import socket

import numpy as np
import tensorflow as tf

from nasp_tf.data import DIGITS_FOLDS, DIGITS_PROTOCOL, DIGITS_SEARCH_POOL, passes
from nasp_tf.data.image_source import ImageSource, from_arrays
from nasp_tf.errors import DataError

AUTOTUNE = tf.data.AUTOTUNE
DATASETS = ("cifar10", "digits", "synthetic")  # and the digits protocol's splits, below

CIFAR_MEAN = (0.49139968, 0.48215827, 0.44653124)
CIFAR_STD = (0.24703233, 0.24348505, 0.26158768)
CIFAR_HOST = ("www.cs.toronto.edu", 443)


def _digits_arrays():
    """scikit-learn's digits as uint8 RGB images and labels, in a fixed
    permutation (seed 0, whatever --seed says)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("the digits dataset needs scikit-learn: pip install scikit-learn "
                        "(or pip install -e '.[test]')") from None
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    images = np.repeat(images[..., None], 3, axis=-1)
    order = np.random.RandomState(0).permutation(len(images))
    return images[order], digits.target[order]


def digits_source(split="digits"):
    """scikit-learn's bundled 8x8 handwritten digits: 1,797 real images, offline.

    Grey levels 0..16 are scaled to 0..255 and repeated on 3 channels; no
    flips (digits are not symmetric). A fixed permutation orders the images;
    `split` names what is train and test:
      digits: the first 1,500 train, the other 297 test.
      digits_search: the first 797 (the search pool) train; no test images.
      digits_foldK: the search pool and the other folds train, fold K (500
        images of the last 1,000) tests.
    """
    images, labels = _digits_arrays()
    pool = DIGITS_SEARCH_POOL
    if split == "digits":
        train, test = np.arange(1500), np.arange(1500, len(images))
    elif split == "digits_search":
        train, test = np.arange(pool), np.arange(0)
    elif split in DIGITS_PROTOCOL:
        folds = np.array_split(np.arange(pool, len(images)), DIGITS_FOLDS)
        k = int(split[len("digits_fold"):])
        train = np.concatenate([np.arange(pool)] + [f for i, f in enumerate(folds) if i != k])
        test = folds[k]
    else:
        raise ValueError(f"Unknown digits split. Received: {split!r}; choose digits or one of "
                         f"{DIGITS_PROTOCOL}")
    return from_arrays(split, images[train], labels[train], images[test], labels[test], 10,
                       crop_padding=1, flip=False)


def synthetic_source(num_train=256, num_test=64, image_size=32, num_classes=10, seed=0):
    """Random CIFAR-shaped images and labels, for tests and benchmarks."""
    rng = np.random.RandomState(seed)
    shape = (image_size, image_size, 3)
    x_train = rng.randint(0, 256, (num_train,) + shape).astype(np.uint8)
    x_test = rng.randint(0, 256, (num_test,) + shape).astype(np.uint8)
    return from_arrays("synthetic", x_train, rng.randint(0, num_classes, num_train),
                        x_test, rng.randint(0, num_classes, num_test), num_classes,
                        crop_padding=4, flip=True)


def _reachable(host, timeout=3.0):
    try:
        socket.create_connection(host, timeout=timeout).close()
        return True
    except OSError:
        return False


def tfds_source(name, data_dir, download=True):
    """CIFAR-10 through tensorflow-datasets, failing fast when it cannot be had."""
    import tensorflow_datasets as tfds

    data_dir = os.path.expanduser(data_dir or os.path.join("~", "tensorflow_datasets"))
    builder = tfds.builder(name, data_dir=data_dir)
    prepared = tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json"))
    if not prepared:
        how = (f"{name} is not prepared under {data_dir}. On a machine with internet run "
               f"`python -c \"import tensorflow_datasets as tfds; tfds.builder('{name}', "
               f"data_dir='{data_dir}').download_and_prepare()\"` and copy {data_dir} here, "
               f"or pass --data_dir=DIR where it is prepared (or use --dataset=digits offline)")
        if not download or not _reachable(CIFAR_HOST):
            raise DataError(how)
        try:
            builder.download_and_prepare()
        except Exception as e:  # any download or preparation failure
            raise DataError(f"{how}. The download failed: {type(e).__name__}: {e}") from None
    try:
        train = builder.as_dataset(split="train", as_supervised=True, shuffle_files=False)
        test = builder.as_dataset(split="test", as_supervised=True, shuffle_files=False)
    except Exception as e:
        raise DataError(f"cannot read {name} under {data_dir} ({type(e).__name__}: {e}); "
                        "delete that directory and prepare it again") from None
    info = builder.info
    return ImageSource(name, train, test, info.splits["train"].num_examples,
                       info.splits["test"].num_examples, (32, 32, 3),
                       info.features["label"].num_classes, CIFAR_MEAN, CIFAR_STD, 4, True)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_source(data_dir, manual_dir):
    """ImageNet (ILSVRC2012) through tfds; its archives must be downloaded by hand."""
    import tensorflow_datasets as tfds

    data_dir = os.path.expanduser(data_dir or os.path.join("~", "tensorflow_datasets"))
    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    if not tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json")):
        if not manual_dir:
            raise DataError(f"imagenet2012 is not prepared under {data_dir}: download "
                            "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from "
                            "image-net.org into a directory and pass it as --manual_dir")
        try:
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
        except Exception as e:
            raise DataError(f"cannot prepare imagenet2012 from {manual_dir} "
                            f"({type(e).__name__}: {e}); check the tar files there") from None
    train = builder.as_dataset(split="train", as_supervised=True)
    test = builder.as_dataset(split="validation", as_supervised=True)
    info = builder.info
    return ImageSource("imagenet2012", train, test, info.splits["train"].num_examples,
                       info.splits["validation"].num_examples, (224, 224, 3), 1000,
                       IMAGENET_MEAN, IMAGENET_STD, 0, True, "imagenet")


def get_source(name, data_dir=None, download=True, synthetic_size=256, manual_dir=None,
               image_size=None):
    """The `ImageSource` of a --dataset value: a built-in name, or the user's own
    images as tfds:NAME, folder:DIR or npz:FILE (`nasp_tf.data.user_images`),
    resized to `image_size` (H, W) if given."""
    if ":" in name:
        from nasp_tf.data import user_images  # imported here: it builds on this module

        return user_images.get_source(name, data_dir, image_size)
    if image_size is not None:
        raise ValueError(f"image_size resizes the user's own images (tfds:, folder:, npz:). "
                         f"Received: image_size={image_size} with {name!r}")
    if name == "imagenet2012":
        return imagenet_source(data_dir, manual_dir)
    if name == "cifar10":
        return tfds_source("cifar10", data_dir, download)
    if name == "digits" or name in DIGITS_PROTOCOL:
        return digits_source(name)
    if name == "synthetic":
        return synthetic_source(num_train=synthetic_size)
    raise ValueError(f"Unknown dataset. Received: {name!r}; choose one of "
                     f"{DATASETS + DIGITS_PROTOCOL}")


def cutout_mask(height, width, length, seed):
    """A [H, W, 1] mask with one length x length hole of zeros (clipped at the borders)."""
    centre = tf.random.stateless_uniform([2], seed, 0, 2 ** 30, dtype=tf.int32)
    y, x = centre[0] % height, centre[1] % width
    rows, cols = tf.range(height)[:, None], tf.range(width)[None, :]
    half = length // 2
    inside = ((rows >= y - half) & (rows < y + half)) & ((cols >= x - half) & (cols < x + half))
    return tf.cast(~inside, tf.float32)[..., None]


def _imagenet_train(image, seeds):
    # RandomResizedCrop(224): area 8-100 %, aspect 3/4-4/3; flip; colour jitter.
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), tf.zeros([1, 0, 4]), seeds[0], area_range=(0.08, 1.0),
        aspect_ratio_range=(3 / 4, 4 / 3), max_attempts=10, use_image_if_no_bounding_boxes=True)
    image = tf.image.resize(tf.slice(image, begin, size), [224, 224]) / 255.0
    image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    jitter = tf.random.experimental.stateless_split(seeds[2], 4)
    image = tf.image.stateless_random_brightness(image, 0.4, jitter[0])
    image = tf.image.stateless_random_contrast(image, 0.6, 1.4, jitter[1])
    image = tf.image.stateless_random_saturation(image, 0.6, 1.4, jitter[2])
    image = tf.image.stateless_random_hue(image, 0.2, jitter[3])
    return tf.clip_by_value(image, 0.0, 1.0)


def _imagenet_test(image):
    # Resize the shorter side to 256, centre-crop 224.
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = 256.0 / tf.reduce_min(shape)
    image = tf.image.resize(image, tf.cast(tf.round(shape * scale), tf.int32))
    return tf.image.resize_with_crop_or_pad(image, 224, 224) / 255.0


def make_preprocess(source, augment, cutout=0):
    """A map fn (example, label, seed[2]) -> (normalised float image, label);
    an example is an image, or what `source.decode` reads one from."""
    height, width, _ = source.image_shape
    decode = source.decode or (lambda image, label: (image, label))
    if source.augmentation == "imagenet":
        mean = tf.constant(source.mean, tf.float32)
        std = tf.constant(source.std, tf.float32)

        def preprocess_imagenet(image, label, seed):
            image, label = decode(image, label)
            seeds = tf.random.experimental.stateless_split(seed, 3)
            image = _imagenet_train(image, seeds) if augment else _imagenet_test(image)
            return (image - mean) / std, label

        return preprocess_imagenet
    mean = tf.constant(source.mean, tf.float32)
    std = tf.constant(source.std, tf.float32)
    pad = source.crop_padding

    def preprocess(image, label, seed):
        image, label = decode(image, label)
        seeds = tf.random.experimental.stateless_split(seed, 3)
        if augment and pad:
            padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
            image = tf.image.stateless_random_crop(padded, [height, width, 3], seeds[0])
        if augment and source.flip:
            image = tf.image.stateless_random_flip_left_right(image, seeds[1])
        image = (tf.cast(image, tf.float32) / 255.0 - mean) / std
        if augment and cutout:
            image = image * cutout_mask(height, width, cutout, seeds[2])
        return image, label

    return preprocess


def _epochs_of(dataset, num_examples, seed, shuffle, start):
    """`dataset` repeated without end (a fresh permutation every pass when
    `shuffle`), each element paired with the stateless seed (seed, its
    position in the stream), from position `start` on.

    The permutations are a fixed sequence for a seed (`passes`), and every
    augmentation depends on its position only: a run resumed at step k
    reads exactly the batches an uninterrupted run reads from step k.
    """
    if shuffle:
        dataset = passes.permuted_passes(dataset, num_examples, seed, start)
    else:
        dataset = dataset.repeat().skip(start)
    stream = tf.data.Dataset.zip((dataset, tf.data.Dataset.range(start, 2 ** 62)))
    return stream.map(lambda example, position: (example, tf.stack(
        [tf.constant(seed, tf.int64), position])))


def batched(dataset, source, batch_size, seed, augment, shuffle, cutout=0,
            drop_remainder=True, repeat=False, num_examples=None, start=0):
    """Shuffles, augments and batches a (uint8 image, label) dataset.

    Repeated (`repeat`), the stream is a sequence of whole passes, each a
    fresh permutation of the `num_examples` examples (as the reference's
    samplers), and `start` examples into it a resumed run picks up exactly
    where an uninterrupted one would be. Unrepeated, one pass (shuffled with
    `seed` if `shuffle`).
    """
    preprocess = make_preprocess(source, augment, cutout)
    if repeat:
        if not num_examples:
            raise ValueError(f"a repeated stream needs num_examples. Received: {num_examples}")
        stream = _epochs_of(dataset, num_examples, seed, shuffle, start)
    else:
        if shuffle:
            dataset = dataset.shuffle(num_examples or 10 * batch_size + 1000, seed=seed)
        stream = tf.data.Dataset.zip((dataset, tf.data.Dataset.random(seed=seed).batch(2)))
    dataset = stream.map(lambda example, s: preprocess(example[0], example[1], s),
                         num_parallel_calls=AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size, drop_remainder=drop_remainder)


@dataclasses.dataclass
class SearchData:
    """The search's input: (train batch, validation batch) pairs and a validation set.

    Args:
      pairs: repeated dataset of ((x_train, y_train), (x_val, y_val)).
      validation: the architecture half, unaugmented, for epoch-end validation.
      steps_per_epoch: one pass over the weight half.
      source: the `ImageSource`.
    """
    pairs: tf.data.Dataset
    validation: tf.data.Dataset
    steps_per_epoch: int
    source: ImageSource


def search_data(source, batch_size, seed, train_portion=0.5, cutout=0, max_examples=0,
                start_step=0):
    """Splits the training set into a weight half and an architecture half.

    The first `train_portion` of the training set trains the weights, the rest
    the architecture (docs/reference.md §3.6); both halves are augmented and batched
    with `batch_size`. An epoch is one pass over the weight half (without its
    last partial batch, so every step has the same static shape).

    Args:
      source: an `ImageSource`.
      batch_size: global batch of each half.
      seed: shuffling and augmentation seed.
      train_portion: fraction of the training set that trains the weights.
      cutout: cutout length (0: off).
      max_examples: use only the first N training examples (0: all).
      start_step: the step to start at (a resumed run's epoch x steps).
    """
    total = source.num_train if not max_examples else min(max_examples, source.num_train)
    num_weight = int(total * train_portion)
    if num_weight < batch_size or total - num_weight < batch_size:
        raise DataError(f"{source.name}: {total} training examples split {train_portion} "
                        f"give fewer than one batch of {batch_size} per half; lower "
                        "--batch_size")
    data = source.train.take(total)
    weight_half = data.take(num_weight).cache()
    arch_half = data.skip(num_weight).cache()
    # Each half is permuted as a whole every epoch, as the reference's
    # SubsetRandomSampler does (a CIFAR-10 half is 77 MB of uint8).
    train = batched(weight_half, source, batch_size, seed, True, True, cutout, repeat=True,
                    num_examples=num_weight, start=start_step * batch_size)
    val = batched(arch_half, source, batch_size, seed + 1, True, True, cutout, repeat=True,
                  num_examples=total - num_weight, start=start_step * batch_size)
    pairs = tf.data.Dataset.zip((train, val)).prefetch(AUTOTUNE)
    validation = batched(arch_half, source, batch_size, seed + 2, False, False,
                         drop_remainder=True).prefetch(AUTOTUNE)
    return SearchData(pairs, validation, num_weight // batch_size, source)
