"""The run skeleton every job shares.

A `Run` owns a run directory: it records the flags, builds the tf.distribute
strategy, seeds everything, makes and restores the checkpoint, runs `fit`
with the callbacks every job wants (NaN guard, TensorBoard) and turns a
diverged loss into `RunFailed`.
"""

import atexit
import json
import logging as std_logging
import logging.handlers  # noqa: F401 - std_logging.handlers
import os
import random
import shutil
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from nasp_tf import atomic
from nasp_tf import callbacks as callbacks_lib
from nasp_tf import checkpoints
from nasp_tf import distribute
from nasp_tf import export
from nasp_tf import fs
from nasp_tf import genotype as genotype_lib
from nasp_tf.genotype import files as genotype_files
from nasp_tf import precision
from nasp_tf import optimizers
from nasp_tf import run_dir
from nasp_tf.errors import RunFailed, UserError


def seed_everything(seed, deterministic):
    """Seeds Python, numpy, TF and Keras; `deterministic` turns on TF op determinism."""
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


_LOG_FILE = {"handler": None}


def _from_nasp_tf(record):
    return f"{os.sep}nasp_tf{os.sep}" in record.pathname


def _hold_log():
    """Holds nasp_tf's log lines in memory until the run directory is claimed
    (`log_to`): nothing is written before the inputs are validated, and the
    file still gets the lines of the data loading."""
    logger = logging.get_absl_logger()
    if _LOG_FILE["handler"] is not None:
        logger.removeHandler(_LOG_FILE["handler"])
        _LOG_FILE["handler"].close()
    held = std_logging.handlers.MemoryHandler(capacity=10_000,
                                              flushLevel=std_logging.CRITICAL + 1)
    held.addFilter(_from_nasp_tf)
    logger.addHandler(held)
    _LOG_FILE["handler"] = held


class _AppendHandler(std_logging.StreamHandler):
    """A log handler appending to a file on any file system (`nasp_tf.fs`)."""

    def __init__(self, path):
        super().__init__(fs.open_append(path))

    def close(self):
        try:
            self.flush()
            self.stream.close()
        finally:
            super().close()


def log_to(path):
    """Sends nasp_tf's log lines (epochs, results) to `path` too, appended by
    every invocation, as DARTS's log.txt, starting with the lines held since
    the run began; a later run in the same process takes the place of the
    earlier one's file."""
    logger = logging.get_absl_logger()
    handler = _AppendHandler(path)
    handler.setFormatter(std_logging.Formatter("%(asctime)s %(message)s"))
    handler.addFilter(_from_nasp_tf)
    held = _LOG_FILE["handler"]
    if held is not None:
        logger.removeHandler(held)
        if isinstance(held, std_logging.handlers.MemoryHandler):
            held.setTarget(handler)
            held.flush()
        held.close()
    logger.addHandler(handler)
    _LOG_FILE["handler"] = handler


def search_optimizers(config, searcher_class, steps_per_epoch):
    """(weight optimizer, arch optimizer, weight schedule) of a search: the
    reference's SGD on a per-epoch cosine and `searcher_class`'s optimizer of
    A. The schedule steps before each epoch, as the reference's scheduler, so
    that a search reproduces its rates epoch by epoch."""
    schedule = optimizers.EpochCosineDecay(config.learning_rate, config.learning_rate_min,
                                           config.epochs, steps_per_epoch, offset=1)
    return (optimizers.TorchSGD(schedule, config.momentum, config.weight_decay),
            searcher_class.arch_optimizer_for(config, steps_per_epoch), schedule)


# --on_nan=restore goes back to the last good checkpoint at most this often.
MAX_RESTORES = 3


def strategy_for(config):
    """The dtype policy, the strategy and the seeds of a job that writes no run
    directory (a dry run): what `Run` sets up, without the directory."""
    precision.set_policy(config.mixed_precision)
    strategy = distribute.get_strategy(config.strategy, config.cpu_devices)
    seed_everything(config.seed, config.deterministic)
    return strategy


