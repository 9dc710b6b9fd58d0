import json
import os
import subprocess
import sys

from conftest import ROOT

WORKER = os.path.join(ROOT, "tests", "mirrored_rnn_worker.py")


def run_worker(*args):
    result = subprocess.run([sys.executable, WORKER, *args], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_mirrored_recurrent_search_matches_single_device():
    # Two logical CPU devices, one global batch whose halves are equal: the same
    # A, weights and per-replica hidden states as one device, up to rounding.
    report = run_worker()
    assert report["replicas"] == 2 and report["steps"] == 3
    assert report["a_moved"] > 0.01
    assert report["a_max_diff"] < 1e-5
    assert report["weight_max_rel_diff"] < 1e-3
    assert report["hidden_max_diff"] < 1e-4
    assert report["val_loss_diff"] < 1e-4


def test_mirrored_recurrent_retraining_matches_single_device():
    report = run_worker("train")
    assert report["replicas"] == 2 and report["steps"] == 3
    assert report["weight_max_rel_diff"] < 1e-3
    assert report["average_max_rel_diff"] < 1e-3
