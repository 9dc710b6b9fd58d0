"""--strategy=multi_worker: two workers started by bin/launch.py (one CPU
each) against one process with the same global batch."""

import os

import numpy as np


def test_two_workers_match_one_process(tmp_path, root, run_script):
    worker = os.path.join(root, "tests", "e2e", "multi_worker_worker.py")
    two, one = str(tmp_path / "two.npz"), str(tmp_path / "one.npz")
    run_script(os.path.join(root, "bin", "launch.py"), "--workers=2", "--", worker, two,
               "multi_worker")
    run_script(worker, one, "default")
    first, second = np.load(one), np.load(two)
    assert int(second["replicas"]) == 2 and int(first["replicas"]) == 1
    assert int(first["steps"]) == int(second["steps"]) == 3
    for kind in ("normal", "reduce"):
        np.testing.assert_array_equal(first[f"Abar_{kind}"], second[f"Abar_{kind}"])
        np.testing.assert_allclose(second[f"A_{kind}"], first[f"A_{kind}"], atol=1e-5)
        assert np.abs(first[f"A_{kind}"] - 0.5).max() > 0.01  # A moved
    # The weights: each run's update from the same start agrees. A gradient
    # not summed over the workers, or summed twice, is off by half of it.
    for part in ("search", "train"):
        keys = [k for k in first.files if k.startswith(f"{part}_w")]
        assert keys
        start = {k: first[k.replace("_w", "_start")] for k in keys}
        np.testing.assert_array_equal(start[keys[0]], second[keys[0].replace("_w", "_start")])
        moved = np.sqrt(sum(np.sum((first[k] - start[k]) ** 2) for k in keys))
        apart = np.sqrt(sum(np.sum((first[k] - second[k]) ** 2) for k in keys))
        assert moved > 1e-3 and apart < 0.02 * moved, (part, apart, moved)

