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


def test_tflite_files_classify_as_the_keras_network(tmp_path):
    # Trained-looking batch-norm statistics, so that TensorFlow Lite's folding
    # of them into the convolutions is exercised, not an identity. C=32: the
    # converter quantises weights of 1,024 elements or more (32x32 1x1 convs).
    network = model_lib.network_cifar(genotype_lib.PUBLISHED["DARTS_V2"], num_classes=5,
                                      channels=32, layers=3, auxiliary=False,
                                      image_shape=(10, 8, 3))
    rng = np.random.default_rng(3)
    for weight in network.non_trainable_weights:
        if "moving_mean" in weight.path:
            weight.assign(rng.normal(0, 0.3, weight.shape).astype(np.float32))
        elif "moving_variance" in weight.path:
            weight.assign(rng.uniform(0.5, 2.0, weight.shape).astype(np.float32))
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    images = rng.random((24, 10, 8, 3), dtype=np.float32)
    want = tf.nn.softmax(network((images - np.float32(mean)) / np.float32(std),
                                 training=False)).numpy()
    assert want.max(axis=1).min() < 0.99  # not saturated: the comparison means something
    paths = export.export_tflite(network, str(tmp_path), mean, std)
    assert sorted(paths) == ["float32", "int8_dynamic_range"]
    sizes = {kind: (tmp_path / export.TFLITE_KINDS[kind]).stat().st_size for kind in paths}
    assert sizes["int8_dynamic_range"] < sizes["float32"]
    got = export.tflite_predict(export.tflite_interpreter(paths["float32"]), images)
    np.testing.assert_allclose(got, want, atol=1e-5)
    quantised = export.tflite_predict(export.tflite_interpreter(paths["int8_dynamic_range"]),
                                      images)
    np.testing.assert_allclose(quantised.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(quantised - want).max() < 0.05
    assert np.mean(quantised.argmax(1) == want.argmax(1)) >= 0.9
    with pytest.raises(ValueError, match="Received: 'int4'"):
        export.tflite_classifier(network, mean, std, "int4")
