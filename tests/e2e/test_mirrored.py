"""tf.distribute.MirroredStrategy over two logical CPU devices against one
device, in one worker process (the CPU is split before TensorFlow starts)."""

import json
import os

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="class")
def reports(root, run_script):
    """{case: report} of mirrored_worker.py's cases, from one process."""
    result = run_script(os.path.join(root, "tests", "e2e", "mirrored_worker.py"))
    return json.loads(result.stdout.strip().splitlines()[-1])


class TestMirrored:
    """The same global batch on 1 and 2 replicas (see mirrored_worker.py)."""

    def test_mirrored_search_matches_single_device(self, reports):
        # The same architecture and the same weights up to rounding.
        report = reports["cnn_search"]
        assert report["replicas"] == 2
        assert report["steps"] == 3
        for kind in ("normal", "reduce"):
            assert report[f"abar_equal_{kind}"]
            assert report[f"a_moved_{kind}"] > 0.01
            assert report[f"a_max_diff_{kind}"] < 1e-5
        assert report["weight_max_rel_diff"] < 1e-3

    def test_mirrored_retraining_matches_single_device(self, reports):
        # Auxiliary loss and label smoothing on.
        report = reports["cnn_train"]
        assert report["replicas"] == 2 and report["steps"] == 3
        assert report["moved"] > 1e-3
        assert report["weight_max_rel_diff"] < 1e-3

    def test_mirrored_recurrent_search_matches_single_device(self, reports):
        # The same A, weights and per-replica hidden states up to rounding.
        report = reports["rnn_search"]
        assert report["replicas"] == 2 and report["steps"] == 3
        assert report["a_moved"] > 0.01
        assert report["a_max_diff"] < 1e-5
        assert report["weight_max_rel_diff"] < 1e-3
        assert report["hidden_max_diff"] < 1e-4
        assert report["val_loss_diff"] < 1e-4

    def test_mirrored_recurrent_retraining_matches_single_device(self, reports):
        report = reports["rnn_train"]
        assert report["replicas"] == 2 and report["steps"] == 3
        assert report["weight_max_rel_diff"] < 1e-3
        assert report["average_max_rel_diff"] < 1e-3

    def test_mirrored_second_order_search_matches_single_device(self, reports):
        # Each replica unrolls on its half: the training gradient and v must be
        # summed over the replicas before w' and r, or A drifts from one
        # device's (each half's gradient is half the global one). A moves by
        # plain SGD, so its change is the gradient itself.
        report = reports["cnn_darts2"]
        assert report["replicas"] == 2 and report["steps"] == 3
        for kind in ("normal", "reduce"):
            assert report[f"decided_{kind}"] >= 1  # Ā compared on the edges not tied
            assert report[f"abar_equal_{kind}"]
            assert report[f"a_moved_{kind}"] > 1e-3
            assert report[f"a_max_diff_{kind}"] < 1e-3 * report[f"a_moved_{kind}"]
        assert report["weight_max_rel_diff"] < 1e-3

    def test_mirrored_recurrent_second_order_search_matches_single_device(self, reports):
        report = reports["rnn_darts2"]
        assert report["replicas"] == 2 and report["steps"] == 3
        assert report["a_moved"] > 1e-3
        assert report["a_max_diff"] < 1e-3 * report["a_moved"]
        assert report["weight_max_rel_diff"] < 1e-3
        assert report["hidden_max_diff"] < 1e-4


def test_on_read_statistics_are_checkpointed_as_their_mean_in_one_read(tmp_path, root,
                                                                     run_script):
    """Batch-norm statistics that differ between two replicas: the checkpoint
    holds each one's mean over the replicas (numpy's), under the keys and with
    the values of TensorFlow's own per-variable checkpoint, and a restore puts
    the mean into every replica's copy."""
    worker = os.path.join(root, "tests", "e2e", "on_read_checkpoint_worker.py")
    ran = run_script(worker, str(tmp_path))
    report = json.loads(ran.stdout.strip().splitlines()[-1])
    assert len(report["packed"]) == 4  # bn1's and bn2's moving mean and variance
    assert report["keys_equal"] and report["values_equal_plain"]
    assert len(report["stats"]) == 4
    for path, found in report["stats"].items():
        assert found["replicas_differed"] > 0.1, path
        assert found["saved_minus_mean"] < 1e-6 and found["restored_minus_mean"] < 1e-6, path
