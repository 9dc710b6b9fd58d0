"""Retraining of a space of the user's own (bin/train.py --space=module:function
--choices=FILE): the architecture the choices name, built fresh by the
space's function (`nasp_tf.fix_choices`), trained from scratch on all
training rows of --dataset=npz:FILE and scored once on its test rows.

Nothing the training looks at is in the test rows: no validation during
training, a fixed learning-rate schedule. Without x_test/y_test in the file a
fixed 10 % of the training rows is held out (as for the search, which never
reads them either).

Writes flags.txt, choices.json (the architecture trained), checkpoints/,
tensorboard/, results.json, saved_model/ (Keras's `export`: endpoint
`serve`) and model.keras (no nasp_tf layer inside).
"""

import json

import tensorflow as tf
from absl import logging

from nasp_tf import callbacks as callbacks_lib
from nasp_tf import choice as choice_lib
from nasp_tf import counting
from nasp_tf import distribute
from nasp_tf import optimizers
from nasp_tf.data import passes
from nasp_tf.errors import DataError, UserError
from nasp_tf.pipelines import common
from nasp_tf.pipelines import space_inputs


class Retrained(distribute.StrategyModel):
    """The chosen network as `fit` trains it, under every strategy: on a
    cluster Keras would build a plain model from a batch reduced over the
    replicas, which fails (`nasp_tf.distribute.StrategyModel`).

    Args:
      network: the chosen architecture (a built Keras model).
      **kwargs: `keras.Model` arguments.
    """

    def __init__(self, network, **kwargs):
        kwargs.setdefault("name", "retrained")
        super().__init__(**kwargs)
        self.network = network
        self.built = True

    def call(self, x, training=False):
        return self.network(x, training=training)


def compiled(network, learning_rate, momentum, weight_decay, loss, metrics):
    """`Retrained(network)` compiled with nasp_tf's SGD, `loss` and `metrics`
    (call in the strategy's scope). Keras's own `train_step` trains it and
    gives the optimizer each replica's gradient: the optimizer sums them."""
    model = Retrained(network)
    optimizer = optimizers.TorchSGD(learning_rate, momentum, weight_decay, sums_replicas=True)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    optimizer.build(network.trainable_weights)
    return model


def read_choices(path, spec, space):
    """The choices at `path`, checked against the decisions of `space`."""
    try:
        choices = choice_lib.read_choices(path)
        choice_lib.validate_choices(choice_lib.find_decisions(space), choices)
    except ValueError as e:
        raise UserError(f"--choices={path} does not fit --space={spec}: {e}") from None
    return choices


def build_network(config):
    """(the chosen architecture, fresh weights; the choices): the space built
    once, and its chosen candidates kept (`fix_choices` of the space's
    function)."""
    space = space_inputs.build_space(config.space)
    choices = read_choices(config.choices, config.space, space)
    return choice_lib.export_model(space, choices), choices


def run(config, flags_text=""):
    if config.dry_run:
        network, _ = build_network(config)
        print(f"parameters: {counting.parameter_count(network)}")
        return network
    run = common.Run(config, flags_text, config.export_only)
    with run.strategy.scope():
        network, choices = build_network(config)
    data = space_inputs.load_arrays(config.dataset, config.task, network, config.max_examples)
    x, y = data["x_train"], data["y_train"]
    if len(x) < config.batch_size:
        raise DataError(f"{config.dataset}: {len(x)} training rows are fewer than one batch "
                        f"of {config.batch_size}; lower --batch_size")
    steps = config.steps_per_epoch or len(x) // config.batch_size
    schedule = optimizers.EpochCosineDecay(config.learning_rate, config.learning_rate_min,
                                           config.epochs, steps, offset=0)
    loss, metrics = space_inputs.loss_and_metrics(config.task)
    with run.strategy.scope():
        model = compiled(network, schedule, config.momentum, config.weight_decay, loss, metrics)
    run.resume(model, optimizer=model.optimizer)
    choice_lib.write_choices(choices, run.path("choices.json"))
    parameters = counting.parameter_count(network)
    logging.info("parameters: %d; choices %s", parameters, json.dumps(choices, sort_keys=True))
    rows = tf.data.Dataset.from_tensor_slices((x, y))

    def train_from(epoch, step):  # the stream from where a checkpoint left it
        return passes.permuted_passes(rows, len(x), config.seed,
                                      (epoch * steps + step) * config.batch_size).batch(
            config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    if not config.export_only:
        run.fit(model, train_from, steps, None, [callbacks_lib.EpochCheckpoint(
            run.save, config.epochs, run.dir, schedule.lr_at_epoch)], schedule.lr_at_epoch)
    test = tf.data.Dataset.from_tensor_slices((data["x_test"], data["y_test"])).batch(
        config.batch_size)
    results = model.evaluate(test, verbose=0, return_dict=True)
    logging.info("test: %s", " ".join(f"{k}={float(v):.4f}" for k, v in sorted(results.items())))
    summary = {"space": config.space, "choices": choices, "parameters": parameters,
               "test_examples": len(data["x_test"]),
               **{f"test_{k}": float(v) for k, v in results.items()}}
    key = "accuracy" if config.task == "classification" else "loss"
    run.write_results(summary, f"test {key}: {float(results[key]):.4f}")
    if config.export:
        # An uncompiled copy outside any strategy: the file names no nasp_tf
        # optimizer (it loads without nasp_tf) and holds no distributed variable.
        exported, _ = build_network(config)
        exported.set_weights(network.get_weights())
        run.export(exported, lambda directory: exported.export(directory, verbose=False))
    return results
