"""Writes the storage refuses: a file-size limit (`ulimit -f`, with SIGXFSZ
ignored so that a write fails with EFBIG as on a full disk), or a run
directory made read-only while the run writes into it, stops a run in one
line with exit code 1, keeps its last complete checkpoint, and the same
command once the storage takes writes again finishes where an uninterrupted
run ends."""

import json
import os
import re
import subprocess

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TINY = ["--dataset=digits", "--max_examples=256", "--batch_size=16", "--init_channels=4",
        "--layers=3", "--deterministic", "--verbose=0"]
SEARCH = [*TINY, "--epochs=2", "--steps_per_epoch=10", "--nodes=1", "--space=s2",
          "--checkpoint_every=1"]
TRAIN = [*TINY, "--genotype=DARTS_V2", "--epochs=1", "--steps_per_epoch=3", "--noauxiliary",
         "--cutout=0"]


@pytest.fixture
def run(root, run_script):
    """run(program, args, limit=None): bin/`program` with each file it writes
    limited to `limit` bytes."""

    def run(program, args, limit=None):
        return run_script(os.path.join(root, "bin", program), *args, check=False,
                          fsize=limit)

    return run


def largest(directory, where=lambda path: True):
    sizes = [os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(directory)
             for f in files if where(os.path.join(d, f))]
    return max(sizes)


# absl's and TensorFlow's log lines ("I1204 21:32:01.579346 ...", "2026-12-04 ...: W ...").
LOG_LINE = re.compile(r"^([IWE]\d{4} \d\d:\d\d|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


def check_one_line(result, reason="file too large"):
    """The run's own words on stderr (log lines aside): one line, no traceback."""
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not LOG_LINE.match(line)]
    assert result.returncode == 1, result.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "cannot write into" in lines[0] and reason in lines[0]
    assert "run the same command again to resume" in lines[0]
    return lines[0]


def test_a_full_disk_at_export_keeps_the_checkpoint_and_the_rerun_exports(tmp_path, run):
    whole = str(tmp_path / "whole")
    assert run("train.py", [*TRAIN, f"--output_dir={whole}"]).returncode == 0
    checkpoint = largest(os.path.join(whole, "checkpoints"))
    export = largest(os.path.join(whole, "saved_model"))
    assert export > checkpoint  # the export's graph outgrows any checkpoint file
    out = str(tmp_path / "limited")
    args = [*TRAIN, f"--output_dir={out}"]
    line = check_one_line(run("train.py", args, limit=(checkpoint + export) // 2))
    assert out in line
    rerun = run("train.py", args)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "is finished" in rerun.stderr
    with open(os.path.join(whole, "results.json")) as a, open(os.path.join(out, "results.json")) as b:
        assert json.load(a)["test_top1"] == json.load(b)["test_top1"]
    assert os.path.isdir(os.path.join(out, "saved_model"))


def _set_tree_mode(top, directories, files):
    for directory, _, names in os.walk(top):
        os.chmod(directory, directories)
        for name in names:
            os.chmod(os.path.join(directory, name), files)


def same_search(first, second):
    for name in ("genotype.json", "initial_genotype.json"):
        with open(os.path.join(first, name)) as a, open(os.path.join(second, name)) as b:
            assert json.load(a) == json.load(b)
    for epoch in (1, 2):
        with np.load(os.path.join(first, "arch", f"epoch_{epoch:03d}.npz")) as a, \
                np.load(os.path.join(second, "arch", f"epoch_{epoch:03d}.npz")) as b:
            assert sorted(a.files) == sorted(b.files)
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key])


@pytest.fixture(scope="class")
def whole_search(tmp_path_factory, root, run_script):
    """An uninterrupted search, the reference of the class's faulty ones."""
    whole = str(tmp_path_factory.mktemp("whole"))
    run_script(os.path.join(root, "bin", "search.py"), *SEARCH, f"--output_dir={whole}")
    return whole


class TestSearchStorage:
    """A search whose writes the storage refuses ends, once it takes them
    again, where an uninterrupted one does."""

    def test_a_full_disk_stops_it_and_the_rerun_ends_where_an_uninterrupted_one_does(
            self, tmp_path, run, whole_search):
        checkpoint = largest(os.path.join(whole_search, "checkpoints"),
                             lambda p: ".data-" in p)
        out = str(tmp_path / "limited")
        args = [*SEARCH, f"--output_dir={out}"]
        check_one_line(run("search.py", args, limit=checkpoint // 2))
        rerun = run("search.py", args)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        same_search(whole_search, out)

    def test_its_directory_made_read_only_mid_run_stops_it_and_the_rerun_resumes(
            self, tmp_path, run, start_bin, whole_search):
        import glob
        import time

        out = str(tmp_path / "read_only")
        command = [*SEARCH, f"--output_dir={out}"]
        process = start_bin("search.py", *command, drop_dac_override=True)
        deadline = time.time() + 300
        while not glob.glob(os.path.join(out, "checkpoints", "ckpt-2.index")):
            assert process.poll() is None and time.time() < deadline, process.stderr.read()
            time.sleep(0.01)
        _set_tree_mode(out, 0o555, 0o444)
        try:
            process.wait(timeout=300)
            stderr = process.stderr.read().decode(errors="replace")
        finally:
            _set_tree_mode(out, 0o755, 0o644)
        result = subprocess.CompletedProcess(command, process.returncode, "", stderr)
        line = check_one_line(result, "permission denied")
        assert out in line and "make the directory writable" in line
        assert not os.path.exists(os.path.join(out, "genotype.json"))
        rerun = run("search.py", [*SEARCH, f"--output_dir={out}"])
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert "resuming from" in rerun.stderr
        same_search(whole_search, out)
