"""The run skeleton every job shares.

A `Run` owns a run directory: it records the flags, builds the tf.distribute
strategy, seeds everything, makes and restores the checkpoint, runs `fit`
with the callbacks every job wants (NaN guard, TensorBoard) and turns a
diverged loss into `RunFailed`.
"""

import logging as std_logging
import os
import random

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from nasp_tf import callbacks as callbacks_lib
from nasp_tf import checkpoints
from nasp_tf import distribute
from nasp_tf.errors import RunFailed


def seed_everything(seed, deterministic):
    """Seeds Python, numpy, TF and Keras; `deterministic` turns on TF op determinism."""
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


_LOG_FILE = {"handler": None}


def _log_to(path):
    """Sends nasp_tf's log lines (epochs, results) to `path` too, appended by
    every invocation, as DARTS's log.txt; a later run in the same process
    takes the place of the earlier one's file."""
    logger = logging.get_absl_logger()
    if _LOG_FILE["handler"] is not None:
        logger.removeHandler(_LOG_FILE["handler"])
        _LOG_FILE["handler"].close()
    handler = std_logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(std_logging.Formatter("%(asctime)s %(message)s"))
    handler.addFilter(lambda record: f"{os.sep}nasp_tf{os.sep}" in record.pathname)
    logger.addHandler(handler)
    _LOG_FILE["handler"] = handler


class Run:
    """One job's run directory and the machinery around `fit`.

    Creating it writes `flags.txt`, builds the strategy and seeds everything.

    Args:
      config: the parsed flags (output_dir, strategy, cpu_devices, seed,
        deterministic, resume, verbose are read here).
      flags_text: the flags as a flagfile, written to `flags.txt`.
    """

    def __init__(self, config, flags_text=""):
        self.config = config
        self.dir = config.output_dir
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "flags.txt"), "w", encoding="utf-8") as f:
            f.write(flags_text)
        _log_to(os.path.join(self.dir, "log.txt"))
        self.strategy = distribute.get_strategy(config.strategy, config.cpu_devices)
        seed_everything(config.seed, config.deterministic)
        self.checkpoint = self.manager = None

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def make_checkpoint(self, layer, **trackables):
        """A checkpoint of every weight of `layer`, an `epoch` counter and
        `trackables` (optimizers), under `checkpoints/` (call inside the
        strategy scope)."""
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.checkpoint = checkpoints.make_checkpoint(layer, epoch=epoch, **trackables)
        self.manager = checkpoints.manager_for(self.checkpoint, self.dir)
        return self.checkpoint

    def initial_epoch(self, resume=None):
        """Restores the latest checkpoint (with --resume, or when `resume` says
        so) and returns the epoch to start from."""
        resume = self.config.resume if resume is None else resume
        epoch = checkpoints.restore_latest(self.checkpoint, self.manager) if resume else 0
        if epoch:
            logging.info("resuming from %s at epoch %d of %d", self.manager.latest_checkpoint,
                         epoch + 1, self.config.epochs)
        return epoch

    def fit(self, model, data, steps, initial_epoch, validation_data, callbacks, learning_rate,
            what="loss"):
        """`model.fit` from `initial_epoch` to --epochs with `callbacks`, the
        NaN guard and TensorBoard (`learning_rate`: callable, 0-based epoch ->
        the weight learning rate of its steps); a non-finite loss ends in
        `RunFailed`."""
        if initial_epoch >= self.config.epochs:
            return
        guard = callbacks_lib.NaNGuard()
        model.fit(data, epochs=self.config.epochs, steps_per_epoch=steps,
                  initial_epoch=initial_epoch, validation_data=validation_data,
                  verbose=self.config.verbose, shuffle=False, callbacks=[
                      guard, *callbacks,
                      callbacks_lib.TensorBoard(self.path("tensorboard"), learning_rate,
                                                write_graph=False)])
        if guard.failed_at:
            epoch_no, step, key = guard.failed_at
            raise RunFailed(
                f"{key} became NaN/inf at epoch {epoch_no}, step {step}; the last good "
                f"epoch's {what} and checkpoint are in {self.dir}: lower --learning_rate "
                "(or --arch_learning_rate) and rerun (it resumes from the checkpoint)")
