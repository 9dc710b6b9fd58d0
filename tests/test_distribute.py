import json
import os
import subprocess
import sys

from conftest import ROOT

WORKER = os.path.join(ROOT, "tests", "mirrored_worker.py")


def run_worker(*args):
    result = subprocess.run([sys.executable, WORKER, *args], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_mirrored_retraining_matches_single_device():
    # Auxiliary loss and label smoothing on, the same global batch on 1 and 2 replicas.
    report = run_worker("train")
    assert report["replicas"] == 2 and report["steps"] == 3
    assert report["moved"] > 1e-3
    assert report["weight_max_rel_diff"] < 1e-3


def test_mirrored_search_matches_single_device():
    # Two logical CPU devices, the same global batch (see mirrored_worker.py):
    # the same architecture and the same weights up to rounding.
    report = run_worker()
    assert report["replicas"] == 2
    assert report["steps"] == 3
    for kind in ("normal", "reduce"):
        assert report[f"abar_equal_{kind}"]
        assert report[f"a_moved_{kind}"] > 0.01
        assert report[f"a_max_diff_{kind}"] < 1e-5
    assert report["weight_max_rel_diff"] < 1e-3
