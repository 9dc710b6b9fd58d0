"""tf.distribute.MirroredStrategy over two logical CPU devices against one
device, in worker processes (the CPU is split before TensorFlow starts)."""

import json
import os

import pytest


@pytest.fixture(scope="session")
def run_worker(root, run_script):
    def run(name, *args):
        result = run_script(os.path.join(root, "tests", "e2e", name), *args)
        return json.loads(result.stdout.strip().splitlines()[-1])
    return run


def test_mirrored_search_matches_single_device(run_worker):
    # The same global batch (see mirrored_worker.py): the same architecture
    # and the same weights up to rounding.
    report = run_worker("mirrored_worker.py")
    assert report["replicas"] == 2
    assert report["steps"] == 3
    for kind in ("normal", "reduce"):
        assert report[f"abar_equal_{kind}"]
        assert report[f"a_moved_{kind}"] > 0.01
        assert report[f"a_max_diff_{kind}"] < 1e-5
    assert report["weight_max_rel_diff"] < 1e-3


def test_mirrored_retraining_matches_single_device(run_worker):
    # Auxiliary loss and label smoothing on, the same global batch on 1 and 2 replicas.
    report = run_worker("mirrored_worker.py", "train")
    assert report["replicas"] == 2 and report["steps"] == 3
    assert report["moved"] > 1e-3
    assert report["weight_max_rel_diff"] < 1e-3


def test_mirrored_recurrent_search_matches_single_device(run_worker):
    # One global batch whose halves are equal: the same A, weights and
    # per-replica hidden states as one device, up to rounding.
    report = run_worker("mirrored_rnn_worker.py")
    assert report["replicas"] == 2 and report["steps"] == 3
    assert report["a_moved"] > 0.01
    assert report["a_max_diff"] < 1e-5
    assert report["weight_max_rel_diff"] < 1e-3
    assert report["hidden_max_diff"] < 1e-4
    assert report["val_loss_diff"] < 1e-4


def test_mirrored_recurrent_retraining_matches_single_device(run_worker):
    report = run_worker("mirrored_rnn_worker.py", "train")
    assert report["replicas"] == 2 and report["steps"] == 3
    assert report["weight_max_rel_diff"] < 1e-3
    assert report["average_max_rel_diff"] < 1e-3
