"""Image search: a CNN cell searched on an image dataset (bin/search.py).

Writes the run directory: flags.txt, genotype.json, initial_genotype.json (the
genotype of the architecture it started from), genotypes/epoch_NNN.json,
arch/epoch_NNN.npz, cell_normal.{png,dot}, cell_reduce.{png,dot},
checkpoints/, tensorboard/.
"""

from absl import logging

from nasp_tf import api
from nasp_tf import callbacks as callbacks_lib
from nasp_tf import counting
from nasp_tf import genotype as genotype_lib
from nasp_tf.data import images
from nasp_tf.pipelines import common
from nasp_tf.pipelines import estimate
from nasp_tf.search import registry


def build_searcher(config, image_shape, num_classes, steps_per_epoch):
    """The supernet, the searcher `config.searcher` names and both optimizers
    (call inside a strategy scope). Returns (searcher, weight schedule)."""
    searcher_class = registry.get(config.searcher).load("images")
    # One fixed layer name ("searcher"): checkpoints key the weights by their paths.
    searcher = api.build_searcher(config.searcher, config.space, image_shape, num_classes,
                                  config.init_channels, config.layers, config.nodes,
                                  **searcher_class.settings(config))
    weight_optimizer, arch_optimizer, schedule = common.search_optimizers(
        config, searcher_class, steps_per_epoch)
    searcher.compile(weight_optimizer=weight_optimizer, arch_optimizer=arch_optimizer,
                     jit_compile=config.jit_compile)
    return searcher, schedule


def run(config, flags_text=""):
    if config.dry_run:
        return dry_run(config)
    run = common.Run(config, flags_text)
    source = images.get_source(config.dataset, config.data_dir, config.download)
    data = images.search_data(source, config.batch_size, config.seed, config.train_portion,
                              config.cutout, config.max_examples)
    steps = config.steps_per_epoch or data.steps_per_epoch
    logging.info("%s: %d steps per epoch, global batch %d, %d replica(s)", source.name, steps,
                 config.batch_size, run.strategy.num_replicas_in_sync)
    with run.strategy.scope():
        searcher, schedule = build_searcher(config, source.image_shape, source.num_classes,
                                            steps)
    initial_genotype = searcher.genotype()  # A as initialised, before any restore
    run.resume(searcher, weight_optimizer=searcher.weight_optimizer,
               arch_optimizer=searcher.arch_optimizer)
    run.keep_initial_genotype(initial_genotype)

    def pairs_from(epoch, step):  # the stream from where a checkpoint left it
        return images.search_data(source, config.batch_size, config.seed, config.train_portion,
                                  config.cutout, config.max_examples,
                                  start_step=epoch * steps + step).pairs

    logging.info("supernet: %d parameters, space %s",
                 counting.parameter_count(searcher.supernet), config.space)
    history = callbacks_lib.SearchHistory(run.dir, run.save, config.epochs)
    run.fit(searcher, pairs_from, steps, data.validation, [history], schedule.lr_at_epoch,
            what="genotype")
    genotype = searcher.genotype()
    genotype_lib.write_json(genotype, run.path("genotype.json"))
    genotype_lib.write_cell_pictures(genotype, run.dir)
    run.note_collapse(genotype)
    logging.info("genotype: %s", genotype.to_json())
    return genotype


def dry_run(config):
    """--dry_run: the search's cost, measured on its first steps (`estimate`)."""
    strategy = common.strategy_for(config)
    source = images.get_source(config.dataset, config.data_dir, config.download)
    data = images.search_data(source, config.batch_size, config.seed, config.train_portion,
                              config.cutout, config.max_examples)
    steps = config.steps_per_epoch or data.steps_per_epoch
    with strategy.scope():
        searcher, _ = build_searcher(config, source.image_shape, source.num_classes, steps)
    validation_batches = int(data.validation.cardinality().numpy())
    if validation_batches < 0:  # unknown: one pass over the architecture half
        validation_batches = max(1, int(steps * (1 - config.train_portion)
                                        / config.train_portion))
    return estimate.measure(searcher, searcher.supernet, data.pairs, data.validation, steps,
                            validation_batches, config)
