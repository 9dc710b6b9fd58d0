"""The user's own images: --dataset=tfds:NAME, folder:DIR or npz:FILE.

Each loader checks the data and returns an `ImageSource` of uint8
[H, W, 3] images and int64 labels whose number of classes, image size and
normalisation mean/std come from the data itself. Data that cannot be used
raises a `DataError` whose one-line message says what is wrong, what was
received and what to do.

The test set is the data's own (a `train/` + `test/` folder layout, x_test
and y_test in the npz, the `test` split of a tfds dataset, else its
`validation` split). Data without one gets a fixed `HOLDOUT` fraction of its
images held out: chosen by a permutation of seed 0 (whatever --seed says)
for a folder or an npz, the last 10 % for tfds (tfds datasets are shuffled
when prepared). Folder and npz training examples are put in a fixed order of
the same seed too, because a search trains the weights on the first part of
the training set and the architecture on the rest (and --max_examples takes
the first N): files listed class by class would give each part other
classes.

Images are augmented as CIFAR's are (random crop from a zero-padded image,
horizontal flip), with a padding of 1/8 of the shorter side (4 pixels for
32x32). npz data is held in memory as uint8; a folder's images are read
from disk as they are batched.
"""

import os
import re
import zipfile

import numpy as np
import tensorflow as tf
from absl import logging

from nasp_tf.data import checks
from nasp_tf.data.image_source import ImageSource, from_arrays
from nasp_tf.errors import DataError

# The --dataset prefixes; nasp_tf.cli.flags_common.USER_DATA_PREFIXES must match.
PREFIXES = ("tfds", "folder", "npz")
# The fraction of images held out as the test set when the data has none.
HOLDOUT = 0.1
# The seed of the holdout and of the training order: fixed, so that every
# --seed searches and retrains on the same split.
ORDER_SEED = 0
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test", "class_names")


def get_source(spec, data_dir=None, image_size=None):
    """The `ImageSource` of a --dataset value `tfds:NAME`, `folder:DIR` or `npz:FILE`.

    Args:
      spec: the --dataset value; it names the source in logs and messages.
      data_dir: the tensorflow-datasets directory of `tfds:NAME` (default
        ~/tensorflow_datasets); unused by the others.
      image_size: (H, W) to resize every image to as it loads (bilinear,
        antialiased), or None to keep the data's size.
    """
    prefix, _, rest = spec.partition(":")
    if prefix not in PREFIXES or not rest:
        raise DataError(f"your own images are tfds:NAME, folder:DIR or npz:FILE. Received: "
                        f"{spec!r}")
    if prefix == "tfds":
        return tfds_source(rest, data_dir, spec, image_size)
    if prefix == "folder":
        return folder_source(rest, spec, image_size)
    return npz_source(rest, spec, image_size)


def resized(images, image_size, chunk=256):
    """uint8 images [N, H, W, 3] resized to `image_size` (H, W): bilinear
    with antialiasing (a shrink averages instead of skipping pixels),
    rounded back to uint8; unchanged when they have that size."""
    if image_size is None or tuple(images.shape[1:3]) == tuple(image_size):
        return images
    return np.concatenate([_resize(images[i:i + chunk], image_size).numpy()
                           for i in range(0, len(images), chunk)])


def _resize(images, image_size):
    """`resized` of a uint8 tensor (also inside tf.data maps)."""
    out = tf.image.resize(images, image_size, method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)


