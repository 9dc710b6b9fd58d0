"""The user's own images (nasp_tf.data.user_images): folders, npz archives,
tfds datasets, what is taken from the data, and one-line errors for data that
cannot be used."""

import os

import numpy as np
import pytest
import tensorflow as tf

from nasp_tf.cli import flags_common
from nasp_tf.data import images, user_images
from nasp_tf.errors import DataError


def write_png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(str(path), tf.io.encode_png(np.asarray(image, np.uint8)))


def random_images(seed, count, size=8, channels=3):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, channels),
                                                dtype=np.uint8)


@pytest.fixture
def image_folder(tmp_path):
    """Factory of a folder of class subfolders of 8x8 PNGs ({class: images}),
    optionally under `sub` (train/ or test/); returns the folder."""

    def make(classes, sub="", root="data"):
        for cls, pictures in classes.items():
            for i, image in enumerate(pictures):
                write_png(tmp_path / root / sub / cls / f"{i:02d}.png", image)
        return str(tmp_path / root)

    return make


def everything(dataset):
    """The (images, labels) of a tf.data.Dataset as numpy arrays."""
    x, y = next(iter(dataset.batch(10_000)))
    return x.numpy(), y.numpy()


def expected_statistics(x):
    return (x / 255.0).mean(axis=(0, 1, 2)), (x / 255.0).std(axis=(0, 1, 2))


