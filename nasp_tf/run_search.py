"""A whole search run: data, strategy, supernet and searcher, fit, outputs.

`run(config)` takes the parsed flags of `bin/search.py` (any object with the
same attributes) and writes the run directory:

    flags.txt, genotype.json, genotypes/epoch_NNN.json, arch/epoch_NNN.npz,
    cell_normal.{png,dot}, cell_reduce.{png,dot}, checkpoints/, tensorboard/
"""

import os
import random

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from nasp_tf import callbacks as callbacks_lib
from nasp_tf import checkpoints
from nasp_tf import distribute
from nasp_tf import genotype as genotype_lib
from nasp_tf import ops
from nasp_tf import optimizers
from nasp_tf import spaces
from nasp_tf.cnn import search_model
from nasp_tf.data import images
from nasp_tf.search import darts, nasp, pa

SEARCHERS = {"nasp": nasp.NASPSearcher, "pa": pa.PASearcher, "pa_lazy": pa.LazyPASearcher}


class RunFailed(RuntimeError):
    """A search or training run that could not finish; the message says why and
    what is kept."""


def seed_everything(seed, deterministic):
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def make_searcher(config, image_shape, num_classes):
    """The supernet and the searcher `config.searcher` names (not compiled)."""
    space = spaces.get_cnn_space(config.space)
    dart = config.searcher.startswith("darts")
    supernet = search_model.SearchNetwork(
        spaces.with_none(space) if dart else space, num_classes, config.init_channels,
        config.layers, config.nodes, image_shape, name="supernet")
    # One fixed layer name: checkpoints key the weights by their paths.
    if dart:
        return darts.DARTSSearcher(supernet, order=int(config.searcher[-1]),
                                   genotype_space=space.name, grad_clip=config.grad_clip,
                                   name="searcher")
    return SEARCHERS[config.searcher](
        supernet, eta=config.eta, penalize=config.penalize,
        keep_value=config.prox_value == "keep", grad_clip=config.grad_clip,
        derive=config.derive, name="searcher")


def build_searcher(config, image_shape, num_classes, steps_per_epoch):
    """The supernet, the searcher and both optimizers (call inside a strategy scope)."""
    searcher = make_searcher(config, image_shape, num_classes)
    schedule = optimizers.EpochCosineDecay(config.learning_rate, config.learning_rate_min,
                                           config.epochs, steps_per_epoch)
    searcher.compile(
        weight_optimizer=optimizers.TorchSGD(schedule, config.momentum, config.weight_decay),
        arch_optimizer=optimizers.TorchAdam(config.arch_learning_rate, beta_1=config.arch_beta1,
                                            l2=config.arch_weight_decay),
        jit_compile=config.jit_compile)
    return searcher, schedule


def start_run(config, flags_text):
    """Creates the run directory with its flags.txt, builds the strategy and seeds
    everything (search and retraining alike)."""
    os.makedirs(config.output_dir, exist_ok=True)
    with open(os.path.join(config.output_dir, "flags.txt"), "w", encoding="utf-8") as f:
        f.write(flags_text)
    strategy = distribute.get_strategy(config.strategy, config.cpu_devices)
    seed_everything(config.seed, config.deterministic)
    return strategy


def raise_if_diverged(guard, run_dir):
    """A search the NaN guard stopped ends in RunFailed, saying what is kept."""
    if guard.failed_at:
        epoch_no, step, key = guard.failed_at
        raise RunFailed(
            f"{key} became NaN/inf at epoch {epoch_no}, step {step}; the last good epoch's "
            f"genotype and checkpoint are in {run_dir}: lower --learning_rate or "
            "--arch_learning_rate and rerun (it resumes from the checkpoint)")


def run(config, flags_text=""):
    from nasp_tf import search_flags
    if config.dataset in search_flags.TEXT_DATASETS:
        from nasp_tf import run_search_rnn
        return run_search_rnn.run(config, flags_text)
    run_dir = config.output_dir
    strategy = start_run(config, flags_text)
    source = images.get_source(config.dataset, config.data_dir, config.download)
    data = images.search_data(source, config.batch_size, config.seed, config.train_portion,
                              config.cutout, config.max_examples)
    steps = config.steps_per_epoch or data.steps_per_epoch
    logging.info("%s: %d steps per epoch, global batch %d, %d replica(s)", source.name, steps,
                 config.batch_size, strategy.num_replicas_in_sync)

    with strategy.scope():
        searcher, schedule = build_searcher(config, source.image_shape, source.num_classes,
                                            steps)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        checkpoint = checkpoints.make_checkpoint(
            searcher, epoch=epoch, weight_optimizer=searcher.weight_optimizer,
            arch_optimizer=searcher.arch_optimizer)
    manager = checkpoints.manager_for(checkpoint, run_dir)
    initial_epoch = checkpoints.restore_latest(checkpoint, manager) if config.resume else 0
    if initial_epoch:
        logging.info("resuming from %s at epoch %d", manager.latest_checkpoint, initial_epoch + 1)
    logging.info("supernet: %d parameters, space %s", ops.trainable_count(searcher.supernet),
                 config.space)

    guard = callbacks_lib.NaNGuard()
    callbacks = [
        guard,
        callbacks_lib.SearchHistory(run_dir, checkpoint, manager, schedule.lr_at_epoch,
                                    config.epochs),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard"), write_graph=False),
    ]
    if initial_epoch < config.epochs:
        searcher.fit(data.pairs, epochs=config.epochs, steps_per_epoch=steps,
                     initial_epoch=initial_epoch, validation_data=data.validation,
                     callbacks=callbacks, verbose=config.verbose, shuffle=False)
    raise_if_diverged(guard, run_dir)
    genotype = searcher.genotype()
    genotype_lib.write_json(genotype, os.path.join(run_dir, "genotype.json"))
    genotype_lib.write_cell_pictures(genotype, run_dir)
    logging.info("genotype: %s", genotype.to_json())
    return genotype
