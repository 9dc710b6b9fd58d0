"""Callbacks of a search: architecture history, TensorBoard images, checkpoints,
the per-epoch log line, and the NaN guard."""

import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from nasp_tf import genotype as genotype_lib


def matrix_image(matrix, cell=8):
    """A [1, rows*cell, cols*cell, 1] grey image of a matrix in [0, 1]."""
    m = np.clip(np.asarray(matrix, np.float32), 0.0, 1.0)
    return np.kron(m, np.ones((cell, cell), np.float32))[None, :, :, None]


def describe_cell(pairs):
    return " ".join(f"{op}({inp})" for op, inp in pairs)


class SearchHistory(keras.callbacks.Callback):
    """Writes what a search found after every epoch, and checkpoints it.

    Per epoch: `genotypes/epoch_NNN.json`, `arch/epoch_NNN.npz` (A and Ā of
    both cells), TensorBoard images of A and Ā, the genotype as text, the
    learning rate, a checkpoint (weights, A, both optimizers, epoch), and one
    log line.

    Args:
      run_dir: the run directory.
      checkpoint: `tf.train.Checkpoint` with an `epoch` variable.
      manager: its `tf.train.CheckpointManager`.
      learning_rate: callable epoch -> weight learning rate (for the logs).
      epochs: total epochs (for the log line).
    """

    def __init__(self, run_dir, checkpoint, manager, learning_rate, epochs):
        super().__init__()
        self.run_dir = run_dir
        self.checkpoint = checkpoint
        self.manager = manager
        self.learning_rate = learning_rate
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
        arch = self.arch_matrices()
        genotype = self.model.genotype()
        genotype_lib.write_json(
            genotype, os.path.join(self.run_dir, "genotypes", f"epoch_{number:03d}.json"))
        np.savez(os.path.join(self.run_dir, "arch", f"epoch_{number:03d}.npz"),
                 **{f"{name}_{kind}": m for kind, (a, abar) in arch.items()
                    for name, m in (("A", a), ("Abar", abar))})
        with self.writer.as_default(step=number):
            for kind, (a, abar) in arch.items():
                tf.summary.image(f"Abar/{kind}", matrix_image(abar))
                tf.summary.image(f"A/{kind}", matrix_image(self.display_matrix(a)))
            tf.summary.text("genotype", json.dumps(genotype.to_json()))
            tf.summary.scalar("learning_rate", self.learning_rate(epoch))
            self.write_summaries(logs)
        self.writer.flush()
        self.checkpoint.epoch.assign(number)
        self.manager.save(checkpoint_number=number)
        metrics = " ".join(f"{k}={float(v):.4f}" for k, v in sorted(logs.items()))
        logging.info("epoch %d/%d %.1fs %s | %s", number, self.epochs,
                     time.time() - self._start, metrics, self.describe(genotype))

    # What differs between searcher families.

    def arch_matrices(self):
        """{cell kind: (A, Ā)} as numpy arrays."""
        return self.model.arch_numpy()

    def display_matrix(self, arch_matrix):
        return self.model.display_matrix(arch_matrix)

    def write_summaries(self, logs):
        """Extra TensorBoard scalars of the epoch (inside the writer's scope)."""

    def describe(self, genotype):
        return (f"normal: {describe_cell(genotype.normal)} | "
                f"reduce: {describe_cell(genotype.reduce)}")


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where."""

    def __init__(self):
        super().__init__()
        self.failed_at = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for key in ("loss", "arch_loss"):
            if logs and key in logs and not math.isfinite(float(logs[key])):
                self.failed_at = (self._epoch + 1, batch + 1, key)
                self.model.stop_training = True
                return
