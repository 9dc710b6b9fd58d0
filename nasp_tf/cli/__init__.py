"""The command-line layer: the flags of each binary (validated before
TensorFlow loads) and `main`, which dispatches (binary, data family) to a
recipe of `nasp_tf.pipelines` and turns user errors into one line."""
