"""SavedModel export of final networks with a raw-image serving signature."""


import keras
import tensorflow as tf

from nasp_tf import atomic


def export_classifier(network, path, mean, std):
    """Writes a SavedModel whose `serve` signature maps uint8 images to probabilities.

    Normalisation is inside the graph, the auxiliary head and drop path are
    absent (inference mode). Load it with `tf.saved_model.load(path)` and call
    `.serve(images)` or `.signatures["serve"](images=images)`.

    Args:
      network: a built `FinalNetwork`.
      path: output directory.
      mean, std: per-channel normalisation of [0, 1] images.
    """
    height, width, channels = network.image_shape
    mean = tf.constant(mean, tf.float32)
    std = tf.constant(std, tf.float32)

    def serve(images):
        x = (tf.cast(images, tf.float32) / 255.0 - mean) / std
        return tf.nn.softmax(network(x, training=False), axis=-1)

    archive = keras.export.ExportArchive()
    archive.track(network)
    archive.add_endpoint(
        name="serve", fn=serve,
        input_signature=[tf.TensorSpec([None, height, width, channels], tf.uint8,
                                        name="images")])
    with atomic.writing(path) as tmp:
        archive.write_out(tmp, verbose=False)
    return path


def save_keras(network, path):
    """The network as a `.keras` file (config + weights); reload with keras.saving."""
    with atomic.writing(path) as tmp:
        network.save(tmp)
    return path


def export_language_model(model, path):
    """Writes a SavedModel whose `serve` signature runs a language model one
    chunk at a time.

    `serve(tokens, state)`: int32 token ids [batch, time] and the state
    [batch, state_size] (zeros to start) -> {"log_probs": next-token
    log-probabilities [batch, time, vocab], "state": the state after the
    chunk, to pass with the next one}. Inference mode: no dropout.

    Args:
      model: a built `RNNModel`.
      path: output directory.
    """

    def serve(tokens, state):
        logits, new_state, _, _ = model(tokens, state, training=False)
        return {"log_probs": tf.nn.log_softmax(logits, axis=-1), "state": new_state}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serve", fn=serve,
        input_signature=[tf.TensorSpec([None, None], tf.int32, name="tokens"),
                         tf.TensorSpec([None, model.cell.state_size], tf.float32,
                                       name="state")])
    with atomic.writing(path) as tmp:
        archive.write_out(tmp, verbose=False)
    return path
