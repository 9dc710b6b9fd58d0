"""Keras callbacks of every job: TensorBoard with the epoch's learning rate,
the search history (genotypes, A and Ā, TensorBoard heat maps, checkpoints,
the epoch line), the retraining checkpoint and epoch line, checkpoints
inside epochs, the drop-path
schedule, the averaged-SGD switch of language models, the hidden-state reset,
and the NaN guard.

Every TensorBoard summary of an epoch is written at Keras's step for it: the
0-based epoch index.
"""

import abc
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from nasp_tf import atomic
from nasp_tf import fs
from nasp_tf import genotype as genotype_lib


def describe_cell(pairs):
    return " ".join(f"{op}({inp})" for op, inp in pairs)


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras's TensorBoard callback whose `train/epoch_learning_rate` is the
    weight learning rate each epoch ran at, the run's one learning-rate curve.

    Keras itself reads `model.optimizer.learning_rate` after the epoch, which
    is the schedule at the next epoch's first step; and a searcher's
    `model.optimizer` is the unused default of `Model.compile` (its weight and
    architecture optimizers are its own attributes).

    Args:
      log_dir: the TensorBoard directory.
      learning_rate: callable, 0-based epoch -> the learning rate of its steps.
      **kwargs: arguments of `keras.callbacks.TensorBoard`.
    """

    def __init__(self, log_dir, learning_rate, **kwargs):
        super().__init__(log_dir, **kwargs)
        self.learning_rate = learning_rate
        self._epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        self._epoch = epoch
        super().on_epoch_end(epoch, logs)

    def _collect_learning_rate(self, logs):
        # Keras's hook that adds the rate to the epoch's train scalars.
        logs["learning_rate"] = float(self.learning_rate(self._epoch))
        return logs


class EpochRecord(keras.callbacks.Callback, metaclass=abc.ABCMeta):
    """What a search keeps after every epoch: the files `record` writes, the
    epoch's metrics in `history.json` (a list, one entry per epoch: losses,
    `abar_changes`, ...; an epoch run again after a resume replaces its
    entry), a checkpoint (weights, A, both optimizers, epoch) and one log
    line ending in what `record` returns. An epoch whose loss is not finite
    leaves the last good epoch's files (the NaN guard reports it).

    Args:
      run_dir: the run directory.
      save: callable(epochs done) that checkpoints the run (`Run.save`).
      epochs: total epochs (for the log line).
    """

    # Subdirectories of the run directory that `record` writes into.
    subdirs = ()

    def __init__(self, run_dir, save, epochs):
        super().__init__()
        self.run_dir = run_dir
        self.save = save
        self.epochs = epochs
        for sub in self.subdirs:
            fs.makedirs(fs.join(run_dir, sub))
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.model.stop_training or not all(math.isfinite(float(v)) for v in logs.values()):
            return  # the NaN guard reports it; keep the last good epoch's files
        number = epoch + 1
        described = self.record(number, logs)
        self.write_history(number, logs)
        self.save(number)
        metrics = " ".join(f"{k}={float(v):.4f}" for k, v in sorted(logs.items()))
        logging.info("epoch %d/%d %.1fs %s | %s", number, self.epochs,
                     time.time() - self._start, metrics, described)

    @abc.abstractmethod
    def record(self, number, logs):
        """Writes what epoch `number` (from 1) found; returns it as text."""

    def write_history(self, number, logs):
        path = os.path.join(self.run_dir, "history.json")
        history = []
        if fs.exists(path):
            history = [e for e in json.loads(fs.read_text(path)) if e["epoch"] < number]
        history.append({"epoch": number, **{k: float(v) for k, v in sorted(logs.items())}})
        atomic.write_text(path, json.dumps(history, indent=1))


class SearchHistory(EpochRecord):
    """Writes what a cell search found after every epoch, and checkpoints it
    (`EpochRecord`).

    Per epoch: `genotypes/epoch_NNN.json`, `arch/epoch_NNN.npz` (A and Ā of
    every cell kind: normal and reduce, or recurrent; NNN counts from 1),
    TensorBoard heat maps of A and Ā (rows the edges "j←i" numbered as in the
    genotype JSON, columns the ops), the genotype as text (and the
    perplexities of a language model). The learning rate is `TensorBoard`'s.

    Args:
      run_dir: the run directory.
      save: callable(epochs done) that checkpoints the run (`Run.save`).
      epochs: total epochs (for the log line).
    """

    subdirs = ("genotypes", "arch")

    def __init__(self, run_dir, save, epochs):
        super().__init__(run_dir, save, epochs)
        self.writer = tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard", "arch"))

    def record(self, number, logs):
        arch = self.arch_matrices()
        genotype = self.model.genotype()
        genotype_lib.write_json(
            genotype, os.path.join(self.run_dir, "genotypes", f"epoch_{number:03d}.json"))
        with atomic.writing(os.path.join(self.run_dir, "arch",
                                         f"epoch_{number:03d}.npz")) as tmp:
            np.savez(tmp, **{f"{name}_{kind}": m for kind, (a, abar) in arch.items()
                             for name, m in (("A", a), ("Abar", abar))})
        labels = self.model.arch_labels()
        with self.writer.as_default(step=number - 1):
            for kind, (a, abar) in arch.items():
                rows, cols = labels[kind]
                for tag, matrix in (("Abar", abar), ("A", self.display_matrix(a))):
                    figure = genotype_lib.arch_heatmap(
                        matrix, rows, cols, f"{tag} {kind}, epoch {number}")
                    tf.summary.image(f"{tag}/{kind}", genotype_lib.figure_pixels(figure)[None])
            tf.summary.text("genotype", json.dumps(genotype.to_json()))
            self.write_summaries(logs)
        self.writer.flush()
        return self.describe(genotype)

    def arch_matrices(self):
        """{cell kind: (A, Ā)} as numpy arrays."""
        return self.model.arch_numpy()

    def display_matrix(self, arch_matrix):
        return self.model.display_matrix(arch_matrix)

    def write_summaries(self, logs):
        """Extra TensorBoard scalars of the epoch (inside the writer's scope)."""
        for key in ("ppl", "val_ppl", "arch_ppl"):
            if key in logs:
                tf.summary.scalar(f"perplexity/{key}", float(logs[key]))

    def describe(self, genotype):
        if genotype.kind == "rnn":
            return "recurrent: " + " ".join(f"{act}({pred})" for act, pred in genotype.recurrent)
        return (f"normal: {describe_cell(genotype.normal)} | "
                f"reduce: {describe_cell(genotype.reduce)}")


LOSSES = ("loss", "arch_loss")


def _finite(logs):
    return all(math.isfinite(float(logs[key])) for key in LOSSES if key in (logs or {}))


class ResumableCallback(keras.callbacks.Callback):
    """A callback that knows where in its first epoch a `fit` starts.

    A run resumed from a checkpoint taken inside an epoch finishes that epoch
    in a `fit` of its remaining steps; `Run.fit` sets `first_step` (the steps
    of the first epoch already done) before every `fit`, 0 for whole epochs.
    `step(batch)` is then the 1-based step within the epoch.
    """

    first_step = 0

    def on_train_begin(self, logs=None):
        self._offset = self.first_step
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self._offset = 0

    def step(self, batch):
        return self._offset + batch + 1


class NaNGuard(ResumableCallback):
    """Stops training at the first non-finite loss, or non-finite entry of a
    searcher's architecture matrix A, and remembers where. The callbacks
    that save (after it in the list) save nothing once it has stopped."""

    def __init__(self):
        super().__init__()
        self.failed_at = None

    def on_train_batch_end(self, batch, logs=None):
        for key in LOSSES:
            if logs and key in logs and not math.isfinite(float(logs[key])):
                self._fail(batch, key)
                return
        for variable in getattr(self.model, "arch_vars", {}).values():
            if not np.isfinite(variable.numpy()).all():
                self._fail(batch, "A")
                return

    def _fail(self, batch, key):
        self.failed_at = (self._epoch + 1, self.step(batch), key)
        self.model.stop_training = True


class StepCheckpoint(ResumableCallback):
    """Checkpoints inside epochs (--checkpoint_every): every `every_steps`
    steps of the run, or once `every_seconds` have passed since the last
    checkpoint, whichever is set; the epoch's last step is left to the
    epoch-end checkpoint. Nothing is saved after a non-finite loss.

    Args:
      save: callable(epoch, step) that checkpoints the run (`Run.save`).
      steps_per_epoch: steps of a whole epoch.
      every_steps: save every this many steps (0: not by steps).
      every_seconds: save when this much wall-clock time has passed (0: not by time).
    """

    def __init__(self, save, steps_per_epoch, every_steps=0, every_seconds=0.0):
        super().__init__()
        self.save, self.steps_per_epoch = save, steps_per_epoch
        self.every_steps, self.every_seconds = every_steps, every_seconds
        self._last = time.monotonic()

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._last = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        step = self.step(batch)
        if step >= self.steps_per_epoch or not _finite(logs) or self.model.stop_training:
            return
        due = ((self.every_steps and (self._epoch * self.steps_per_epoch + step)
                % self.every_steps == 0)
               or (self.every_seconds and time.monotonic() - self._last >= self.every_seconds))
        if due:
            self.save(self._epoch, step)
            self._last = time.monotonic()


class ResetStates(ResumableCallback):
    """Zeroes a language model's carried hidden states at every epoch's start
    (the reference starts each epoch from zeros), except at the start of a
    `fit` that finishes an epoch begun before a resume: its states come
    from the checkpoint."""

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        if not self._offset:
            self.model.reset_states()


class DropPathSchedule(keras.callbacks.Callback):
    """Sets the drop-path probability to base * epoch / epochs at each epoch's start."""

    def __init__(self, network, base, epochs):
        super().__init__()
        self.network, self.base, self.epochs = network, base, epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.network.drop_path_probability.assign(self.base * epoch / self.epochs)


class EpochCheckpoint(keras.callbacks.Callback):
    """Retraining: checkpoints every epoch, writes `extras` to TensorBoard
    (`schedule/`) and logs one line with the epoch's learning rate.

    Args:
      save: callable(epochs done) that checkpoints the run (`Run.save`).
      epochs: total epochs (for the log line).
      run_dir: the run directory.
      learning_rate: callable, 0-based epoch -> the learning rate of its steps.
      extras: callable -> {name: number} logged and written each epoch.
    """

    def __init__(self, save, epochs, run_dir, learning_rate, extras=None):
        super().__init__()
        self.save, self.epochs = save, epochs
        self.learning_rate = learning_rate
        self.extras = extras or dict
        self.writer = tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard",
                                                                 "schedule"))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.model.stop_training or not all(math.isfinite(float(v)) for v in logs.values()):
            return  # the NaN guard reports it; keep the last good epoch's checkpoint
        extras = self.extras()
        with self.writer.as_default(step=epoch):
            for name, value in extras.items():
                tf.summary.scalar(name, value)
        self.writer.flush()
        self.save(epoch + 1)
        described = " ".join(f"{k}={v:g}" for k, v in extras.items())
        metrics = " ".join(f"{k}={float(v):.4f}" for k, v in sorted(logs.items()))
        logging.info("epoch %d/%d lr=%.5f %s %s", epoch + 1, self.epochs,
                     self.learning_rate(epoch), described, metrics)


