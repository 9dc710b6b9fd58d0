"""bin/search.py and bin/train.py on the user's own images: a folder of class
subfolders searched and retrained, and one-line errors for an unusable npz
and a missing folder. The loaders' cases (and the other errors) are in
tests/unit/test_user_images.py."""

import json

import numpy as np
import pytest
from PIL import Image  # matplotlib's dependency, so always installed

from nasp_tf import genotype as genotype_lib

pytestmark = pytest.mark.slow

# The cheapest search and retraining: one-node cells, 3 cells of 4 channels,
# two steps of batch 4 on 8x8 images.
TINY = ["--epochs=1", "--steps_per_epoch=2", "--batch_size=4", "--init_channels=4",
        "--layers=3", "--verbose=0"]
TINY_SEARCH = TINY + ["--nodes=1", "--space=s2", "--seed=5"]
TINY_TRAIN = TINY + ["--noauxiliary", "--cutout=0"]


def write_class_folders(root, classes, count=8, size=8):
    """`count` random size x size PNGs in root/<class>/ for each class."""
    rng = np.random.default_rng(0)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(count):
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(image).save(root / cls / f"{i}.png")
    return root


@pytest.fixture(scope="class")
def folder_run(tmp_path_factory, run_bin):
    """A tiny search on a folder of 3 classes x 8 PNGs, then a tiny retraining
    of its genotype on the same folder (the tests of the class only read them)."""
    base = tmp_path_factory.mktemp("own")
    data = write_class_folders(base / "pictures", ("ant", "bee", "cat"))
    search, train = base / "search", base / "train"
    run_bin("search.py", f"--dataset=folder:{data}", *TINY_SEARCH, f"--output_dir={search}")
    result = run_bin("train.py", f"--dataset=folder:{data}", *TINY_TRAIN,
                     f"--genotype={search / 'genotype.json'}", f"--output_dir={train}")
    return base, search, train, result


class TestOwnFolder:
    """A search and a retraining on a folder of images (on one xdist worker)."""

    def test_search_writes_a_genotype(self, folder_run):
        _, search, _, _ = folder_run
        genotype = genotype_lib.load_cnn_genotype(str(search / "genotype.json"))
        assert len(genotype.normal) == 2 and len(genotype.reduce) == 2  # 1 node x 2 edges
        assert "--dataset=folder:" in (search / "flags.txt").read_text()
        # 24 images: 2 held out for testing, 11 + 11 for the weights and A.
        assert "22 training and 2 test images of 8x8x3, 3 classes" in \
            (search / "log.txt").read_text()

    def test_retraining_reports_and_exports(self, folder_run):
        _, search, train, result = folder_run
        assert "test top-1:" in result.stdout
        results = json.loads((train / "results.json").read_text())
        assert results["class_names"] == ["ant", "bee", "cat"]
        assert 0.0 <= results["test_top1"] <= 1.0 and results["parameters"] > 0
        assert results["genotype_json"] == json.loads((search / "genotype.json").read_text())
        assert (train / "saved_model").is_dir() and (train / "model.keras").is_file()


def test_npz_with_more_labels_than_images_is_one_line(tmp_path, run_bin, one_line_error):
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=np.zeros((6, 8, 8, 3), np.uint8), y_train=np.arange(7) % 2)
    result = run_bin("train.py", f"--dataset=npz:{path}", *TINY_TRAIN, "--genotype=NASP",
                     f"--output_dir={tmp_path / 'run'}", check=False)
    line = one_line_error(result, prefix="train.py")
    assert "Received: 6 images and 7 labels" in line


def test_missing_folder_is_refused_with_the_flags(tmp_path, run_bin, one_line_error):
    # Checked when the flags are parsed, before TensorFlow loads.
    result = run_bin("search.py", f"--dataset=folder:{tmp_path / 'none'}",
                     f"--output_dir={tmp_path / 'run'}", check=False)
    line = one_line_error(result)
    assert "does not exist" in line and "none" in line
