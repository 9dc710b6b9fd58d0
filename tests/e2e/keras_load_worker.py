"""Run by test_keras_load_process.py in a fresh process: reloads .keras files
of nasp_tf networks the way a user would, after a plain `import nasp_tf` and
then Keras, and runs them.

    keras_load_worker.py NETWORK.keras LANGUAGE_MODEL.keras INPUTS.npz

Prints one JSON line: whether `import nasp_tf` alone loaded TensorFlow, the
reloaded classes, and the largest difference of their outputs from the
expected ones in INPUTS.npz.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import nasp_tf  # noqa: E402,F401  (the user's one import)

TF_AT_IMPORT = "tensorflow" in sys.modules

import keras  # noqa: E402
import numpy as np  # noqa: E402


def main(network_file, lm_file, inputs):
    data = np.load(inputs)
    network = keras.saving.load_model(network_file)
    lm = keras.saving.load_model(lm_file)
    logits = network(data["images"], training=False).numpy()
    lm_logits = lm(data["tokens"], data["state"], training=False)[0].numpy()
    print(json.dumps({
        "tf_at_import": TF_AT_IMPORT,
        "classes": [type(network).__name__, type(lm).__name__],
        "network_diff": float(np.abs(logits - data["logits"]).max()),
        "lm_diff": float(np.abs(lm_logits - data["lm_logits"]).max())}))


if __name__ == "__main__":
    main(*sys.argv[1:])