class ASGDSwitch(keras.callbacks.Callback):
    """DARTS's non-monotone switch to averaged SGD, the averaged weights for
    validation, and the best-validation snapshot.

    Validation runs with the averaged weights once averaging is on. At an
    epoch's end: if the validation loss is the best so far, the evaluated
    weights are written to `best/`; then, before averaging is on, if more
    than `nonmono` losses are recorded and this one is worse than the best of
    all but the last `nonmono`, averaging starts.

    Args:
      trainer: the `LMTrainer`.
      best: a `tf.train.Checkpoint` of the model's weights.
      run_dir: the run directory (history.json, best/).
      nonmono: the switch's patience.
      enabled: allow the switch at all.
    """

    def __init__(self, trainer, best, run_dir, nonmono=5, enabled=True):
        super().__init__()
        self.trainer, self.best, self.run_dir = trainer, best, run_dir
        self.nonmono, self.enabled = nonmono, enabled
        self.path = os.path.join(run_dir, "history.json")
        self.state = {"val_losses": [], "best_loss": None, "switched_at": None}
        if fs.exists(self.path):
            self.state.update(json.loads(fs.read_text(self.path)))
        self.writer = tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard",
                                                                 "asgd"))

    def on_test_begin(self, logs=None):
        if self.trainer.is_averaging:
            self.trainer.swap_averages()

    def on_test_end(self, logs=None):
        if self.trainer.is_averaging:
            self.trainer.swap_averages()

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss")
        if loss is None or not math.isfinite(loss):
            return
        losses = self.state["val_losses"]
        # One loss per finished epoch: a run killed after this file was
        # written but before the epoch's checkpoint runs the epoch again.
        del losses[epoch:]
        if self.state["best_loss"] is None or loss < self.state["best_loss"]:
            self.state["best_loss"] = loss
            averaging = self.trainer.is_averaging
            if averaging:
                self.trainer.swap_averages()
            self.best.write(os.path.join(self.run_dir, "best", "weights"))
            if averaging:
                self.trainer.swap_averages()
        if (self.enabled and not self.trainer.is_averaging and len(losses) > self.nonmono
                and loss > min(losses[:-self.nonmono])):
            logging.info("epoch %d: validation stopped improving; switching to averaged SGD",
                         epoch + 1)
            self.trainer.start_averaging()
            self.state["switched_at"] = epoch + 1
        losses.append(loss)
        atomic.write_text(self.path, json.dumps(self.state))
        with self.writer.as_default(step=epoch):
            tf.summary.scalar("averaging", float(self.trainer.is_averaging))
            tf.summary.scalar("perplexity/val", math.exp(min(loss, 50.0)))
        self.writer.flush()
