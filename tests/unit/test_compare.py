"""nasp_tf.tools.compare: image and text retraining runs in one comparison."""

import json
import os

import pytest

from nasp_tf.tools import compare
from nasp_tf.errors import CompareError


def make_run(tmp_path, name, results):
    run = tmp_path / name
    run.mkdir()
    (run / "results.json").write_text(json.dumps(results))
    return str(run)


def test_image_and_text_runs_side_by_side(tmp_path):
    image = make_run(tmp_path, "train1", {"genotype": "runs/qs/genotype.json",
                                          "parameters": 162512, "test_top1": 0.97643,
                                          "test_top5": 1.0, "test_loss": 0.1})
    text = make_run(tmp_path, "lm", {"genotype": "DARTS_V2", "parameters": 1307564,
                                     "valid_ppl": 469.241, "test_ppl": 470.5})
    lines = compare.table([text, image])
    blank = lines.index("")
    images, texts = lines[:blank], lines[blank + 1:]
    assert images[0].split()[:4] == ["run", "genotype", "parameters", "test"]
    assert images[1].split() == [image, "qs", "162,512", "0.9764"]
    assert texts[0].split()[-4:] == ["valid", "ppl", "test", "ppl"]
    assert texts[1].split() == [text, "DARTS_V2", "1,307,564", "469.24", "470.50"]
    # Text runs alone keep bin/compare.py's table.
    assert [line.split() for line in compare.table([text])] == [line.split() for line in texts]


@pytest.mark.parametrize("results,message", [
    ({"genotype": "NASP", "parameters": 3}, "neither test_top1"),
    ({"genotype": "NASP", "test_top1": 0.5}, "lacks ['parameters']"),
    ({"parameters": 3, "valid_ppl": 1.0, "test_ppl": 1.0}, "lacks ['genotype']"),
])
def test_unusable_results_are_one_line_errors(tmp_path, results, message):
    with pytest.raises(CompareError, match=message.replace("[", r"\[").replace("]", r"\]")):
        compare.table([make_run(tmp_path, "run", results)])
    with pytest.raises(CompareError, match="missing does not exist or is not a directory"):
        compare.table([str(tmp_path / "missing")])
    # A run directory whose retraining has not finished (no results.json yet).
    os.makedirs(tmp_path / "unfinished")
    with pytest.raises(CompareError, match="does not exist: retrain with bin/train.py"):
        compare.table([str(tmp_path / "unfinished")])
