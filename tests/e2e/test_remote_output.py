"""--output_dir on a TensorFlow file system (gs://, s3://, ...): everything a
search and a retraining write goes through `tf.io.gfile`. Tested with
TensorFlow's in-memory `ram://` file system, inside one worker process: the
ram:// run holds the same files, genotype and history as the same search
written to a local directory, resumes from its own checkpoints, retrains
from a genotype read from ram://, and nothing lands in the working
directory (a `./ram:/...` folder was the failure)."""

import json
import os
import re

import pytest

pytestmark = pytest.mark.slow


def local_tree(directory):
    return sorted(os.path.relpath(os.path.join(d, f), directory)
                  for d, _, files in os.walk(directory) for f in files)


def without_event_names(paths):
    # TensorBoard's event files are named by time, host and process.
    return sorted({re.sub(r"events\.out\.tfevents\..*", "events", p) for p in paths})


def test_a_search_and_a_retraining_on_ram_match_the_local_run(tmp_path, root, run_script):
    out = run_script(os.path.join(root, "tests", "e2e", "remote_dir_worker.py"),
                     tmp_path / "local", timeout=600)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["codes"] == [0, 0, 0, 0], out.stderr[-3000:]
    assert report["new_in_cwd"] == ["local"]
    local = str(tmp_path / "local" / "search")
    assert without_event_names(report["search_files"]) == without_event_names(local_tree(local))
    with open(os.path.join(local, "genotype.json")) as f:
        assert report["genotype"] == f.read()
    with open(os.path.join(local, "history.json")) as f:
        assert report["history"] == f.read()
    assert re.findall(r"\((new|resume)\)", report["flags_history"]) == ["new", "resume"]
    assert len(re.findall(r" epoch \d/2 ", report["log"])) == 2
    assert "is finished" in report["log"]
    for name in ("saved_model/saved_model.pb", "model.keras", "results.json", "genotype.json",
                 "checkpoints/checkpoint"):
        assert name in report["train_files"]
    assert report["results"]["genotype_json"] == json.loads(report["genotype"])
    assert 0.0 <= report["results"]["test_top1"] <= 1.0
