"""bin/search.py --search_seeds=K: K searches, each cell retrained briefly on
the training set less a held-out part and scored there, the best one kept,
every score in selection.json. The selection must never read the test set:
bin/train.py --select_split on the same data with another test set
reproduces a seed's score exactly."""

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow

SEARCH = ["--epochs=1", "--steps_per_epoch=3", "--batch_size=16", "--init_channels=4",
          "--layers=3", "--nodes=1", "--space=s2", "--seed=5", "--deterministic", "--verbose=0"]
SELECT_TRAIN = ["--init_channels=4", "--layers=3", "--batch_size=16", "--steps_per_epoch=4",
                "--noauxiliary", "--cutout=0", "--drop_path_prob=0"]


def write_data(path, test_images, test_labels):
    """300 learnable 8x8 training images of 3 classes (brightness by class)."""
    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    x = np.clip(rng.normal(60 + 60 * y[:, None, None, None], 20, (300, 8, 8, 3)), 0, 255)
    np.savez(path, x_train=x.astype(np.uint8), y_train=y, x_test=test_images,
             y_test=test_labels)
    return path


def test_the_best_of_two_seeds_is_chosen_without_reading_the_test_set(tmp_path, run_bin):
    rng = np.random.default_rng(1)
    real = write_data(tmp_path / "real.npz", np.full((30, 8, 8, 3), 120, np.uint8),
                      np.arange(30) % 3)
    other = write_data(tmp_path / "other.npz",
                       rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8),
                       rng.integers(0, 3, 30))
    flagfile = tmp_path / "select.flags"
    flagfile.write_text("\n".join(SELECT_TRAIN) + "\n")
    out = tmp_path / "seeds"
    result = run_bin("search.py", f"--dataset=npz:{real}", *SEARCH, "--search_seeds=2",
                     "--select_epochs=1", f"--train_flagfile={flagfile}", f"--output_dir={out}")
    report = json.loads((out / "selection.json").read_text())
    rows = {row["seed"]: row for row in report["seeds"]}
    assert sorted(rows) == [5, 6]
    best = max(rows.values(), key=lambda row: (row["selection_top1"], -row["selection_loss"]))
    assert report["chosen_seed"] == best["seed"]
    assert f"chosen: seed {best['seed']}" in result.stdout
    assert json.loads((out / "genotype.json").read_text()) == best["genotype"]
    for seed, row in rows.items():
        assert json.loads((out / f"seed_{seed}" / "genotype.json").read_text()) == row["genotype"]
        scored = json.loads((out / f"seed_{seed}" / "select" / "results.json").read_text())
        assert scored["selection_examples"] == 30  # 10 % of 300
        assert not any(key.startswith("test_") for key in scored)
    assert (out / "selection.md").read_text().count("\n| ") == 3  # header and two seeds
    # The selection retraining of seed 5 by hand, on data with another test set.
    again = tmp_path / "again"
    run_bin("train.py", f"--flagfile={flagfile}", f"--dataset=npz:{other}",
            f"--genotype={out / 'seed_5' / 'genotype.json'}", "--select_split=0.1",
            "--epochs=1", "--seed=5", "--deterministic", "--noexport", "--verbose=0",
            f"--output_dir={again}")
    scored = json.loads((again / "results.json").read_text())
    assert scored["selection_top1"] == rows[5]["selection_top1"]
    assert scored["selection_loss"] == rows[5]["selection_loss"]
