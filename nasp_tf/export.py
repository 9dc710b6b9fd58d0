"""SavedModel, .keras and TensorFlow Lite exports of retrained networks:
classifiers of raw images and language models."""

import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from nasp_tf import atomic
from nasp_tf import native_logs


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


# The TensorFlow Lite files bin/train.py --export_tflite writes: float32, and
# int8 dynamic-range quantisation (weights stored in 8 bits, activations in
# float: no calibration data needed, about 4x smaller).
TFLITE_KINDS = {"float32": "model.tflite", "int8_dynamic_range": "model_int8.tflite"}


def tflite_classifier(network, mean, std, kind="float32"):
    """The bytes of a TensorFlow Lite model that classifies images.

    Input `images`: float32 [N, H, W, C] in [0, 1] (uint8 pixels / 255; N is
    1 when loaded, `resize_tensor_input` changes it); output: probabilities
    [N, classes]. Normalisation is inside, as in the SavedModel; inference
    mode (no auxiliary head, no drop path).

    Args:
      network: a built `FinalNetwork`.
      mean, std: per-channel normalisation of [0, 1] images.
      kind: "float32", or "int8_dynamic_range" (weights quantised to int8).
    """
    if kind not in TFLITE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(TFLITE_KINDS)}. Received: {kind!r}")
    height, width, channels = network.image_shape
    mean = tf.constant(mean, tf.float32)
    std = tf.constant(std, tf.float32)

    @tf.function(autograph=False, input_signature=[
        tf.TensorSpec([None, height, width, channels], tf.float32, name="images")])
    def classify(images):
        return {"probabilities": tf.nn.softmax(network((images - mean) / std, training=False),
                                               axis=-1)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [classify.get_concrete_function()], network)
    # Freeze the weights into constants (batch norm then folds into the
    # convolutions). The default route through a SavedModel keeps Keras 3's
    # variables as resource variables, which the interpreter leaves
    # uninitialised: every output NaN.
    converter.experimental_lower_to_saved_model = False
    if kind == "int8_dynamic_range":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no dataset: dynamic range
    return converter.convert()


def export_tflite(network, directory, mean, std):
    """Writes every kind of `TFLITE_KINDS` into `directory`; returns {kind: path}."""
    paths = {}
    for kind, name in TFLITE_KINDS.items():
        content = tflite_classifier(network, mean, std, kind)
        paths[kind] = os.path.join(directory, name)
        with atomic.writing(paths[kind]) as tmp:
            with open(tmp, "wb") as f:
                f.write(content)
    return paths


def tflite_interpreter(path=None, content=None, num_threads=None):
    """A TensorFlow Lite interpreter of the file at `path` (or of the bytes
    `content`), tensors allocated; `num_threads` None: the interpreter's
    default."""
    # TF 2.21 warns that tf.lite.Interpreter moves to the ai-edge-litert
    # package (it still runs; that package is not a dependency), and the
    # interpreter prints a line about its CPU delegate from native code.
    with warnings.catch_warnings(), native_logs.quiet_native_stderr():
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_path=path, model_content=content,
                                          num_threads=num_threads)
        interpreter.allocate_tensors()
    return interpreter


def tflite_predict(interpreter, images):
    """The probabilities of a `tflite_classifier` model for `images` ([N, H, W,
    C] floats in [0, 1]), one image per invocation (batch 1, as deployed)."""
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    rows = []
    for image in np.asarray(images, np.float32):
        interpreter.set_tensor(input_index, image[None])
        interpreter.invoke()
        rows.append(interpreter.get_tensor(output_index)[0].copy())
    return np.stack(rows)


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
