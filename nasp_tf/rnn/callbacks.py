"""Callbacks of recurrent runs: the search history and the per-epoch state reset."""

import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from nasp_tf import callbacks as callbacks_lib
from nasp_tf import genotype as genotype_lib


def describe_recurrent(genotype):
    return " ".join(f"{act}({pred})" for act, pred in genotype.recurrent)


class ResetStates(keras.callbacks.Callback):
    """Zeroes the carried hidden states at every epoch's start (the reference
    starts each epoch from zeros)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.model.reset_states()


class RNNSearchHistory(keras.callbacks.Callback):
    """Writes what a recurrent search found after every epoch, and checkpoints it.

    Per epoch: `genotypes/epoch_NNN.json`, `arch/epoch_NNN.npz` (A and Ā),
    TensorBoard images of A and Ā, the genotype as text, the learning rate and
    the perplexities, a checkpoint, and one log line.

    Args:
      run_dir: the run directory.
      checkpoint: `tf.train.Checkpoint` with an `epoch` variable.
      manager: its `tf.train.CheckpointManager`.
      learning_rate: the weight learning rate (for the logs).
      epochs: total epochs (for the log line).
    """

    def __init__(self, run_dir, checkpoint, manager, learning_rate, epochs):
        super().__init__()
        self.run_dir = run_dir
        self.checkpoint = checkpoint
        self.manager = manager
        self.learning_rate = float(learning_rate)
        self.epochs = epochs
        for sub in ("genotypes", "arch"):
            os.makedirs(os.path.join(run_dir, sub), exist_ok=True)
        self.writer = tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard", "arch"))
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not all(math.isfinite(float(v)) for v in logs.values()):
            return  # the NaN guard reports it; keep the last good epoch's files
        number = epoch + 1
        matrix, abar = self.model.arch_numpy()
        genotype = self.model.genotype()
        genotype_lib.write_json(
            genotype, os.path.join(self.run_dir, "genotypes", f"epoch_{number:03d}.json"))
        np.savez(os.path.join(self.run_dir, "arch", f"epoch_{number:03d}.npz"),
                 A_recurrent=matrix, Abar_recurrent=abar)
        with self.writer.as_default(step=number):
            tf.summary.image("Abar/recurrent", callbacks_lib.matrix_image(abar))
            tf.summary.image("A/recurrent", callbacks_lib.matrix_image(matrix))
            tf.summary.text("genotype", json.dumps(genotype.to_json()))
            tf.summary.scalar("learning_rate", self.learning_rate)
            for key in ("ppl", "val_ppl", "arch_ppl"):
                if key in logs:
                    tf.summary.scalar(f"perplexity/{key}", float(logs[key]))
        self.writer.flush()
        self.checkpoint.epoch.assign(number)
        self.manager.save(checkpoint_number=number)
        metrics = " ".join(f"{k}={float(v):.4f}" for k, v in sorted(logs.items()))
        logging.info("epoch %d/%d %.1fs %s | recurrent: %s", number, self.epochs,
                     time.time() - self._start, metrics, describe_recurrent(genotype))
