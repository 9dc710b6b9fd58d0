"""Checkpoints that hold every Keras weight of a model, by its path.

`tf.train.Checkpoint(model=...)` only follows attributes TF can track, and
Keras 3 keeps sublayers in lists TF does not see: such a checkpoint would
silently save a network's classifier and nothing else. Keying every variable
by its Keras path saves them all, and restoring into a model of another
architecture fails loudly instead of half-matching.
"""

import os

import tensorflow as tf

from nasp_tf.errors import CheckpointError


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


def manager_for(checkpoint, run_dir):
    return tf.train.CheckpointManager(checkpoint, os.path.join(run_dir, "checkpoints"),
                                      max_to_keep=2)


def restore_latest(checkpoint, manager):
    """Restores the manager's latest checkpoint into `checkpoint` (which has an
    `epoch` variable) and returns that epoch, or 0 when there is none."""
    if not manager.latest_checkpoint:
        return 0
    try:
        checkpoint.restore(manager.latest_checkpoint).assert_consumed()
    except (tf.errors.OpError, AssertionError, ValueError) as e:
        raise CheckpointError(
            f"cannot resume from {manager.latest_checkpoint} ({type(e).__name__}): it was "
            "written for another configuration or is damaged; use another --output_dir "
            "or --noresume") from None
    return int(checkpoint.epoch.numpy())
