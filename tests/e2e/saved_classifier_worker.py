"""Run by test_train_bin.py in a fresh process: serves raw uint8 images through
exported SavedModels and compares them with a .keras network.

    saved_classifier_worker.py MODEL.keras SAVED_MODEL [SAVED_MODEL ...]

Prints one JSON line: per SavedModel, the largest difference of its
probabilities from softmax(network(normalised images)) and the largest
deviation of its rows from summing to one.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import nasp_tf  # noqa: E402,F401  (registers FinalNetwork for keras.saving)
from nasp_tf.data import images as images_lib  # noqa: E402


def main(keras_file, *saved_models):
    # bin/train.py --dataset=synthetic normalises with this source's statistics.
    source = images_lib.synthetic_source()
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3)).astype(np.uint8)
    network = keras.saving.load_model(keras_file)
    mean, std = np.array(source.mean), np.array(source.std)
    probs = tf.nn.softmax(network((images / 255.0 - mean) / std, training=False)).numpy()
    report = []
    for path in saved_models:
        loaded = tf.saved_model.load(path)  # keep a reference: it owns the variables
        served = loaded.serve(tf.constant(images))["probabilities"].numpy()
        report.append({"diff": float(np.abs(served - probs).max()),
                       "norm": float(np.abs(served.sum(1) - 1).max())})
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:])
