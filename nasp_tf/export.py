"""SavedModel and .keras exports of retrained networks: classifiers of raw
images and language models."""


import keras
import tensorflow as tf

from nasp_tf import atomic


def export_classifier(network, path, mean, std):
    """Writes a SavedModel that classifies raw images.

    `serve(images)` -> {"probabilities": [N, classes]} takes images [N, H, W,
    C] as uint8 in [0, 255], or as float32 or float64 in [0, 1] (the uint8
    values / 255: a float image x / 255 gets the probabilities of the uint8
    image x). Other dtypes are refused when called (no concrete function
    matches), never cast. The signatures (TF Serving, `signatures[...]`) are
    `serve` (uint8; also `serving_default`) and `serve_float` (float32).
    Normalisation is inside the graph; the auxiliary head and drop path are
    absent (inference mode). Load it with `tf.saved_model.load(path)` and keep
    the returned object while you use it.

    Args:
      network: a built `FinalNetwork`.
      path: output directory.
      mean, std: per-channel normalisation of [0, 1] images.
    """
    height, width, channels = network.image_shape
    mean = tf.constant(mean, tf.float32)
    std = tf.constant(std, tf.float32)

    def classify(scaled):
        logits = network((tf.cast(scaled, tf.float32) - mean) / std, training=False)
        return {"probabilities": tf.nn.softmax(logits, axis=-1)}

    @tf.function(autograph=False)
    def serve(images):
        if images.dtype == tf.uint8:
            return classify(tf.cast(images, tf.float32) / 255.0)
        return classify(images)

    def spec(dtype):
        return tf.TensorSpec([None, height, width, channels], dtype, name="images")

    # One concrete function per accepted dtype, so that a restored `serve`
    # picks the one of its argument instead of casting everything to the
    # first; uint8 first: the `serve` signature is the first trace.
    for dtype in (tf.uint8, tf.float32, tf.float64):
        serve.get_concrete_function(spec(dtype))
    archive = keras.export.ExportArchive()
    archive.track(network)
    archive.add_endpoint(name="serve", fn=serve)
    archive.add_endpoint(name="serve_float", fn=classify, input_signature=[spec(tf.float32)])
    with atomic.writing(path) as tmp:
        archive.write_out(tmp, verbose=False)
    return path


def save_keras(network, path):
    """A `FinalNetwork` or a language model as a `.keras` file (config and
    weights). `keras.saving.load_model(path)` reloads it once nasp_tf is
    imported (before or after Keras).

    Args:
      network: a built `FinalNetwork` or `RNNModel`.
      path: the file to write (ending in .keras).
    """
    with atomic.writing(path) as tmp:
        keras.saving.save_model(network, tmp)
    return path


def export_language_model(model, path):
    """Writes a SavedModel whose `serve` signature runs a language model one
    chunk at a time.

    `serve(tokens, state)`: int32 token ids [batch, time] and the state
    [batch, state_size] (zeros to start) -> {"log_probabilities": next-token
    log-probabilities [batch, time, vocab], "state": the state after the
    chunk, to pass with the next one}. Inference mode: no dropout.

    Args:
      model: a built `RNNModel`.
      path: output directory.
    """

    def serve(tokens, state):
        logits, new_state, _, _ = model(tokens, state, training=False)
        return {"log_probabilities": tf.nn.log_softmax(logits, axis=-1), "state": new_state}

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
