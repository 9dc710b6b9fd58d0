"""Callbacks of recurrent runs: the search history and the per-epoch state reset."""

import keras
import tensorflow as tf

from nasp_tf import callbacks as callbacks_lib


def describe_recurrent(genotype):
    return " ".join(f"{act}({pred})" for act, pred in genotype.recurrent)


class ResetStates(keras.callbacks.Callback):
    """Zeroes the carried hidden states at every epoch's start (the reference
    starts each epoch from zeros)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.model.reset_states()


class RNNSearchHistory(callbacks_lib.SearchHistory):
    """Writes what a recurrent search found after every epoch, and checkpoints it.

    Per epoch: `genotypes/epoch_NNN.json`, `arch/epoch_NNN.npz` (A and Ā),
    TensorBoard images of A and Ā, the genotype as text, the learning rate and
    the perplexities, a checkpoint, and one log line.

    Args:
      run_dir: the run directory.
      checkpoint: `tf.train.Checkpoint` with an `epoch` variable.
      manager: its `tf.train.CheckpointManager`.
      learning_rate: the weight learning rate (constant; for the logs).
      epochs: total epochs (for the log line).
    """

    def __init__(self, run_dir, checkpoint, manager, learning_rate, epochs):
        rate = float(learning_rate)
        super().__init__(run_dir, checkpoint, manager, lambda epoch: rate, epochs)

    def arch_matrices(self):
        return {"recurrent": self.model.arch_numpy()}

    def display_matrix(self, arch_matrix):
        return arch_matrix

    def write_summaries(self, logs):
        for key in ("ppl", "val_ppl", "arch_ppl"):
            if key in logs:
                tf.summary.scalar(f"perplexity/{key}", float(logs[key]))

    def describe(self, genotype):
        return f"recurrent: {describe_recurrent(genotype)}"
