"""bin/search.py on text: a recurrent cell on the synthetic corpus."""

import json
import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TEXT = ["--dataset=synthetic_text", "--batch_size=8", "--rnn_units=8", "--verbose=0"]
# A 2-node cell on 1,000 tokens per split: the runs that check wiring, not sizes.
SMALL = ["--rnn_steps=2", "--max_tokens=1000"]


def test_bin_search_on_text_writes_the_run_directory(tmp_path, run_bin):
    out = str(tmp_path / "run")
    result = run_bin("search.py", *TEXT, *SMALL, "--epochs=2", "--steps_per_epoch=3",
                     "--momentum=0", "--learning_rate=20", "--grad_clip=0.25",
                     f"--output_dir={out}")
    with open(os.path.join(out, "genotype.json")) as f:
        data = json.load(f)
    assert data["kind"] == "rnn" and len(data["recurrent"]) == 2
    for name in ("genotypes/epoch_001.json", "genotypes/epoch_002.json",
                 "arch/epoch_002.npz", "cell_recurrent.png", "cell_recurrent.dot",
                 "flags.txt"):
        assert os.path.exists(os.path.join(out, name)), name
    assert os.listdir(os.path.join(out, "tensorboard"))
    assert any(n.startswith("ckpt") for n in os.listdir(os.path.join(out, "checkpoints")))
    assert "--rnn_units=8" in open(os.path.join(out, "flags.txt")).read()
    assert "search valid perplexity" in result.stdout
    # Rerunning it from its flags.txt resumes the finished run: no more
    # epochs, the same genotype.
    result = run_bin("search.py", f"--flagfile={out}/flags.txt")
    assert "is finished" in result.stderr
    with open(os.path.join(out, "genotype.json")) as f:
        assert json.load(f) == data


def test_bin_search_missing_corpus_is_one_line(tmp_path, run_bin, one_line_error):
    result = run_bin("search.py", "--dataset=ptb", f"--data_dir={tmp_path}/nope",
                     f"--output_dir={tmp_path}/run", check=False)
    assert one_line_error(result).startswith("search.py: error: corpus directory")


def test_bin_search_on_text_mirrored_over_two_cpu_devices(tmp_path, run_bin):
    out = str(tmp_path / "run")
    run_bin("search.py", *TEXT, *SMALL, "--epochs=2", "--steps_per_epoch=2",
            "--eval_batch_size=4", "--strategy=mirrored", "--cpu_devices=2",
            f"--output_dir={out}")
    with open(os.path.join(out, "genotype.json")) as f:
        data = json.load(f)
    assert data["kind"] == "rnn" and len(data["recurrent"]) == 2
    assert os.path.exists(os.path.join(out, "genotypes", "epoch_002.json"))


def test_bin_search_on_text_with_first_order_darts(tmp_path, run_bin, one_line_error):
    out = str(tmp_path / "run")
    run_bin("search.py", *TEXT, *SMALL, "--searcher=darts1", "--epochs=1",
            "--steps_per_epoch=2", f"--output_dir={out}")
    matrix = np.load(os.path.join(out, "arch", "epoch_001.npz"))["A_recurrent"]
    assert matrix.shape == (3, 5)  # 1 + 2 rows for 2 nodes; `none` first
    with open(os.path.join(out, "genotype.json")) as f:
        assert all(act != "none" for act, _ in json.load(f)["recurrent"])
    unsupported = run_bin("search.py", "--dataset=synthetic_text", "--searcher=pa",
                          f"--output_dir={tmp_path}/pa", check=False)
    assert "does not search text datasets" in one_line_error(unsupported)
