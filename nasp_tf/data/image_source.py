"""`ImageSource`: an image classification dataset and how to augment it, the
one type every image loader returns (the built-in ones in
`nasp_tf.data.images`, the user's own in `nasp_tf.data.user_images`)."""

import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass
class ImageSource:
    """An image classification dataset and how to augment it.

    Args:
      name: dataset name.
      train: tf.data.Dataset of (uint8 [H, W, 3], int64 label), the training set.
      test: the same for the test set.
      num_train: examples in `train`.
      num_test: examples in `test`.
      image_shape: (H, W, 3).
      num_classes: label count.
      mean, std: per-channel normalisation of [0, 1] images.
      crop_padding: zero padding of the random crop (0 disables the crop).
      flip: random horizontal flips.
      augmentation: "pad_crop" (CIFAR-style) or "imagenet" (random resized crop
        to 224, flip, colour jitter; tests resize to 256 and centre-crop 224).
      class_names: the names of the classes in label order, where the data
        has them (the user's own data, `nasp_tf.data.user_images`), else None.
      decode: None, or a map fn (example, label) -> (uint8 image, label):
        then `train` and `test` hold examples that are not images yet (a
        folder's file paths), read as batches are made (`images`).
    """
    name: str
    train: tf.data.Dataset
    test: tf.data.Dataset
    num_train: int
    num_test: int
    image_shape: tuple
    num_classes: int
    mean: tuple
    std: tuple
    crop_padding: int
    flip: bool
    augmentation: str = "pad_crop"
    class_names: tuple = None
    decode: object = None

    def images(self, dataset):
        """`dataset` (`train`, `test` or a part of them) as (uint8 image, label)."""
        return dataset if self.decode is None else dataset.map(self.decode)


def from_arrays(name, x_train, y_train, x_test, y_test, num_classes, crop_padding, flip):
    """An `ImageSource` of uint8 arrays [N, H, W, 3] and integer labels, its
    normalisation statistics taken from the training images."""
    mean = tuple(float(m) for m in (x_train / 255.0).mean(axis=(0, 1, 2)))
    std = tuple(float(s) for s in (x_train / 255.0).std(axis=(0, 1, 2)))
    return ImageSource(
        name, tf.data.Dataset.from_tensor_slices((x_train, y_train.astype(np.int64))),
        tf.data.Dataset.from_tensor_slices((x_test, y_test.astype(np.int64))),
        len(x_train), len(x_test), tuple(x_train.shape[1:]), num_classes, mean, std,
        crop_padding, flip)