class Run:
    """One job's run directory and the machinery around `fit`.

    Creating it decides what the job may do with its directory
    (`nasp_tf.run_dir.plan`: new, exact resume or --overwrite), builds the
    strategy and seeds everything, but writes nothing: the directory is
    claimed (flags.txt, the flags history, log.txt) by `resume`, once
    the data, the model and the checkpoint have loaded, so a command that
    fails on its inputs leaves every existing file as it was.

    On a cluster (--strategy=multi_worker) every worker runs the same job;
    the chief owns the run directory. The other workers restore from the
    chief's checkpoints and write what they must (their checkpoints, logs,
    outputs) to a temporary directory of their own, removed when they end,
    as TensorFlow's multi-worker checkpointing does.

    Args:
      config: the job's config (`nasp_tf.config`; its `RunSettings` and
        `epochs` are read here).
      flags_text: the flags as a flagfile, written to `flags.txt`.
      export_only: retraining's --export_only (the run must have a checkpoint).
    """

    def __init__(self, config, flags_text="", export_only=False):
        self.config = config
        # Where checkpoints are restored from: the chief's run directory.
        self.source = config.output_dir
        self.flags_text = flags_text
        _hold_log()
        self.decision = run_dir.plan(self.source, flags_text,
                                     run_dir.resumes(config.resume, export_only),
                                     config.overwrite)
        if export_only and not (
                self.decision == run_dir.RESUME and checkpoints.exists(self.source)):
            raise UserError(f"--export_only: no checkpoint in "
                            f"{os.path.join(self.source, 'checkpoints')}; train first")
        self.worker, self.is_chief = (distribute.worker_role()
                                      if config.strategy == "multi_worker" else (0, True))
        self.dir = self.source
        if not self.is_chief:
            self.dir = tempfile.mkdtemp(prefix=f"nasp_tf_worker{self.worker}_")
            atexit.register(shutil.rmtree, self.dir, ignore_errors=True)
        # Before any model is built: layers take the policy when they are made.
        precision.set_policy(config.mixed_precision)
        self.strategy = distribute.get_strategy(config.strategy, config.cpu_devices)
        self.cluster = distribute.is_cluster(self.strategy)
        if self.cluster:  # the chief's initial values come in `resume`, packed
            distribute.create_variables_locally(self.strategy)
        seed_everything(config.seed, config.deterministic)
        self.checkpoint = self.manager = None
        self.optimizers = []
        self.steps, self.initial_epoch, self.initial_step = 1, 0, 0
        self._claimed = False

    def claim(self):
        """Writes this invocation into the run directory (once): the old run
        moved aside with --overwrite, flags.txt, flags_history.txt, log.txt.
        A worker other than the chief writes its log to its own directory."""
        if self._claimed:
            return
        moved = None
        if self.is_chief:
            moved = run_dir.commit(self.dir, self.decision, self.flags_text,
                                   os.path.basename(sys.argv[0]) or "nasp_tf")
        log_to(self.path("log.txt"))
        if moved:
            logging.info("--overwrite: the earlier run in %s is now in %s", self.dir, moved)
        if self.config.strategy == "multi_worker":
            logging.info("worker %d of %d%s", self.worker,
                         self.strategy.extended._num_workers if hasattr(
                             self.strategy.extended, "_num_workers") else 0,
                         " (chief: writes the run directory)" if self.is_chief
                         else f" (writes nothing the user sees; scratch {self.dir})")
        self._claimed = True

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def resume(self, layer, **trackables):
        """Makes the checkpoint of every weight of `layer`, the position reached
        (epoch, step) and `trackables` (optimizers); restores the newest
        intact one of an exact resume; claims the run directory; returns the
        epoch to start from (`initial_step`: the steps of it already done,
        when the checkpoint was taken inside it). Call it once, after building
        `layer` (and its optimizers) in the strategy scope, before `fit` or
        `save`."""
        if self.checkpoint is not None:
            raise RuntimeError("Run.resume is called once per run")
        with self.strategy.scope():
            self.checkpoint = checkpoints.make_checkpoint(layer, **trackables)
        self.optimizers = [t for t in trackables.values()
                           if isinstance(t, keras.optimizers.Optimizer)]
        if self.cluster:
            distribute.broadcast_from_chief(
                self.strategy, [*layer.variables, *(v for t in self.optimizers
                                                    for v in t.variables)], self.is_chief)
        epoch, step, restored = 0, 0, None
        if self.decision == run_dir.RESUME:
            epoch, step, restored = checkpoints.restore_latest(self.checkpoint, self.source)
        self.claim()
        self.manager = checkpoints.manager_for(self.checkpoint, self.dir)
        if self.decision != run_dir.RESUME or restored is None:
            # The state before any step: a NaN in the first epoch can go back to it.
            self.manager.save(checkpoint_number=0)
        self.initial_epoch, self.initial_step = epoch, step
        if epoch >= self.config.epochs:
            logging.info("the run in %s is finished (%s, epoch %d of %d): writing its outputs",
                         self.dir, restored, epoch, self.config.epochs)
        elif epoch or step:
            logging.info("resuming from %s at epoch %d of %d%s", restored, epoch + 1,
                         self.config.epochs, f", step {step + 1}" if step else "")
        return epoch

    @property
    def finished(self):
        """Whether the resumed run had done all its epochs already."""
        return self.initial_epoch >= self.config.epochs

    def keep_initial_genotype(self, genotype):
        """Writes `initial_genotype.json`, the genotype of the architecture a
        search starts from (take it from the searcher before `resume` restores
        a checkpoint; call this after), unless a first invocation of this run
        already wrote it: a search that returns its start is visible next to
        `genotype.json`."""
        if not self._claimed:
            raise RuntimeError("call Run.resume before keep_initial_genotype")
        path = self.path("initial_genotype.json")
        if not fs.exists(path):
            genotype_lib.write_json(genotype, path)
        logging.info("initial genotype: %s", genotype.to_json())

    def note_collapse(self, genotype):
        """Warns in one line, and in `warnings.txt`, when the genotype found
        looks collapsed (`genotype.files.collapse_note`)."""
        note = genotype_files.collapse_note(genotype)
        if note:
            logging.warning("%s", note)
            atomic.write_text(self.path("warnings.txt"), note + "\n")

    def write_results(self, results, line):
        """Writes `results` to results.json (atomically) and prints `line`."""
        atomic.write_text(self.path("results.json"), json.dumps(results, indent=1))
        print(line)

    def export(self, model, write_saved_model):
        """`write_saved_model(directory)` into saved_model/, and `model` as
        model.keras."""
        write_saved_model(self.path("saved_model"))
        export.save_keras(model, self.path("model.keras"))
        logging.info("exported %s and %s", self.path("saved_model"), self.path("model.keras"))

    def save(self, epoch, step=0):
        """Checkpoints the run at `step` steps into epoch `epoch` (0: its
        start), numbered by the steps done so far (`ckpt-N`)."""
        self.checkpoint.epoch.assign(epoch)
        self.checkpoint.step.assign(step)
        self.manager.save(checkpoint_number=epoch * self.steps + step)

    def fit(self, model, data, steps, validation_data, callbacks, learning_rate, what="loss"):
        """`model.fit` from the resumed epoch (and `initial_step` into it) to
        --epochs with `callbacks`, the NaN guard, checkpoints inside epochs
        (--checkpoint_every) and TensorBoard.

        Args:
          data: a function (epoch, step) -> the training dataset from that
            step of that epoch on (a resumed run, or one that goes back to a
            checkpoint, starts there).
          learning_rate: function 0-based epoch -> the weight learning rate
            of its steps, for TensorBoard.

        A run resumed inside an epoch first finishes that epoch in a `fit` of
        its remaining steps (the epoch line then averages those steps only).
        A non-finite loss ends in `RunFailed`, or with --on_nan=restore (at
        most `MAX_RESTORES` times) the last good checkpoint is restored and
        training goes on at half the learning rates.
        """
        self.steps = steps
        every_steps, every_seconds = run_dir.checkpoint_interval(
            self.config.checkpoint_every)
        if every_seconds and self.config.strategy == "multi_worker":
            # Workers must checkpoint at the same steps, and their clocks differ.
            logging.info("--checkpoint_every=%s: on a cluster, checkpoints by time are taken "
                         "at epoch ends only; give a number of steps instead",
                         self.config.checkpoint_every)
            every_seconds = 0.0
        if self.manager is None:
            raise RuntimeError("call Run.resume before Run.fit")
        epoch, step, restores = self.initial_epoch, self.initial_step, 0
        while epoch < self.config.epochs:
            guard = callbacks_lib.NaNGuard()
            saver = callbacks_lib.StepCheckpoint(self.save, steps, every_steps, every_seconds)
            every = [guard, saver, *callbacks]
            for callback in every:
                if isinstance(callback, callbacks_lib.ResumableCallback):
                    callback.first_step = step
            scale = 0.5 ** restores
            last = epoch + 1 if step else self.config.epochs
            model.fit(data(epoch, step), epochs=last, steps_per_epoch=steps - step,
                      initial_epoch=epoch, validation_data=validation_data,
                      verbose=self.config.verbose, shuffle=False, callbacks=[
                          *every,
                          callbacks_lib.TensorBoard(
                              self.path("tensorboard"),
                              lambda epoch, scale=scale: scale * learning_rate(epoch),
                              write_graph=False)])
            if not guard.failed_at:
                epoch, step = last, 0
                continue
            epoch_no, step_no, key = guard.failed_at
            where = f"{key} became NaN/inf at epoch {epoch_no}, step {step_no}"
            if self.config.on_nan != "restore" or restores == MAX_RESTORES:
                tried = f" after {restores} restores" if restores else ""
                raise RunFailed(
                    f"{where}{tried}; the last good checkpoint and the last good epoch's "
                    f"{what} are in {self.dir}: lower --learning_rate (or "
                    "--arch_learning_rate) and rerun (it resumes from the checkpoint), or pass "
                    "--on_nan=restore")
            restores += 1
            # Every worker goes back to the chief's checkpoint.
            epoch, step, restored = checkpoints.restore_latest(self.checkpoint, self.source)
            for optimizer in self.optimizers:
                optimizers.set_learning_rate_scale(optimizer, 0.5 ** restores)
            logging.warning("%s: restored %s (epoch %d, step %d) and going on at %g x the "
                            "learning rates (restore %d of %d)", where, restored, epoch + 1,
                            step, 0.5 ** restores, restores, MAX_RESTORES)
