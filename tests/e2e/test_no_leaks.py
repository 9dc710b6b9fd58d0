"""Nothing a search, a checkpoint selection or a schedule looks at is in the
data a result is reported on: each program is run on data whose reported
part was replaced, and what it must not have read is unchanged."""

import json
import os
import shutil

import numpy as np
import pytest

from nasp_tf.data import text

pytestmark = pytest.mark.slow

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "swapped_data_worker.py")
TINY_TEXT = ["--rnn_units=8", "--rnn_steps=2", "--batch_size=4", "--eval_batch_size=64",
             "--bptt=10", "--deterministic", "--verbose=0"]


def shuffled_copy(tmp_path, name, first_half=None):
    """The PTB sample in tmp_path/name with the lines of ptb.test.txt shuffled
    (only those of its first or second half when `first_half` is True or False)."""
    directory = tmp_path / name
    shutil.copytree(text.PTB_SAMPLE_DIR, directory)
    lines = (directory / text.PTB_SAMPLE_TEST).read_text().splitlines()
    half = len(lines) // 2
    lo, hi = {None: (0, len(lines)), True: (0, half), False: (half, len(lines))}[first_half]
    part = lines[lo:hi]
    np.random.default_rng(0).shuffle(part)
    lines[lo:hi] = part
    (directory / text.PTB_SAMPLE_TEST).write_text("\n".join(lines) + "\n")
    return str(directory)


def arch_matrices(run_dir):
    with np.load(os.path.join(run_dir, "arch", "epoch_001.npz")) as data:
        return {k: data[k] for k in data.files}


def test_the_text_search_never_reads_the_test_text(tmp_path, run_script):
    runs = {}
    for name, directory in (("shipped", text.PTB_SAMPLE_DIR),
                            ("shuffled", shuffled_copy(tmp_path, "ptb"))):
        out = str(tmp_path / name)
        run_script(WORKER, "ptb", directory, "search", "--dataset=ptb_sample", *TINY_TEXT,
                   "--epochs=1", "--steps_per_epoch=4", f"--output_dir={out}")
        runs[name] = out
    genotypes = [json.loads(open(os.path.join(r, "genotype.json")).read())
                 for r in runs.values()]
    assert genotypes[0] == genotypes[1]
    shipped, shuffled = (arch_matrices(r) for r in runs.values())
    for key in shipped:
        np.testing.assert_allclose(shipped[key], shuffled[key], atol=1e-6)


def test_text_retraining_selects_on_one_half_of_the_test_text_and_reports_the_other(
        tmp_path, run_script):
    # Batches of 4 in validation and test: this tiny model's loss hardly depends on
    # the order of the text, and with batches of 64 the shuffled half's test loss
    # came out equal to the shipped one's.
    # The first 5,000 tokens of each split (cut after the test text is halved).
    flags = ["--dataset=ptb_sample", "--genotype=DARTS_V2", *TINY_TEXT, "--eval_batch_size=4",
             "--test_batch_size=4", "--max_tokens=5000",
             "--epochs=2", "--steps_per_epoch=4", "--noexport"]
    results = {}
    for name, first_half in (("shipped", None), ("reported_half", False),
                             ("selection_half", True)):
        directory = (text.PTB_SAMPLE_DIR if name == "shipped"
                     else shuffled_copy(tmp_path, f"ptb_{name}", first_half))
        out = str(tmp_path / name)
        run_script(WORKER, "ptb", directory, "train", *flags, f"--output_dir={out}")
        with open(os.path.join(out, "results.json")) as f:
            results[name] = json.load(f)
    shipped, reported, selection = (results[k] for k in ("shipped", "reported_half",
                                                        "selection_half"))
    # The reported half's order changes the test perplexity only.
    assert reported["valid_loss"] == shipped["valid_loss"]
    assert reported["test_loss"] != shipped["test_loss"]
    # The selection half is what validates.
    assert selection["valid_loss"] != shipped["valid_loss"]


@pytest.mark.parametrize("dataset, reported", [("digits", 1500), ("digits_search", 797)])
def test_image_searches_never_read_the_images_results_are_reported_on(
        tmp_path, run_script, dataset, reported):
    runs = []
    for first_noise in (1797, reported):  # 1797: nothing replaced
        out = str(tmp_path / f"run_{first_noise}")
        run_script(WORKER, "digits", first_noise, "search", f"--dataset={dataset}",
                   "--epochs=1", "--steps_per_epoch=3", "--batch_size=16", "--init_channels=4",
                   "--layers=3", "--nodes=1", "--space=s2", "--deterministic", "--verbose=0",
                   f"--output_dir={out}")
        runs.append(out)
    genotypes = [json.loads(open(os.path.join(r, "genotype.json")).read()) for r in runs]
    assert genotypes[0] == genotypes[1]
    first, second = (arch_matrices(r) for r in runs)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
