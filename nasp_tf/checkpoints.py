"""Checkpoints that hold every Keras weight of a model, by its path.

`tf.train.Checkpoint(model=...)` only follows attributes TF can track, and
Keras 3 keeps sublayers in lists TF does not see: such a checkpoint would
silently save a network's classifier and nothing else. Keying every variable
by its Keras path saves them all, and restoring into a model of another
architecture fails loudly instead of half-matching.
"""

import tensorflow as tf


def variables_by_path(layer):
    """{sanitised Keras path: variable} for every weight of `layer`."""
    table = {}
    for variable in layer.weights:
        key = variable.path.replace("/", ".")
        if key in table:
            raise ValueError(f"two weights share the path {variable.path!r}; give the layers "
                             "distinct names")
        table[key] = variable
    return table


def make_checkpoint(layer, **trackables):
    """A tf.train.Checkpoint of all of `layer`'s weights plus `trackables`
    (optimizers, an epoch variable)."""
    return tf.train.Checkpoint(weights=variables_by_path(layer), **trackables)