def crop_padding(image_shape):
    """CIFAR's crop padding (4 pixels for 32x32) scaled to the image: 1/8 of
    the shorter side, at least 1."""
    return max(1, min(image_shape[0], image_shape[1]) // 8)


def arrays_source(name, x_train, y_train, x_test=None, y_test=None, class_names=None,
                  image_size=None):
    """An `ImageSource` of in-memory arrays, checked and brought to uint8 RGB.

    Args:
      name: the source's name in logs and messages (the --dataset value).
      x_train: images [N, H, W], [N, H, W, 1] (both grey: repeated on three
        channels) or [N, H, W, 3]; uint8, integers in 0..255, or floats in
        [0, 1] (read so when their maximum is at most 1) or else in [0, 255].
      y_train: integer class indices [N] (or [N, 1]) in 0..K-1.
      x_test, y_test: the test set in the same form, or both None: a fixed
        `HOLDOUT` fraction of the training arrays is held out.
      class_names: the K class names in index order; None: K is the largest
        label + 1.
      image_size: (H, W) to resize the images to (`resized`), or None.
    """
    x_train = resized(_images(name, "x_train", x_train), image_size)
    y_train = _labels(name, "y_train", y_train, len(x_train), "x_train")
    if x_test is not None:
        x_test = resized(_images(name, "x_test", x_test), image_size)
        y_test = _labels(name, "y_test", y_test, len(x_test), "x_test")
        if x_test.shape[1:] != x_train.shape[1:]:
            raise DataError(
                f"{name}: x_test and x_train must hold images of one size. Received: "
                f"{_size(x_test.shape[1:])} test images and {_size(x_train.shape[1:])} "
                "training images; resize them to one size")
    labels = y_train if y_test is None else np.concatenate([y_train, y_test])
    num_classes = len(class_names) if class_names is not None else int(labels.max()) + 1
    if class_names is not None and labels.max() >= num_classes:
        where = "y_train" if y_train.max() >= num_classes else "y_test"
        raise DataError(f"{name}: labels must be class indices 0..{num_classes - 1} (there "
                        f"are {num_classes} class_names). Received: {int(labels.max())} in "
                        f"{where}; fix the labels or the class_names")
    present = np.unique(y_train)
    if len(present) < 2:
        label = class_names[present[0]] if class_names is not None else int(present[0])
        raise DataError(f"{name}: a classifier needs at least two classes. Received: "
                        f"training labels of one class ({label!r}); add images of other "
                        "classes")
    if x_test is None:
        if len(x_train) < 2:
            raise DataError(f"{name}: at least two images are needed to hold one out for "
                            f"testing. Received: {len(x_train)}; add images")
        order = np.random.RandomState(ORDER_SEED).permutation(len(x_train))
        held = max(1, int(round(HOLDOUT * len(x_train))))
        x_test, y_test = x_train[order[:held]], y_train[order[:held]]
        x_train, y_train = x_train[order[held:]], y_train[order[held:]]
    else:
        order = np.random.RandomState(ORDER_SEED).permutation(len(x_train))
        x_train, y_train = x_train[order], y_train[order]
    # The built-in arrays' constructor: it measures the mean and std on x_train.
    source = from_arrays(name, x_train, y_train, x_test, y_test, num_classes,
                                 crop_padding(x_train.shape[1:]), flip=True)
    if class_names is not None:
        source.class_names = tuple(str(c) for c in class_names)
    logging.info("%s: %d training and %d test images of %s, %d classes", name,
                 source.num_train, source.num_test, _size(source.image_shape), num_classes)
    return source


def _size(shape):
    return "x".join(str(d) for d in shape)


def _images(name, key, x):
    """`x` as uint8 [N, H, W, 3], or a DataError that says what is wrong with it."""
    x = np.asarray(x)
    shape = x.shape
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(f"{name}: {key} must be images [N, H, W], [N, H, W, 1] or "
                        f"[N, H, W, 3]. Received: shape {shape}; reshape or convert them")
    if x.size == 0:
        raise DataError(f"{name}: {key} holds no images. Received: shape {shape}; "
                        "give at least one image")
    if x.dtype != np.uint8:
        if x.dtype.kind not in "iuf":
            raise DataError(f"{name}: {key} must be numbers (uint8, or floats in [0, 1] or "
                            f"[0, 255]). Received: dtype {x.dtype}")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise DataError(f"{name}: {key} holds NaN or infinite values. Received: "
                            f"{int((~np.isfinite(x)).sum())} of them; fix or drop those images")
        low, high = x.min(), x.max()
        if low < 0 or high > 255:
            raise DataError(f"{name}: {key} values must lie in [0, 255] (or [0, 1] for "
                            f"floats). Received: values from {low} to {high}; rescale them")
        # Floats whose maximum is at most 1 are [0, 1] images; anything else is 0..255.
        scale = 255.0 if x.dtype.kind == "f" and high <= 1.0 else 1.0
        x = np.round(x.astype(np.float64) * scale).astype(np.uint8)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return x


def _labels(name, key, y, count, images_key):
    """`y` as int64 [N] class indices, or a DataError that says what is wrong with it."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:  # Keras's own datasets store [N, 1]
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{name}: {key} must be class indices of shape [N]. Received: shape "
                        f"{y.shape}; for one-hot labels pass y.argmax(axis=1)")
    if len(y) != count:
        raise DataError(f"{name}: {images_key} and {key} must be as long as each other. "
                        f"Received: {count} images and {len(y)} labels; give one label "
                        "per image")
    if y.dtype.kind not in "iuf":
        raise DataError(f"{name}: {key} must be integer class indices. Received: dtype "
                        f"{y.dtype}; map the labels to 0..K-1")
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if len(bad):
            raise DataError(f"{name}: {key} must be integer class indices. Received: "
                            f"{y[bad[0]]} at index {bad[0]}; map the labels to 0..K-1")
    negative = np.flatnonzero(y < 0)
    if len(negative):
        raise DataError(f"{name}: {key} must be class indices 0..K-1. Received: "
                        f"{y[negative[0]]} at index {negative[0]}; map the labels to 0..K-1")
    return y.astype(np.int64)


def npz_source(path, name=None, image_size=None):
    """Images in a numpy .npz archive (written by `numpy.savez`).

    Keys: `x_train`, `y_train` (required), `x_test`, `y_test` (both or
    neither) and `class_names` (optional, strings in label order); other keys
    are ignored. The arrays' forms are those of `arrays_source`.

    Args:
      path: the .npz file.
      name: the source's name (default "npz:PATH").
    """
    name = name or f"npz:{path}"
    arrays = read_npz(path, name)
    class_names = arrays.get("class_names")
    if class_names is not None:
        class_names = [str(c) for c in np.ravel(class_names)]
    return arrays_source(name, arrays["x_train"], arrays["y_train"], arrays.get("x_test"),
                         arrays.get("y_test"), class_names, image_size)


def read_npz(path, name):
    """The arrays of `NPZ_KEYS` in the .npz archive at `path`, read without
    unpickling: x_train and y_train, x_test and y_test (both or neither),
    class_names if present. Raises `DataError` with one line naming `name`
    for a file that is missing, empty, not an archive, or lacks keys."""
    problem = checks.npz_problem(path)
    if problem:
        raise DataError(f"{name}: {problem}")
    try:
        archive = np.load(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{name}: not a readable .npz archive. Received: {path!r} "
                        f"({type(e).__name__}: {e}); write it with numpy.savez(path, "
                        "x_train=..., y_train=...)") from None
    with archive:  # its keys are checked (checks.npz_problem)
        try:
            return {k: archive[k] for k in NPZ_KEYS if k in archive.files}
        except ValueError as e:  # object arrays, which would need pickle
            raise DataError(f"{name}: cannot read the arrays ({e}). Received: {path!r}; "
                            "save plain numeric arrays (and strings for class_names)") from None


def _listed(directory, classes):
    """([file path], int64 [N] labels) of the class folders of `directory`,
    class by class, each folder's files sorted; a folder's label is its
    index in `classes` (a test/ folder may lack a class)."""
    paths, labels = [], []
    for label, cls in enumerate(classes):
        folder = os.path.join(directory, cls)
        if os.path.isdir(folder):
            found = checks.image_files(folder)
            paths += found
            labels += [label] * len(found)
    return paths, np.array(labels, np.int64)


def _file_reader(image_shape, image_size=None):
    """The map fn (file path, label) -> (uint8 [H, W, 3] image, label) of a
    folder's images: decoded as RGB, resized to `image_size` (as `resized`:
    an image of that size already is left as it is)."""

    def read(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        if image_size is not None:
            target = tf.constant(image_size, tf.int32)
            image = tf.cond(tf.reduce_all(tf.shape(image)[:2] == target), lambda: image,
                            lambda: _resize(image, image_size))
        image.set_shape(image_shape)
        return image, label

    return read


def _scan(name, root, paths, measured, image_size=None):
    """Reads every image once, without keeping it: checks that it decodes,
    that all have one size (unless `image_size`), and measures the
    per-channel mean and std of the [0, 1] images whose index is in
    `measured`. Returns ((H, W, 3), mean, std)."""
    read = _file_reader([None, None, 3], image_size)
    sizes = {}
    total, squares, count = np.zeros(3), np.zeros(3), 0
    for index, path in enumerate(paths):
        where = os.path.relpath(path, root)
        if os.path.getsize(path) == 0:
            raise DataError(f"{name}: an image file is empty. Received: {where} (0 "
                            "bytes); remove or replace it")
        try:
            image = read(tf.constant(path), 0)[0].numpy()
        except tf.errors.OpError as e:
            raise DataError(f"{name}: cannot decode an image. Received: {where} "
                            f"({_op_error_reason(e)}); remove or replace it") from None
        size = image.shape[:2]
        sizes.setdefault(size, where)
        if len(sizes) > 1:
            other, other_where = next((s, w) for s, w in sizes.items() if s != size)
            raise DataError(f"{name}: every image must have one size. Received: "
                            f"{other_where} is {_size(other)}, {where} is {_size(size)}; "
                            "resize them to one size, or pass --image_size=H,W")
        if index in measured:
            pixels = image.reshape(-1, 3) / 255.0
            total += pixels.sum(axis=0)
            squares += (pixels * pixels).sum(axis=0)
            count += len(pixels)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
    return tuple(next(iter(sizes))) + (3,), tuple(map(float, mean)), tuple(map(float, std))


def _op_error_reason(error):
    """The reason of a TensorFlow op error, without the op and device names
    TensorFlow wraps it in."""
    text = re.sub(r"\{\{.*?\}\}", "", error.message or type(error).__name__)
    return text.split("[Op:")[0].strip().splitlines()[0]


def folder_source(path, name=None, image_size=None):
    """A folder of images, one subfolder per class.

    Layout: DIR/CLASS/*.png (or .jpg, .jpeg, .bmp, .gif; subfolders of a
    class folder are read too), or DIR/train/CLASS/... with DIR/test/CLASS/...
    for a test set of one's own (test/ may lack a class, not add one). Class
    i is the i-th class folder in sorted order. Grey and RGBA images are
    read as RGB; all images must have one size, or `image_size` is given.

    The images are not held in memory: the source's datasets are of file
    paths (`ImageSource.decode` reads them as batches are made), so a folder
    larger than memory works. Every image is read once here, to check it
    and to measure the normalisation on the training images.

    Args:
      path: the folder.
      name: the source's name (default "folder:PATH").
      image_size: (H, W) every image is resized to as it is read, or None.
    """
    name = name or f"folder:{path}"
    problem = checks.folder_problem(path)
    if problem:
        raise DataError(f"{name}: {problem}")
    layout = os.path.isdir(os.path.join(path, "train"))
    train_dir = os.path.join(path, "train") if layout else path
    classes = checks.class_folders(train_dir)
    paths, labels = _listed(train_dir, classes)
    test_paths, test_labels = (_listed(os.path.join(path, "test"), classes) if layout
                               else ([], np.zeros([0], np.int64)))
    # The holdout and the training order of `arrays_source`, on file paths
    # (`folder_problem` made sure of two classes with images).
    order = np.random.RandomState(ORDER_SEED).permutation(len(paths))
    held = 0 if layout else max(1, int(round(HOLDOUT * len(paths))))
    if not layout and len(paths) < 2:
        raise DataError(f"{name}: at least two images are needed to hold one out for "
                        f"testing. Received: {len(paths)}; add images")
    train_order = order[held:]
    image_shape, mean, std = _scan(name, path, paths + test_paths, set(train_order.tolist()),
                                   image_size)
    if not layout:
        test_paths, test_labels = [paths[i] for i in order[:held]], labels[order[:held]]
    train_paths, train_labels = [paths[i] for i in train_order], labels[train_order]
    source = ImageSource(
        name, tf.data.Dataset.from_tensor_slices((train_paths, train_labels)),
        tf.data.Dataset.from_tensor_slices((test_paths, test_labels)), len(train_paths),
        len(test_paths), image_shape, len(classes), mean, std, crop_padding(image_shape),
        True, class_names=tuple(classes), decode=_file_reader(image_shape, image_size))
    logging.info("%s: %d training and %d test images of %s, %d classes (read from disk as "
                 "they are batched)", name, source.num_train, source.num_test,
                 _size(image_shape), source.num_classes)
    return source


def tfds_source(dataset, data_dir=None, name=None, image_size=None):
    """An image classification dataset of tensorflow-datasets, already prepared.

    Its supervised keys must be an image of one size (grey or RGB) and a
    class label. The test set is its `test` split, else its `validation`
    split, else the last 10 % of `train`. Nothing is downloaded: a dataset
    that is not prepared under `data_dir` is a DataError saying how to get it.
    The mean and std are measured on the training split (one pass).

    Args:
      dataset: the tfds name, e.g. "mnist" or "emnist/letters:3.1.0".
      data_dir: the tensorflow-datasets directory (default ~/tensorflow_datasets).
      name: the source's name (default "tfds:DATASET").
      image_size: (H, W) every image is resized to as it is read, or None.
    """
    import tensorflow_datasets as tfds

    name = name or f"tfds:{dataset}"
    data_dir = os.path.expanduser(data_dir or os.path.join("~", "tensorflow_datasets"))
    problem = checks.tfds_problem(dataset, data_dir)
    if problem:
        raise DataError(f"{name}: {problem}")
    try:
        builder = tfds.builder(dataset, data_dir=data_dir)
    except Exception as e:  # an unknown name or version, whatever tfds raises for it
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{name}: tensorflow-datasets cannot find this dataset ({reason}). "
                        f"Received: {dataset!r}; see the names in the tfds catalog "
                        "(tfds.list_builders())") from None
    info = builder.info
    image_key, label_key = _supervised_keys(info)
    features = info.features
    if image_key is None or not isinstance(features[image_key], tfds.features.Image) \
            or not isinstance(features[label_key], tfds.features.ClassLabel):
        raise DataError(f"{name}: not an image classification dataset (its supervised keys "
                        "are not an image and a class label). Received: supervised keys "
                        f"{info.supervised_keys}; choose one whose examples are (image, label)")
    shape = tuple(features[image_key].shape)
    if (None in shape[:2] and image_size is None) or shape[-1] not in (1, 3):
        raise DataError(f"{name}: images must have one size and 1 or 3 channels. Received: "
                        f"image shape {shape}; resize the images to one size and save them "
                        "as --dataset=npz:FILE or folder:DIR")
    if not tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json")):
        raise DataError(
            f"{name}: the dataset is not prepared (tfds:NAME does not download). Received: "
            f"data_dir {data_dir!r} without {dataset}; on a machine with internet run "
            f"`python -c \"import tensorflow_datasets as tfds; tfds.builder('{dataset}', "
            f"data_dir='{data_dir}').download_and_prepare()\"` and copy {data_dir} here, or "
            "pass --data_dir=DIR where it is prepared")
    splits = builder.info.splits
    if "train" not in splits:
        raise DataError(f"{name}: no train split. Received: splits {', '.join(splits)}; "
                        "choose a dataset with a train split")
    if "test" in splits or "validation" in splits:
        train_split, test_split = "train", "test" if "test" in splits else "validation"
    else:
        cut = f"{100 - int(round(100 * HOLDOUT))}%"
        train_split, test_split = f"train[:{cut}]", f"train[{cut}:]"

    def read(split):
        data = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
        if shape[-1] == 1:
            data = data.map(lambda image, label: (tf.image.grayscale_to_rgb(image), label))
        if image_size is not None:
            data = data.map(lambda image, label: (_resize(image, image_size), label))
        return data

    try:
        train, test = read(train_split), read(test_split)
        mean, std = _channel_statistics(train)
    except Exception as e:  # a corrupt or partial preparation
        raise DataError(f"{name}: cannot read it under {data_dir} ({type(e).__name__}: "
                        f"{e}); delete {builder.data_dir} and prepare it again") from None
    image_shape = (tuple(image_size) if image_size is not None else shape[:2]) + (3,)
    label = features[label_key]
    source = ImageSource(
        name, train, test, splits[train_split].num_examples, splits[test_split].num_examples,
        image_shape, label.num_classes, mean, std, crop_padding(image_shape), True)
    source.class_names = tuple(label.names)
    logging.info("%s: %d training (%s) and %d test (%s) images of %s, %d classes", name,
                 source.num_train, train_split, source.num_test, test_split,
                 _size(image_shape), source.num_classes)
    return source


def _supervised_keys(info):
    """(image key, label key) of a tfds dataset, or (None, None)."""
    keys = info.supervised_keys
    if isinstance(keys, (tuple, list)) and len(keys) == 2 and all(isinstance(k, str)
                                                                  for k in keys):
        return tuple(keys)
    return None, None


def _channel_statistics(dataset):
    """Per-channel mean and (population) std of a (uint8 image, label)
    dataset's [0, 1] images, in float64 over one pass."""

    def add(totals, batch):
        x = tf.reshape(tf.cast(batch, tf.float64) / 255.0, [-1, 3])
        return (totals[0] + tf.reduce_sum(x, 0), totals[1] + tf.reduce_sum(x * x, 0),
                totals[2] + tf.cast(tf.shape(x)[0], tf.float64))

    zeros = tf.zeros([3], tf.float64)
    total, squares, count = dataset.map(lambda image, label: image).batch(1024).reduce(
        (zeros, zeros, tf.constant(0.0, tf.float64)), add)
    mean = total / count
    std = tf.sqrt(tf.maximum(squares / count - mean * mean, 0.0))
    return tuple(float(m) for m in mean.numpy()), tuple(float(s) for s in std.numpy())
