"""Run by test_saved_lm_process.py in a fresh process: loads an exported language model
with TensorFlow alone (no nasp_tf, no Keras model code) and runs its serving
signature chunk by chunk, carrying the state."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main(saved_model, inputs, outputs):
    data = np.load(inputs)
    serve = tf.saved_model.load(saved_model).signatures["serve"]
    state = tf.constant(data["state"])
    log_probs = []
    for chunk in np.split(data["tokens"], data["splits"], axis=1):
        result = serve(tokens=tf.constant(chunk, tf.int32), state=state)
        log_probs.append(result["log_probabilities"].numpy())
        state = result["state"]
    np.savez(outputs, log_probs=np.concatenate(log_probs, axis=1), state=state.numpy())


if __name__ == "__main__":
    main(*sys.argv[1:])