def test_folder_holds_out_a_fixed_tenth_and_measures_the_rest(image_folder):
    pictures = {cls: random_images(seed, 6) for seed, cls in enumerate(("cat", "dog", "eel"))}
    source = images.get_source("folder:" + image_folder(pictures))
    assert source.name.startswith("folder:")
    assert (source.num_classes, source.image_shape) == (3, (8, 8, 3))
    assert source.class_names == ("cat", "dog", "eel")
    # 18 images in file order (class by class): a permutation of seed 0 holds
    # out round(1.8) = 2 and orders the other 16 for training.
    every = np.concatenate([pictures[c] for c in source.class_names])
    labels = np.repeat(np.arange(3), 6)
    order = np.random.RandomState(0).permutation(18)
    assert (source.num_train, source.num_test) == (16, 2)
    x_train, y_train = everything(source.images(source.train))
    x_test, y_test = everything(source.images(source.test))
    np.testing.assert_array_equal(x_train, every[order[2:]])
    np.testing.assert_array_equal(y_train, labels[order[2:]])
    np.testing.assert_array_equal(x_test, every[order[:2]])
    np.testing.assert_array_equal(y_test, labels[order[:2]])
    mean, std = expected_statistics(every[order[2:]])
    np.testing.assert_allclose(source.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(source.std, std, rtol=1e-12)
    assert (source.crop_padding, source.flip) == (1, True)


def test_folder_with_train_and_test_subfolders(image_folder, tmp_path):
    image_folder({"a": random_images(0, 3), "b": random_images(1, 3)}, "train")
    # test/ may lack a class; its labels follow train/'s class order. Grey and
    # RGBA files are read as RGB.
    grey = random_images(2, 2, channels=1)
    rgba = random_images(3, 1, channels=4)
    root = image_folder({"b": grey}, "test")
    write_png(tmp_path / "data" / "test" / "b" / "rgba.png", rgba[0])
    source = user_images.folder_source(root)
    assert (source.num_train, source.num_test, source.num_classes) == (6, 3, 2)
    x_test, y_test = everything(source.images(source.test))
    np.testing.assert_array_equal(y_test, [1, 1, 1])
    np.testing.assert_array_equal(x_test[:2], np.repeat(grey, 3, axis=-1))
    np.testing.assert_array_equal(x_test[2], rgba[0, ..., :3])
    x_train, _ = everything(source.images(source.train))
    mean, std = expected_statistics(x_train)
    np.testing.assert_allclose(source.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(source.std, std, rtol=1e-12)


def test_npz_grey_floats_labels_and_class_names(tmp_path):
    rng = np.random.default_rng(0)
    x_train, x_test = rng.random((12, 6, 7)), rng.random((4, 6, 7, 1))
    y_train = (np.arange(12) % 3).reshape(12, 1)  # Keras's [N, 1] labels
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=[0, 1, 2, 3],
             class_names=["w", "x", "y", "z"], notes=np.zeros(2))
    source = images.get_source(f"npz:{path}")
    assert (source.num_train, source.num_test) == (12, 4)
    assert source.image_shape == (6, 7, 3) and source.num_classes == 4
    assert source.class_names == ("w", "x", "y", "z")
    assert source.crop_padding == 1  # 1/8 of the shorter side, at least 1
    # Floats whose maximum is at most 1 are [0, 1] images; grey is repeated.
    expected = np.repeat(np.round(x_train * 255).astype(np.uint8)[..., None], 3, axis=-1)
    order = np.random.RandomState(0).permutation(12)
    x, y = everything(source.images(source.train))
    assert x.dtype == np.uint8
    np.testing.assert_array_equal(x, expected[order])
    np.testing.assert_array_equal(y, y_train[order, 0])
    mean, std = expected_statistics(expected)
    np.testing.assert_allclose(source.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(source.std, std, rtol=1e-12)
    np.testing.assert_array_equal(everything(source.images(source.test))[1], [0, 1, 2, 3])


def test_npz_without_a_test_set_holds_out_a_tenth(tmp_path):
    x = random_images(0, 30, size=32)
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=x, y_train=np.arange(30) % 5)
    source = user_images.npz_source(str(path))
    assert (source.num_train, source.num_test, source.num_classes) == (27, 3, 5)
    assert source.class_names is None and source.crop_padding == 4  # CIFAR's for 32x32
    order = np.random.RandomState(0).permutation(30)
    np.testing.assert_array_equal(everything(source.images(source.test))[0], x[order[:3]])
    # A search splits it like any other source.
    data = images.search_data(source, batch_size=4, seed=0)
    (xt, _), _ = next(iter(data.pairs))
    assert xt.shape == (4, 32, 32, 3) and data.steps_per_epoch == 3


def check_one_line(error, *words):
    message = str(error.value)
    assert "\n" not in message and "Received:" in message, message
    for word in words:
        assert word in message, message


def small_npz(path, **arrays):
    x = random_images(0, 6)
    np.savez(path, **{"x_train": x, "y_train": [0, 1, 0, 1, 0, 1], **arrays})
    return str(path)


@pytest.mark.parametrize("make,words", [
    (lambda p, f: f({"only": random_images(0, 3)}), ["at least two", "'only'"]),
    (lambda p, f: str(p), ["no class folders", "cat"]),  # empty folder
    (lambda p, f: str(p / "missing"), ["does not exist"]),
    (lambda p, f: (f({"a": random_images(0, 2)}), os.makedirs(p / "data" / "b"))[0],
     ["'b' holds no images"]),
    (lambda p, f: (f({"a": random_images(0, 2), "b": random_images(1, 2)}),
                   write_png(p / "data" / "b" / "big.png", random_images(2, 1, size=9)[0]))[0],
     ["one size", "8x8", "9x9", os.path.join("b", "big.png")]),
    (lambda p, f: (f({"a": random_images(0, 2), "b": random_images(1, 2)}),
                   (p / "data" / "b" / "z.png").write_bytes(b""))[0],
     ["empty", "z.png"]),
    (lambda p, f: (f({"a": random_images(0, 2), "b": random_images(1, 2)}),
                   (p / "data" / "b" / "z.png").write_bytes(b"not a png"))[0],
     ["cannot decode", "z.png", "Unknown image file format"]),
    (lambda p, f: f({"a": random_images(0, 2), "b": random_images(1, 2)}, "train"),
     ["test/ folder"]),
    (lambda p, f: (f({"a": random_images(0, 2), "b": random_images(1, 2)}, "train"),
                   f({"c": random_images(2, 1)}, "test"))[0], ["test/ has class", "c"]),
    (lambda p, f: (f({"a": random_images(0, 2), "b": random_images(1, 2)}, "train"),
                   os.makedirs(p / "data" / "test" / "a"))[0], ["test/ holds no images"]),
], ids=["one_class", "empty_folder", "missing_folder", "class_without_images", "mixed_sizes",
        "empty_image", "corrupt_image", "train_without_test", "test_class_not_in_train",
        "empty_test"])
def test_bad_folders_raise_one_line(tmp_path, image_folder, make, words):
    with pytest.raises(DataError) as error:
        user_images.folder_source(make(tmp_path, image_folder))
    check_one_line(error, *words)


@pytest.mark.parametrize("make,words", [
    (lambda p: (p.joinpath("e.npz").write_bytes(b""), str(p / "e.npz"))[1], ["empty"]),
    (lambda p: (p.joinpath("g.npz").write_bytes(b"garbage"), str(p / "g.npz"))[1],
     ["not an .npz archive"]),
    (lambda p: str(p / "missing.npz"), ["does not exist"]),
    (lambda p: (np.save(p / "a.npy", np.zeros(3)), str(p / "a.npy"))[1], [".npy"]),
    (lambda p: (np.savez(p / "k.npz", images=random_images(0, 2), y_train=[0, 1]),
                str(p / "k.npz"))[1], ["missing key(s) x_train", "images, y_train"]),
    (lambda p: small_npz(p / "t.npz", x_test=random_images(1, 2)), ["missing key(s) y_test"]),
    (lambda p: small_npz(p / "n.npz", y_train=[0, 1, 0, 1, 0]), ["6 images and 5 labels"]),
    (lambda p: small_npz(p / "n.npz", y_train=[0, 1, -1, 1, 0, 1]), ["-1 at index 2"]),
    (lambda p: small_npz(p / "f.npz", y_train=[0, 1, 0.5, 1, 0, 1]),
     ["integer class indices", "0.5 at index 2"]),
    (lambda p: small_npz(p / "s.npz", y_train=np.array(list("abab01"))),
     ["integer class indices", "dtype <U1"]),
    (lambda p: small_npz(p / "o.npz", y_train=np.eye(6)), ["shape [N]", "argmax"]),
    (lambda p: small_npz(p / "c.npz", y_train=[0, 1, 2, 0, 1, 2], class_names=["a", "b"]),
     ["0..1", "2 in y_train"]),
    (lambda p: small_npz(p / "u.npz", y_train=[3, 3, 3, 3, 3, 3]), ["at least two classes"]),
    (lambda p: small_npz(p / "x.npz", x_train=np.full((6, 4, 4), 300.0)), ["[0, 255]", "300"]),
    (lambda p: small_npz(p / "z.npz", x_train=np.zeros((0, 4, 4)), y_train=np.zeros(0)),
     ["no images"]),
    (lambda p: small_npz(p / "r.npz", x_test=random_images(1, 2, size=5), y_test=[0, 1]),
     ["one size", "5x5x3 test", "8x8x3 training"]),
], ids=["empty_file", "not_npz", "missing_file", "npy", "missing_x_train", "x_test_alone",
        "lengths", "negative_label", "fractional_label", "string_labels", "one_hot",
        "label_beyond_class_names", "one_class", "beyond_255", "no_images", "test_size"])
def test_bad_npz_raise_one_line(tmp_path, make, words):
    with pytest.raises(DataError) as error:
        images.get_source("npz:" + make(tmp_path))
    check_one_line(error, *words)


def test_tfds_dataset_of_grey_images_without_a_test_split(tmp_path):
    import tensorflow_datasets as tfds

    pictures = random_images(0, 20, size=6, channels=1)

    class TinyGreyPictures(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """20 grey 6x6 images of 3 classes, a train split only; not registered,
        so tfds reads it back from its files, as a dataset prepared elsewhere."""
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(6, 6, 1)),
                "label": tfds.features.ClassLabel(names=["x", "y", "z"])}),
                supervised_keys=("image", "label"))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for i, image in enumerate(pictures):
                yield i, {"image": image, "label": i % 3}

    TinyGreyPictures(data_dir=str(tmp_path)).download_and_prepare()
    source = images.get_source("tfds:tiny_grey_pictures", str(tmp_path))
    # No test or validation split: the last 10 % of train is the test set.
    assert (source.num_train, source.num_test) == (18, 2)
    assert source.image_shape == (6, 6, 3) and source.num_classes == 3
    assert source.class_names == ("x", "y", "z")
    x_train, _ = everything(source.images(source.train))
    x_test, _ = everything(source.images(source.test))
    assert len(x_train) == 18 and len(x_test) == 2 and x_train.dtype == np.uint8
    np.testing.assert_array_equal(x_train[..., 0], x_train[..., 2])
    # tfds shuffles examples when it prepares them: compare as sets of images.
    assert sorted(map(bytes, np.concatenate([x_train, x_test])[..., :1])) == \
        sorted(map(bytes, pictures))
    mean, std = expected_statistics(x_train)
    np.testing.assert_allclose(source.mean, mean, rtol=1e-9)
    np.testing.assert_allclose(source.std, std, rtol=1e-9)
    # --image_size: the same images, resized as they are read.
    bigger = images.get_source("tfds:tiny_grey_pictures", str(tmp_path), image_size=(12, 9))
    assert bigger.image_shape == (12, 9, 3)
    x_bigger, _ = everything(bigger.train)
    np.testing.assert_array_equal(x_bigger, user_images.resized(x_train, (12, 9)))
    np.testing.assert_allclose(bigger.mean, expected_statistics(x_bigger)[0], rtol=1e-6)


