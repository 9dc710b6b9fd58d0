"""Search of a space of the user's own (bin/search.py --space=module:function).

The model `module:function` returns is searched by `nasp_tf.SpaceSearcher`
on --dataset=npz:FILE: its training rows are split once (a fixed order) into
the first --train_portion, which trains the weights, and the rest, which
trains A and is the epoch line's validation; the test rows are not read.

Writes the run directory: flags.txt, choices.json (the architecture found),
initial_choices.json (the one it started from), choices/epoch_NNN.json,
arch/epoch_NNN.npz (A and Ā of every decision), history.json, log.txt,
checkpoints/, tensorboard/.
"""

import json
import os

import numpy as np
import tensorflow as tf
from absl import logging

from nasp_tf import api
from nasp_tf import atomic
from nasp_tf import callbacks as callbacks_lib
from nasp_tf import choice as choice_lib
from nasp_tf import counting
from nasp_tf import fs
from nasp_tf.errors import DataError
from nasp_tf.pipelines import common
from nasp_tf.pipelines import estimate
from nasp_tf.pipelines import space_inputs
from nasp_tf.search import registry


def build_searcher(config, model, steps_per_epoch):
    """The `SpaceSearcher` of `model`, compiled with both optimizers and the
    loss and metrics of --task (call inside the strategy scope)."""
    searcher_class = registry.get(config.searcher).load("space")
    searcher = searcher_class(model, searcher=config.searcher, name="searcher",
                              **searcher_class.settings(config))
    weight_optimizer, arch_optimizer, schedule = common.search_optimizers(
        config, searcher_class, steps_per_epoch)
    loss, metrics = space_inputs.loss_and_metrics(config.task)
    searcher.compile(weight_optimizer=weight_optimizer, arch_optimizer=arch_optimizer,
                     loss=loss, metrics=metrics)
    return searcher, schedule


def split(data, train_portion, batch_size):
    """(weight rows, architecture rows) of the training arrays: the first
    `train_portion` and the rest; each must hold a batch."""
    n = len(data["x_train"])
    cut = int(round(n * train_portion))
    halves = ((data["x_train"][:cut], data["y_train"][:cut]),
              (data["x_train"][cut:], data["y_train"][cut:]))
    for (x, _), what in zip(halves, ("weights", "architecture")):
        if len(x) < batch_size:
            raise DataError(f"the {what} half of the {n} training rows holds {len(x)}, "
                            f"fewer than one batch of {batch_size}; lower --batch_size, or "
                            "change --train_portion")
    return halves


class ChoicesHistory(callbacks_lib.EpochRecord):
    """After every epoch (`nasp_tf.callbacks.EpochRecord`): choices/epoch_NNN.json,
    arch/epoch_NNN.npz (A and Ā of every decision with rows of its own), the
    metrics in history.json, a checkpoint, one log line with the choices.

    Args:
      run_dir: the run directory.
      save: callable(epochs done) that checkpoints the run (`Run.save`).
      epochs: total epochs (for the log line).
    """

    subdirs = ("choices", "arch")

    def record(self, number, logs):
        choices = self.model.choices()
        choice_lib.write_choices(choices, os.path.join(self.run_dir, "choices",
                                                       f"epoch_{number:03d}.json"))
        arch = self.model.discrete_arch()
        with atomic.writing(os.path.join(self.run_dir, "arch", f"epoch_{number:03d}.npz")) as tmp:
            np.savez(tmp, **{f"{kind}_{name}": m for name, variable in
                             self.model.arch_vars.items()
                             for kind, m in (("A", variable.numpy()),
                                             ("Abar", arch[name][0].numpy()))})
        return json.dumps(choices, sort_keys=True)


def search_inputs(config, strategy):
    """What a search and its dry run build and read: the model of --space
    (in `strategy`'s scope), its (weight, architecture) rows, the steps per
    epoch, and the compiled searcher with its weight schedule."""
    with strategy.scope():
        model = space_inputs.build_space(config.space)
    data = space_inputs.load_arrays(config.dataset, config.task, model, config.max_examples)
    weight_rows, arch_rows = split(data, config.train_portion, config.batch_size)
    steps = config.steps_per_epoch or len(weight_rows[0]) // config.batch_size
    with strategy.scope():
        searcher, schedule = build_searcher(config, model, steps)
    return model, weight_rows, arch_rows, steps, searcher, schedule


def validation_data(x, y, batch_size):
    """The epoch line's validation: the architecture rows in batches."""
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def run(config, flags_text=""):
    if config.dry_run:
        return dry_run(config)
    run = common.Run(config, flags_text)
    model, (x_w, y_w), (x_a, y_a), steps, searcher, schedule = search_inputs(
        config, run.strategy)
    logging.info("%s: %d rows train the weights, %d the architecture; %d steps per epoch, "
                 "global batch %d, %d replica(s)", config.dataset, len(x_w), len(x_a), steps,
                 config.batch_size, run.strategy.num_replicas_in_sync)
    initial = searcher.choices()  # before any restore
    run.resume(searcher, weight_optimizer=searcher.weight_optimizer,
               arch_optimizer=searcher.arch_optimizer)
    if not fs.exists(run.path("initial_choices.json")):
        choice_lib.write_choices(initial, run.path("initial_choices.json"))
    logging.info("space %s: %d decisions, %d parameters; initial choices %s", config.space,
                 len(searcher.decisions), counting.parameter_count(model),
                 json.dumps(initial, sort_keys=True))

    def pairs_from(epoch, step):  # the stream from where a checkpoint left it
        return api.search_pairs(x_w, y_w, x_a, y_a, config.batch_size, config.seed,
                                start_step=epoch * steps + step)

    validation = validation_data(x_a, y_a, config.batch_size)
    history = ChoicesHistory(run.dir, run.save, config.epochs)
    run.fit(searcher, pairs_from, steps, validation, [history], schedule.lr_at_epoch,
            what="choices")
    choices = searcher.choices()
    choice_lib.write_choices(choices, run.path("choices.json"))
    logging.info("choices: %s", json.dumps(choices, sort_keys=True))
    print(f"choices: {json.dumps(choices, sort_keys=True)}")
    return choices


def dry_run(config):
    """--dry_run: the search's cost, measured on its first steps (`estimate`);
    nothing is written into --output_dir."""
    model, (x_w, y_w), (x_a, y_a), steps, searcher, _ = search_inputs(
        config, common.strategy_for(config))
    pairs = api.search_pairs(x_w, y_w, x_a, y_a, config.batch_size, config.seed)
    batches = -(-len(x_a) // config.batch_size)
    return estimate.measure(searcher, model, pairs,
                            validation_data(x_a, y_a, config.batch_size), steps, batches,
                            config, ChoicesHistory)
