"""The exported classifier: named outputs, uint8 and float images alike."""

import numpy as np
import pytest
import tensorflow as tf

from nasp_tf import export
from nasp_tf import genotype as genotype_lib
from nasp_tf.cnn import model as model_lib


def test_classifier_serves_probabilities_of_uint8_and_float_images(tmp_path):
    network = model_lib.network_cifar(genotype_lib.PUBLISHED["DARTS_V2"], num_classes=3,
                                      channels=4, layers=3, auxiliary=False,
                                      image_shape=(8, 8, 3))
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    served = tf.saved_model.load(export.export_classifier(network, str(tmp_path / "sm"),
                                                          mean, std))
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3)).astype(np.uint8)
    want = tf.nn.softmax(network((images / 255.0 - mean) / std, training=False)).numpy()
    signature = served.signatures["serve"]
    assert list(signature.structured_outputs) == ["probabilities"]
    assert signature.structured_input_signature[1]["images"].dtype == tf.uint8
    results = {
        "uint8": served.serve(images)["probabilities"],
        "float64": served.serve(images / 255.0)["probabilities"],
        "float32": served.serve((images / 255.0).astype(np.float32))["probabilities"],
        "signature": signature(images=tf.constant(images))["probabilities"],
        "float signature": served.signatures["serve_float"](
            images=tf.constant(images / 255.0, tf.float32))["probabilities"],
    }
    for name, probabilities in results.items():
        np.testing.assert_allclose(probabilities.numpy(), want, atol=1e-5, err_msg=name)
    # Floats are never cast to uint8: an image of 0.7s is not the black image.
    grey = served.serve(np.full((1, 8, 8, 3), 0.7))["probabilities"].numpy()
    black = served.serve(np.zeros((1, 8, 8, 3), np.uint8))["probabilities"].numpy()
    assert np.abs(grey - black).max() > 1e-4
    with pytest.raises((TypeError, ValueError)):
        served.serve(images.astype(np.int64))  # no dtype it does not document
