"""Image retraining: the final network of a CNN genotype, trained from scratch
and exported (bin/train.py).

Writes flags.txt, genotype.json (the genotype trained), checkpoints/,
tensorboard/, results.json, saved_model/ (signature `serve`: images ->
{"probabilities"}) and model.keras; with --export_tflite also model.tflite and
model_int8.tflite, checked against the network in results.json.
"""


import json

import numpy as np
import tensorflow as tf
from absl import logging

from nasp_tf import atomic
from nasp_tf import callbacks as callbacks_lib
from nasp_tf import export
from nasp_tf import fs
from nasp_tf import genotype as genotype_lib
from nasp_tf import optimizers
from nasp_tf.cnn import model as model_lib
from nasp_tf.cnn import trainer as trainer_lib
from nasp_tf.data import DIGITS_PROTOCOL, checks, images
from nasp_tf.errors import UserError
from nasp_tf.pipelines import common

# Image size and classes of the built-in datasets when the data is not loaded
# (--dry_run); the user's own data is read for them.
SHAPES = {"cifar10": ((32, 32, 3), 10), "imagenet2012": ((224, 224, 3), 1000),
          "digits": ((8, 8, 3), 10), "synthetic": ((32, 32, 3), 10),
          **{name: ((8, 8, 3), 10) for name in DIGITS_PROTOCOL}}


def build_network(config, genotype, image_shape, num_classes):
    if config.auxiliary and config.dataset != "imagenet2012" and image_shape[0] // 4 < 5:
        raise UserError(f"the auxiliary head needs at least 5x5 features after two "
                        f"reductions; {config.dataset} images are {image_shape[0]}x"
                        f"{image_shape[1]}: pass --noauxiliary")
    build = (model_lib.network_imagenet if config.dataset == "imagenet2012"
             else model_lib.network_cifar)
    return build(genotype, num_classes=num_classes, channels=config.init_channels,
                 layers=config.layers, auxiliary=config.auxiliary, image_shape=image_shape,
                 name="network")


def run(config, flags_text=""):
    genotype = genotype_lib.load_cnn_genotype(config.genotype)
    if config.dry_run:
        if config.dataset in SHAPES:
            shape, classes = SHAPES[config.dataset]
        else:
            source = images.get_source(
                config.dataset, config.data_dir, config.download,
                image_size=checks.parse_image_size(config.image_size))
            shape, classes = source.image_shape, source.num_classes
        network = build_network(config, genotype, shape, classes)
        print(f"parameters: {network.count_params_without_auxiliary()}")
        return network
    run = common.Run(config, flags_text, config.export_only)
    source = images.get_source(config.dataset, config.data_dir, config.download,
                               manual_dir=config.manual_dir,
                               image_size=checks.parse_image_size(config.image_size))
    train = source.train.take(config.max_examples) if config.max_examples else source.train
    num_train = min(config.max_examples or source.num_train, source.num_train)
    if num_train < config.batch_size:
        raise images.DataError(f"{source.name}: {num_train} training examples are fewer than "
                               f"one batch of {config.batch_size}; lower --batch_size")
    # What the network is scored on: the test set, or with --select_split the
    # last training examples, held out from training (the test set unread).
    scored, scored_examples, what = source.test, source.num_test, "test"
    if config.select_split:
        held = max(1, int(round(config.select_split * num_train)))
        if num_train - held < config.batch_size:
            raise images.DataError(f"{source.name}: {num_train} training examples less "
                                   f"--select_split={config.select_split} leave fewer than "
                                   f"one batch of {config.batch_size}; lower --batch_size")
        scored, scored_examples, what = train.skip(num_train - held), held, "selection"
        train, num_train = train.take(num_train - held), num_train - held
        logging.info("--select_split: training on %d examples, scored on the last %d of "
                     "the training set; the test set is not read", num_train, held)
    test = images.batched(scored, source, config.batch_size, config.seed + 1, False,
                          False, drop_remainder=False).prefetch(images.AUTOTUNE)
    steps = config.steps_per_epoch or num_train // config.batch_size
    if config.lr_schedule == "cosine":
        # Epoch 0 runs at --learning_rate. The reference steps its scheduler
        # before each epoch (offset 1): over its 600 epochs the rates differ by
        # less than 2e-7, but a run of one epoch would train at lr 0.
        schedule = optimizers.EpochCosineDecay(config.learning_rate, config.learning_rate_min,
                                               config.epochs, steps, offset=0)
    else:
        schedule = optimizers.EpochExponentialDecay(config.learning_rate, config.lr_gamma, steps)

    with run.strategy.scope():
        network = build_network(config, genotype, source.image_shape, source.num_classes)
        trainer = trainer_lib.FinalTrainer(network, config.aux_weight, config.label_smoothing,
                                           config.grad_clip, name="trainer")
        optimizer = optimizers.TorchSGD(schedule, config.momentum, config.weight_decay)
        trainer.compile(optimizer=optimizer, jit_compile=False)
        optimizer.build(network.trainable_weights)
    run.resume(network, optimizer=optimizer)
    logging.info("parameters: %d (auxiliary head excluded)",
                 network.count_params_without_auxiliary())
    genotype_lib.write_json(genotype, run.path("genotype.json"))
    train = train.cache()

    def train_from(epoch, step):  # the stream from where a checkpoint left it
        return images.batched(train, source, config.batch_size, config.seed, True, True,
                              config.cutout, repeat=True, num_examples=num_train,
                              start=(epoch * steps + step) * config.batch_size
                              ).prefetch(images.AUTOTUNE)

    if not config.export_only:
        run.fit(trainer, train_from, steps, test, [
            callbacks_lib.DropPathSchedule(network, config.drop_path_prob, config.epochs),
            callbacks_lib.EpochCheckpoint(
                run.save, config.epochs, run.dir, schedule.lr_at_epoch,
                extras=lambda: {"drop_path": float(network.drop_path_probability.numpy())})],
            schedule.lr_at_epoch)
    results = trainer.evaluate(test, verbose=0, return_dict=True)
    logging.info("%s: loss=%.4f top1=%.4f top5=%.4f", what, results["loss"], results["top1"],
                 results["top5"])
    summary = {"genotype": config.genotype, "genotype_json": genotype.to_json(),
               "parameters": network.count_params_without_auxiliary(),
               f"{what}_examples": scored_examples,
               **{f"{what}_{k}": float(v) for k, v in results.items()}}
    if source.class_names is not None:  # what the exported model's output i means
        summary["class_names"] = list(source.class_names)
    if config.save_predictions:
        write_predictions(network, test, run.path("test_predictions.json"))
    run.write_results(summary, f"{what} top-1: {results['top1']:.4f}")
    if not config.export:
        return results
    if run.strategy.num_replicas_in_sync > 1:
        # A SavedModel cannot capture distributed variables (the on-read
        # batch-norm statistics): export a copy made outside the strategy.
        copy = build_network(config, genotype, source.image_shape, source.num_classes)
        copy.set_weights(network.get_weights())
        network = copy
    run.export(network, lambda directory: export.export_classifier(
        network, directory, source.mean, source.std))
    if config.export_tflite:
        summary["tflite"] = write_tflite(network, test, source, run.dir)
        run.write_results(summary, "tflite: " + ", ".join(
            f"{kind} {entry['bytes']:,} bytes, top-1 agreement {entry['top1_agreement']:.4f}"
            for kind, entry in summary["tflite"].items()))
    return results