@pytest.mark.parametrize("name,words", [
    ("mnist", ["not prepared", "download_and_prepare", "--data_dir"]),
    ("no_such_dataset_here", ["has no dataset", "tfds.list_builders"]),
])
def test_tfds_missing_data_is_one_line(tmp_path, name, words):
    with pytest.raises(DataError) as error:
        images.get_source(f"tfds:{name}", str(tmp_path))
    check_one_line(error, *words)


def test_dry_run_builds_the_network_the_data_needs(tmp_path, capsys):
    # bin/train.py --dry_run reads the user's data for its image size and classes.
    from nasp_tf.config import TrainConfig
    from nasp_tf.pipelines import image_train

    path = tmp_path / "grey.npz"
    np.savez(path, x_train=np.random.default_rng(1).random((20, 12, 10)),
             y_train=np.arange(20) % 5)
    config = TrainConfig(genotype="DARTS_V2", dry_run=True, dataset=f"npz:{path}",
                         download=False, auxiliary=False, init_channels=4, layers=3)
    network = image_train.run(config)
    assert network.image_shape == (12, 10, 3) and network.num_classes == 5
    assert f"parameters: {network.count_params_without_auxiliary()}" in capsys.readouterr().out


def test_flags_know_the_user_data_forms(tmp_path, image_folder):
    # Checked when the flags are parsed, without TensorFlow: the form, the
    # folder's layout, the archive's keys and the tfds name.
    assert flags_common.USER_DATA_PREFIXES == user_images.PREFIXES
    names = ("cifar10", "digits")
    folder = image_folder({"a": random_images(0, 2), "b": random_images(1, 2)})
    archive = small_npz(tmp_path / "a.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "no_classes").mkdir()
    assert flags_common.dataset_problem("digits", names) is None
    assert flags_common.dataset_problem(f"folder:{folder}", names) is None
    assert flags_common.dataset_problem(f"npz:{archive}", names) is None
    assert flags_common.dataset_problem("tfds:mnist", names) is None
    assert flags_common.dataset_problem("tfds:emnist/letters:3.1.0", names) is None
    for value, words in [("mnist", ["cifar10, digits", "tfds:NAME"]),
                         ("folder:", ["after the colon"]),
                         (f"folder:{archive}", ["not a directory"]),
                         (f"folder:{tmp_path / 'no_classes'}", ["no class folders"]),
                         (f"npz:{tmp_path}", ["does not exist"]),
                         (f"npz:{tmp_path / 'empty.npz'}", ["is empty"])]:
        problem = flags_common.dataset_problem(value, names)
        assert problem and "Received:" in problem, value
        assert all(w in problem for w in words), problem
    assert {flags_common.family(v) for v in ("tfds:mnist", "folder:x", "npz:y")} == {"images"}
    # A tfds name: in the catalog, or prepared in the tfds directory.
    from nasp_tf.data import checks

    problem = checks.tfds_problem("mnistt", str(tmp_path))
    assert "has no dataset 'mnistt'" in problem and "did you mean mnist" in problem
    (tmp_path / "mnistt").mkdir()
    assert checks.tfds_problem("mnistt", str(tmp_path)) is None


def test_the_data_checks_of_the_flags_load_no_tensorflow(tmp_path):
    # A refused --dataset costs no TensorFlow start-up: run the checks in a
    # fresh interpreter and look at what it imported.
    import subprocess
    import sys

    (tmp_path / "empty.npz").write_bytes(b"")
    script = (
        "import sys\n"
        "from nasp_tf.cli import flags_common\n"
        "from nasp_tf.data import checks\n"
        f"problems = [flags_common.dataset_problem(v, ('digits',)) for v in "
        f"('folder:{tmp_path}', 'npz:{tmp_path / 'empty.npz'}')]\n"
        f"problems.append(checks.tfds_problem('mnistt', {str(tmp_path)!r}))\n"
        "assert all(problems), problems\n"
        "print('tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"


def _gradient(height, width):
    """A smooth uint8 RGB image: red rises down the rows, green across."""
    rows = np.linspace(0, 255, height)[:, None] * np.ones((1, width))
    cols = np.ones((height, 1)) * np.linspace(0, 255, width)[None, :]
    return np.round(np.stack([rows, cols, np.full((height, width), 77.0)], -1)).astype(np.uint8)


def test_image_size_resizes_npz_images_and_keeps_their_content(tmp_path):
    # Constant images stay exactly their colour; a smooth gradient keeps its
    # mean (to rounding) and its ends; shape, classes and statistics follow.
    colours = np.random.default_rng(0).integers(0, 256, (6, 3))
    flat = np.broadcast_to(colours[:, None, None, :], (6, 20, 30, 3)).astype(np.uint8)
    path = tmp_path / "flat.npz"
    np.savez(path, x_train=flat, y_train=[0, 1, 0, 1, 0, 1], x_test=flat[:2], y_test=[0, 1])
    source = images.get_source(f"npz:{path}", image_size=(8, 12))
    assert source.image_shape == (8, 12, 3) and source.num_classes == 2
    x_train, _ = everything(source.images(source.train))
    assert x_train.shape == (6, 8, 12, 3)
    for image in x_train:  # every pixel is its image's colour
        assert any((image == c.astype(np.uint8)).all() for c in colours)
    mean, std = expected_statistics(x_train)
    np.testing.assert_allclose(source.mean, mean, rtol=1e-9)
    np.testing.assert_allclose(source.std, std, rtol=1e-9)
    smooth = _gradient(40, 40)[None]
    small = user_images.resized(smooth, (10, 10))
    assert small.shape == (1, 10, 10, 3) and small.dtype == np.uint8
    np.testing.assert_allclose(small.mean(axis=(0, 1, 2)), smooth.mean(axis=(0, 1, 2)),
                               atol=1.0)
    assert (small[..., 2] == 77).all()
    assert user_images.resized(smooth, (40, 40)) is smooth  # its size already


def test_image_size_lets_a_folder_hold_images_of_several_sizes(tmp_path, image_folder):
    folder = image_folder({"a": random_images(0, 3), "b": random_images(1, 3)})
    write_png(tmp_path / "data" / "b" / "big.png", _gradient(16, 24))
    with pytest.raises(DataError) as error:
        user_images.folder_source(folder)
    check_one_line(error, "one size", "--image_size=H,W")
    source = images.get_source(f"folder:{folder}", image_size=(8, 8))
    x_train, _ = everything(source.images(source.train))
    x_test, _ = everything(source.images(source.test))
    assert source.image_shape == (8, 8, 3) and source.num_train + source.num_test == 7
    # The 8x8 images are read unchanged (no resampling of their own size).
    originals = {bytes(im) for im in np.concatenate([random_images(0, 3), random_images(1, 3)])}
    read = [bytes(im) for im in np.concatenate([x_train, x_test])]
    assert sum(r in originals for r in read) == 6


def test_image_size_flag_is_checked_when_parsed():
    from nasp_tf.data import checks

    assert checks.parse_image_size("16") == (16, 16)
    assert checks.parse_image_size("16, 24") == (16, 24)
    assert checks.parse_image_size(None) is None
    for bad in ("4", "16,16,3", "x", "", "16,-8"):
        with pytest.raises(ValueError, match="H or H,W"):
            checks.parse_image_size(bad)


def test_a_folder_streams_from_disk_pass_by_pass(tmp_path, image_folder):
    """A folder's images are not held in memory: the datasets hold file paths
    and every pass of the search's endless stream reads the files again, so
    what is on disk when a pass is read is what it trains on."""
    pictures = {"a": random_images(0, 4), "b": random_images(1, 4)}
    folder = image_folder(pictures, "train")
    image_folder({"a": random_images(2, 1), "b": random_images(3, 1)}, "test")
    source = images.get_source(f"folder:{folder}")
    assert source.train.element_spec[0].dtype == tf.string
    data = images.search_data(source, batch_size=4, seed=0)
    stream = iter(data.pairs)
    (first, _), _ = next(stream)
    every = np.concatenate([pictures["a"], pictures["b"]]) / 255.0
    originals = (every - np.array(source.mean)) / np.array(source.std)
    # Augmented (cropped, flipped) batches: compare the pixel sets' means.
    assert np.isclose(np.mean(first), np.mean(originals[:, 1:-1, 1:-1]), atol=0.5)
    for path in [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(folder, "train"))
                 for f in fs]:
        # Replaced whole (written aside, then renamed): the pipeline reads
        # ahead in its own threads and must never see a half-written file.
        write_png(path + ".part", np.full((8, 8, 3), 255, np.uint8))
        os.replace(path + ".part", path)
    white = (1.0 - np.array(source.mean)) / np.array(source.std)
    # The weight half is 4 images, a pass is one batch: the passes after the
    # ones the pipeline read ahead come from the rewritten files.
    for _ in range(200):
        (later, _), _ = next(stream)
        inside = later.numpy()[:, 2:-2, 2:-2, :]  # the crop's zero padding aside
        if np.allclose(inside, np.broadcast_to(white, inside.shape), atol=1e-5):
            break
    else:
        pytest.fail("200 passes later the stream still shows the images read first")
