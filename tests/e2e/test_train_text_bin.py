"""bin/train.py on text and bin/compare.py on its run."""

import json
import os

import numpy as np
import pytest

from nasp_tf import genotype as genotype_lib

pytestmark = pytest.mark.slow

TEXT = ["--dataset=synthetic_text", "--rnn_units=8", "--batch_size=8", "--eval_batch_size=4",
        "--verbose=0"]


# Every genotype's count is a unit test (tests/unit/test_rnn_model.py): here
# each shipped config through the binary.
@pytest.mark.parametrize("config,genotype,expected", [
    ("configs/ptb_train.flags", "DARTS_V2", 22960000),
    ("configs/wt2_train.flags", "DARTS_V2", 33127878),
])
def test_dry_run_parameter_counts(run_bin, config, genotype, expected):
    result = run_bin("train.py", f"--flagfile={config}", f"--genotype={genotype}", "--dry_run")
    assert f"parameters: {expected}" in result.stdout.splitlines()


@pytest.fixture(scope="class")
def text_run(tmp_path_factory, run_bin):
    """A short retraining of DARTS_V2 that the tests of a class read."""
    out = str(tmp_path_factory.mktemp("text_train") / "run")
    result = run_bin("train.py", *TEXT, "--genotype=DARTS_V2", "--test_batch_size=2",
                     "--epochs=2", "--steps_per_epoch=4", "--learning_rate=5", "--momentum=0",
                     "--grad_clip=0.25", f"--output_dir={out}")
    return out, result


class TestTextRetraining:
    """Tests that read one short text retraining (on one xdist worker)."""

    def test_bin_train_text_short_run(self, text_run):
        out, result = text_run
        results = json.load(open(os.path.join(out, "results.json")))
        assert np.isfinite(results["test_ppl"]) and results["test_ppl"] < 60
        assert "DARTS_V2: parameters" in result.stdout
        for name in ("saved_model/saved_model.pb", "model.keras", "history.json",
                     "best/weights.index", "flags.txt"):
            assert os.path.exists(os.path.join(out, name)), name
        assert "--rnn_units=8" in open(os.path.join(out, "flags.txt")).read()
        assert genotype_lib.load_rnn_genotype(os.path.join(out, "genotype.json")) == \
            genotype_lib.RNN_PUBLISHED["DARTS_V2"]

    def test_compare_prints_the_run(self, text_run, run_bin, one_line_error, tmp_path):
        out, _ = text_run
        results = json.load(open(os.path.join(out, "results.json")))
        lines = run_bin("compare.py", out).stdout.splitlines()
        assert len(lines) == 2 and lines[0].split()[:2] == ["run", "genotype"]
        row = lines[1].split()
        assert row[0] == out and row[1] == "DARTS_V2"
        assert row[2] == f"{results['parameters']:,d}"
        assert row[-1] == f"{results['test_ppl']:.2f}"
        missing = run_bin("compare.py", tmp_path / "missing", check=False)
        assert "does not exist" in one_line_error(missing, prefix="compare.py")


def test_bin_train_text_unknown_genotype_is_one_line(tmp_path, run_bin, one_line_error):
    bad = run_bin("train.py", "--dataset=synthetic_text", "--genotype=NASP_RNN",
                  f"--output_dir={tmp_path}/bad", check=False)
    line = one_line_error(bad, prefix="train.py")
    assert line.startswith("train.py: error: unknown recurrent genotype")


def test_bin_train_text_mirrored_over_two_cpu_devices_matches_one_device(tmp_path, run_bin):
    results = {}
    for strategy, devices in (("mirrored", 2), ("default", 0)):
        out = str(tmp_path / strategy)
        run_bin("train.py", *TEXT, "--genotype=DARTS_V1", "--test_batch_size=1",
                "--max_tokens=1000", "--epochs=2", "--steps_per_epoch=3",
                f"--strategy={strategy}", f"--cpu_devices={devices}", "--deterministic",
                f"--output_dir={out}")
        results[strategy] = json.load(open(os.path.join(out, "results.json")))
    # The same global batch on two replicas: the same training, to rounding
    # (a gradient not summed over the replicas, or summed twice, is far off).
    for key in ("valid_loss", "test_loss"):
        assert results["mirrored"][key] == pytest.approx(results["default"][key], rel=1e-3)
