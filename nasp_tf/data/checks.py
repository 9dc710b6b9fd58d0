"""What is wrong with the user's own data, found without TensorFlow: the
flags check it when they are parsed (a refusal in a fraction of a second,
nothing written) and the loaders of `nasp_tf.data.user_images` again when
they read it.

Each function returns None for data that may be used, else the problem as
one line: what is wrong, what was received, what to do (the caller puts the
dataset's name in front).
"""

import difflib
import os
import zipfile

# What a class folder's files must end with to be read as images.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
NPZ_SAVE = "write it with numpy.savez(path, x_train=..., y_train=...)"


def parse_image_size(text):
    """(H, W) of an --image_size value "H" (square) or "H,W" (None: None);
    ValueError when it is not one or two whole numbers of at least 8 (two
    reductions of a cell network and the stem need a few pixels)."""
    if text is None:
        return None
    parts = [p.strip() for p in str(text).split(",")]
    if not 1 <= len(parts) <= 2 or not all(p.isdigit() for p in parts) \
            or min(int(p) for p in parts) < 8:
        raise ValueError(f"--image_size takes H or H,W, whole numbers of at least 8. "
                         f"Received: {text!r}")
    height = int(parts[0])
    return height, int(parts[-1])


def class_folders(directory):
    """The sorted class subfolders of `directory` (hidden ones skipped)."""
    return sorted(d for d in os.listdir(directory)
                  if not d.startswith(".") and os.path.isdir(os.path.join(directory, d)))


def image_files(directory):
    """The image files under `directory` (its subfolders too), sorted."""
    found = []
    for parent, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(parent, f) for f in sorted(files)
                  if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")]
    return found


def folder_problem(path):
    """The layout of an image folder: DIR/CLASS/images, or DIR/train/CLASS/...
    with DIR/test/CLASS/... (test/ may lack a class, not add one)."""
    if not os.path.isdir(path):
        return (f"the image folder does not exist or is not a directory. Received: {path!r}; "
                "give a directory with one subfolder of images per class")
    layout = [d for d in ("train", "test") if os.path.isdir(os.path.join(path, d))]
    if len(layout) == 1:
        other = "test" if layout[0] == "train" else "train"
        return (f"a {layout[0]}/ folder needs a {other}/ folder beside it. Received: {path!r} "
                f"with {layout[0]}/ only; add {other}/ with its class folders, or put the "
                "class folders directly in the folder to hold out 10 % for testing")
    train_dir = os.path.join(path, "train") if layout else path
    classes = class_folders(train_dir)
    if not classes:
        return (f"no class folders. Received: {train_dir!r} without subfolders; put the "
                f"images of each class in a subfolder named after it (e.g. "
                f"{os.path.join(train_dir, 'cat', '1.png')})")
    if len(classes) < 2:
        return (f"a classifier needs at least two class folders. Received: one "
                f"({classes[0]!r}) in {train_dir!r}; add a folder of images per other class")
    for cls in classes:
        if not image_files(os.path.join(train_dir, cls)):
            return (f"class folder {cls!r} holds no images. Received: "
                    f"{os.path.join(train_dir, cls)!r}; add {', '.join(IMAGE_EXTENSIONS)} "
                    "files or remove the folder")
    if layout:
        test_dir = os.path.join(path, "test")
        extra = sorted(set(class_folders(test_dir)) - set(classes))
        if extra:
            return (f"test/ has class folders train/ does not. Received: {', '.join(extra)}; "
                    "give them training images or remove them")
        if not any(image_files(os.path.join(test_dir, cls)) for cls in class_folders(test_dir)):
            return (f"test/ holds no images. Received: {test_dir!r}; put test images in its "
                    "class folders, or remove train/ and test/ to hold out 10 % of the images")
    return None


def npz_problem(path):
    """An .npz archive's file and keys (x_train and y_train; x_test and y_test
    both or neither), read from the zip directory without loading an array."""
    if not os.path.isfile(path):
        return (f"the .npz file does not exist. Received: {path!r}; give a file written by "
                "numpy.savez with x_train and y_train")
    if os.path.getsize(path) == 0:
        return f"the .npz file is empty. Received: {path!r} (0 bytes); {NPZ_SAVE}"
    with open(path, "rb") as f:
        if f.read(6) == b"\x93NUMPY":
            return (f"a .npy file holds one array, not x_train and y_train. Received: "
                    f"{path!r}; write an archive with numpy.savez(path, x_train=..., "
                    "y_train=...)")
    if not zipfile.is_zipfile(path):  # numpy.load would try to unpickle it
        return f"not an .npz archive (a zip file of arrays). Received: {path!r}; {NPZ_SAVE}"
    try:
        with zipfile.ZipFile(path) as archive:
            found = sorted(n.removesuffix(".npy") for n in archive.namelist())
    except (OSError, zipfile.BadZipFile) as e:
        return f"not a readable .npz archive. Received: {path!r} ({e}); {NPZ_SAVE}"
    missing = [k for k in ("x_train", "y_train") if k not in found]
    if ("x_test" in found) != ("y_test" in found):
        missing.append("y_test" if "x_test" in found else "x_test")
    if missing:
        return (f"missing key(s) {', '.join(missing)}. Received: keys "
                f"{', '.join(found) or '(none)'}; the keys are x_train, y_train and "
                "optionally x_test with y_test, and class_names")
    return None


def tfds_problem(dataset, data_dir=None):
    """Whether tensorflow-datasets knows the dataset `dataset` ("mnist",
    "emnist/letters:3.1.0"): in its catalog, which loads no TensorFlow, or
    prepared under `data_dir` (default ~/tensorflow_datasets; a dataset of
    one's own builder is read from there). Whether it is prepared is checked
    when it loads."""
    try:
        import tensorflow_datasets as tfds
        from tensorflow_datasets.core import registered
    except ImportError:
        return None  # the loader says so
    base = dataset.split("/", 1)[0].split(":", 1)[0]
    directory = os.path.expanduser(data_dir or os.path.join("~", "tensorflow_datasets"))
    if os.path.isdir(os.path.join(directory, base)):
        return None
    try:
        tfds.builder_cls(base)
    except registered.DatasetNotFoundError:
        close = difflib.get_close_matches(base, tfds.list_builders(with_community_datasets=False),
                                          n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        return (f"tensorflow-datasets has no dataset {base!r}. Received: {dataset!r}; "
                f"{hint}see the names in the tfds catalog (tfds.list_builders())")
    except Exception:  # pylint: disable=broad-except
        return None  # whatever else tfds raises is reported when the dataset loads
    return None