# Test images the TensorFlow Lite files are checked on (batch 1 each).
TFLITE_CHECK_IMAGES = 500


def write_tflite(network, test, source, directory):
    """--export_tflite: model.tflite and model_int8.tflite in `directory`,
    each checked against the Keras network on the first test images; returns
    {kind: {file, bytes, images, max_abs_difference, top1_agreement}}."""
    normalised, expected = [], []
    for images_batch, _ in test:
        normalised.append(images_batch.numpy())
        expected.append(tf.nn.softmax(network(images_batch, training=False)).numpy())
        if sum(len(b) for b in normalised) >= TFLITE_CHECK_IMAGES:
            break
    normalised = np.concatenate(normalised)[:TFLITE_CHECK_IMAGES]
    expected = np.concatenate(expected)[:TFLITE_CHECK_IMAGES]
    raw = normalised * np.asarray(source.std, np.float32) + np.asarray(source.mean, np.float32)
    entries = {}
    for kind, path in export.export_tflite(network, directory, source.mean, source.std).items():
        content = fs.read_bytes(path)  # the written file, wherever it is
        got = export.tflite_predict(export.tflite_interpreter(content=content), raw)
        entries[kind] = {
            "file": fs.basename(path), "bytes": len(content),
            "images": len(raw), "max_abs_difference": float(np.max(np.abs(got - expected))),
            "top1_agreement": float(np.mean(got.argmax(-1) == expected.argmax(-1)))}
        logging.info("exported %s (%s): top-1 agreement with the Keras network %.4f on %d "
                     "test images", path, kind, entries[kind]["top1_agreement"], len(raw))
    return entries


def write_predictions(network, test, path):
    """test_predictions.json: {"labels": [...], "predicted": [...]}, every
    test example's label and the network's top class, in `test`'s order."""
    labels, predicted = [], []
    for images_batch, labels_batch in test:
        logits = network(images_batch, training=False)
        labels.extend(int(v) for v in labels_batch.numpy())
        predicted.extend(int(v) for v in np.argmax(logits.numpy(), axis=-1))
    atomic.write_text(path, json.dumps({"labels": labels, "predicted": predicted}))
