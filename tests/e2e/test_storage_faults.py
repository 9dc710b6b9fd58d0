"""Writes the storage refuses: a file-size limit (`ulimit -f`, with SIGXFSZ
ignored so that a write fails with EFBIG as on a full disk) stops a run in
one line with exit code 1, keeps its last complete checkpoint, and the same
command without the limit finishes where an uninterrupted run ends."""

import json
import os
import re
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TINY = ["--dataset=digits", "--max_examples=256", "--batch_size=16", "--init_channels=4",
        "--layers=3", "--deterministic", "--verbose=0"]
SEARCH = [*TINY, "--epochs=2", "--steps_per_epoch=3", "--nodes=1"]
TRAIN = [*TINY, "--genotype=DARTS_V2", "--epochs=1", "--steps_per_epoch=3", "--noauxiliary",
         "--cutout=0"]


def run(root, program, args, limit=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return subprocess.run([sys.executable, os.path.join(root, "bin", program), *args],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600,
                          preexec_fn=limited if limit else None)


def largest(directory, where=lambda path: True):
    sizes = [os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(directory)
             for f in files if where(os.path.join(d, f))]
    return max(sizes)


# absl's and TensorFlow's log lines ("I1204 21:32:01.579346 ...", "2026-12-04 ...: W ...").
LOG_LINE = re.compile(r"^([IWE]\d{4} \d\d:\d\d|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


def check_one_line(result):
    """The run's own words on stderr (log lines aside): one line, no traceback."""
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not LOG_LINE.match(line)]
    assert result.returncode == 1, result.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "cannot write into" in lines[0] and "file too large" in lines[0]
    assert "run the same command again to resume" in lines[0]
    return lines[0]


def test_a_full_disk_at_export_keeps_the_checkpoint_and_the_rerun_exports(tmp_path, root):
    whole = str(tmp_path / "whole")
    assert run(root, "train.py", [*TRAIN, f"--output_dir={whole}"]).returncode == 0
    checkpoint = largest(os.path.join(whole, "checkpoints"))
    export = largest(os.path.join(whole, "saved_model"))
    assert export > checkpoint  # the export's graph outgrows any checkpoint file
    out = str(tmp_path / "limited")
    args = [*TRAIN, f"--output_dir={out}"]
    line = check_one_line(run(root, "train.py", args, limit=(checkpoint + export) // 2))
    assert out in line
    rerun = run(root, "train.py", args)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "is finished" in rerun.stderr
    with open(os.path.join(whole, "results.json")) as a, open(os.path.join(out, "results.json")) as b:
        assert json.load(a)["test_top1"] == json.load(b)["test_top1"]
    assert os.path.isdir(os.path.join(out, "saved_model"))


def test_a_full_disk_during_a_search_stops_it_and_the_rerun_ends_where_an_uninterrupted_one_does(
        tmp_path, root):
    whole = str(tmp_path / "whole")
    assert run(root, "search.py", [*SEARCH, f"--output_dir={whole}"]).returncode == 0
    checkpoint = largest(os.path.join(whole, "checkpoints"), lambda p: ".data-" in p)
    out = str(tmp_path / "limited")
    args = [*SEARCH, f"--output_dir={out}"]
    check_one_line(run(root, "search.py", args, limit=checkpoint // 2))
    rerun = run(root, "search.py", args)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    for name in ("genotype.json", "initial_genotype.json"):
        with open(os.path.join(whole, name)) as a, open(os.path.join(out, name)) as b:
            assert json.load(a) == json.load(b)
    with np.load(os.path.join(whole, "arch", "epoch_002.npz")) as a, \
            np.load(os.path.join(out, "arch", "epoch_002.npz")) as b:
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
