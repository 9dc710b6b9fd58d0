"""Retraining a genotype into a final network, and exporting it.

`run(config)` takes the parsed flags of `bin/train.py` and writes:

    flags.txt, checkpoints/, tensorboard/, saved_model/ (serving signature
    `serve`: uint8 images -> probabilities), model.keras
"""

import os

import keras
import tensorflow as tf
from absl import logging

from nasp_tf import callbacks as callbacks_lib
from nasp_tf import checkpoints
from nasp_tf import export
from nasp_tf import genotype as genotype_lib
from nasp_tf import optimizers
from nasp_tf.cnn import model as model_lib
from nasp_tf.cnn import trainer as trainer_lib
from nasp_tf.data import images
from nasp_tf.run_search import RunFailed, start_run

# Image size and classes when the data is not loaded (--dry_run).
SHAPES = {"cifar10": ((32, 32, 3), 10), "imagenet2012": ((224, 224, 3), 1000),
          "digits": ((8, 8, 3), 10), "synthetic": ((32, 32, 3), 10)}


def build_network(config, genotype, image_shape, num_classes):
    if config.auxiliary and config.dataset != "imagenet2012" and image_shape[0] // 4 < 5:
        raise RunFailed(f"the auxiliary head needs at least 5x5 features after two "
                        f"reductions; {config.dataset} images are {image_shape[0]}x"
                        f"{image_shape[1]}: pass --noauxiliary")
    build = (model_lib.network_imagenet if config.dataset == "imagenet2012"
             else model_lib.network_cifar)
    return build(genotype, num_classes=num_classes, channels=config.init_channels,
                 layers=config.layers, auxiliary=config.auxiliary, image_shape=image_shape,
                 name="network")


class DropPathSchedule(keras.callbacks.Callback):
    """Sets the drop-path probability to base * epoch / epochs at each epoch's start."""

    def __init__(self, network, base, epochs):
        super().__init__()
        self.network, self.base, self.epochs = network, base, epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.network.drop_path_probability.assign(self.base * epoch / self.epochs)


class TrainHistory(keras.callbacks.Callback):
    """Checkpoints every epoch and logs one line with the learning rate and drop path."""

    def __init__(self, checkpoint, manager, learning_rate, network, epochs, run_dir):
        super().__init__()
        self.checkpoint, self.manager, self.learning_rate = checkpoint, manager, learning_rate
        self.network, self.epochs = network, epochs
        self.writer = tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard",
                                                                 "schedule"))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        drop = float(self.network.drop_path_probability.numpy())
        with self.writer.as_default(step=epoch + 1):
            tf.summary.scalar("learning_rate", self.learning_rate(epoch))
            tf.summary.scalar("drop_path_probability", drop)
        self.writer.flush()
        self.checkpoint.epoch.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1)
        metrics = " ".join(f"{k}={float(v):.4f}" for k, v in sorted(logs.items()))
        logging.info("epoch %d/%d lr=%.5f drop_path=%.3f %s", epoch + 1, self.epochs,
                     self.learning_rate(epoch), drop, metrics)


def resume_epoch(config, checkpoint, manager):
    """The epoch retraining starts from: the last checkpoint's with --resume or
    --export_only (which needs one), else 0."""
    if config.export_only and not manager.latest_checkpoint:
        raise RunFailed(f"--export_only: no checkpoint in {config.output_dir}/checkpoints; "
                        "train first")
    initial_epoch = 0
    if config.resume or config.export_only:
        initial_epoch = checkpoints.restore_latest(checkpoint, manager)
    if initial_epoch:
        logging.info("resuming from %s: epoch %d of %d", manager.latest_checkpoint,
                     initial_epoch + 1, config.epochs)
    return initial_epoch


def run(config, flags_text=""):
    from nasp_tf import search_flags
    if config.dataset in search_flags.TEXT_DATASETS:
        from nasp_tf import run_train_rnn
        return run_train_rnn.run(config, flags_text)
    genotype = genotype_lib.load_cnn_genotype(config.genotype)
    if config.dry_run:
        shape, classes = SHAPES[config.dataset]
        network = build_network(config, genotype, shape, classes)
        print(f"parameters: {network.count_params_without_auxiliary()}")
        return network
    run_dir = config.output_dir
    strategy = start_run(config, flags_text)
    source = images.get_source(config.dataset, config.data_dir, config.download,
                               manual_dir=config.manual_dir)
    train = source.train.take(config.max_examples) if config.max_examples else source.train
    num_train = min(config.max_examples or source.num_train, source.num_train)
    if num_train < config.batch_size:
        raise images.DataError(f"{source.name}: {num_train} training examples are fewer than "
                               f"one batch of {config.batch_size}; lower --batch_size")
    train = images.batched(train.cache(), source, config.batch_size, config.seed, True, True,
                           config.cutout, repeat=True).prefetch(images.AUTOTUNE)
    test = images.batched(source.test, source, config.batch_size, config.seed + 1, False,
                          False, drop_remainder=False).prefetch(images.AUTOTUNE)
    steps = config.steps_per_epoch or num_train // config.batch_size
    if config.lr_schedule == "cosine":
        schedule = optimizers.EpochCosineDecay(config.learning_rate, config.learning_rate_min,
                                               config.epochs, steps)
    else:
        schedule = optimizers.EpochExponentialDecay(config.learning_rate, config.lr_gamma, steps)

    with strategy.scope():
        network = build_network(config, genotype, source.image_shape, source.num_classes)
        trainer = trainer_lib.FinalTrainer(network, config.aux_weight, config.label_smoothing,
                                           config.grad_clip, name="trainer")
        optimizer = optimizers.TorchSGD(schedule, config.momentum, config.weight_decay)
        trainer.compile(optimizer=optimizer, jit_compile=False)
        optimizer.build(network.trainable_weights)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        checkpoint = checkpoints.make_checkpoint(network, optimizer=optimizer, epoch=epoch)
    manager = checkpoints.manager_for(checkpoint, run_dir)
    logging.info("parameters: %d (auxiliary head excluded)",
                 network.count_params_without_auxiliary())
    initial_epoch = resume_epoch(config, checkpoint, manager)

    if not config.export_only and initial_epoch < config.epochs:
        guard = callbacks_lib.NaNGuard()
        trainer.fit(train, epochs=config.epochs, steps_per_epoch=steps,
                    initial_epoch=initial_epoch, validation_data=test, shuffle=False,
                    verbose=config.verbose, callbacks=[
                        guard, DropPathSchedule(network, config.drop_path_prob, config.epochs),
                        TrainHistory(checkpoint, manager, schedule.lr_at_epoch, network,
                                     config.epochs, run_dir),
                        keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard"),
                                                    write_graph=False)])
        if guard.failed_at:
            raise RunFailed(f"the loss became NaN/inf at epoch {guard.failed_at[0]}; the "
                               f"last good checkpoint is in {run_dir}/checkpoints: lower "
                               "--learning_rate and rerun (it resumes)")
    results = trainer.evaluate(test, verbose=0, return_dict=True)
    logging.info("test: loss=%.4f top1=%.4f top5=%.4f", results["loss"], results["top1"],
                 results["top5"])
    print(f"test top-1: {results['top1']:.4f}")
    export.export_classifier(network, os.path.join(run_dir, "saved_model"), source.mean,
                             source.std)
    export.save_keras(network, os.path.join(run_dir, "model.keras"))
    logging.info("exported %s and %s", os.path.join(run_dir, "saved_model"),
                 os.path.join(run_dir, "model.keras"))
    return results
