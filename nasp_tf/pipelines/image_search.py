"""Image search: a CNN cell searched on an image dataset (bin/search.py).

Writes the run directory: flags.txt, genotype.json, initial_genotype.json (the
genotype of the architecture it started from), genotypes/epoch_NNN.json,
arch/epoch_NNN.npz, cell_normal.{png,dot}, cell_reduce.{png,dot},
checkpoints/, tensorboard/.
"""

from absl import logging

from nasp_tf import callbacks as callbacks_lib
from nasp_tf import counting
from nasp_tf import genotype as genotype_lib
from nasp_tf import optimizers
from nasp_tf import spaces
from nasp_tf.cnn import search_model
from nasp_tf.data import images
from nasp_tf.pipelines import common
from nasp_tf.search import registry


def build_searcher(config, image_shape, num_classes, steps_per_epoch):
    """The supernet, the searcher `config.searcher` names and both optimizers
    (call inside a strategy scope). Returns (searcher, weight schedule)."""
    entry = registry.get(config.searcher)
    searcher_class = entry.load("images")
    supernet = search_model.SearchNetwork(
        searcher_class.searched_space(spaces.get_cnn_space(config.space)), num_classes,
        config.init_channels, config.layers, config.nodes, image_shape, name="supernet")
    # One fixed layer name: checkpoints key the weights by their paths.
    searcher = searcher_class.from_flags(supernet, config, name="searcher",
                                         **dict(entry.options))
    # The reference's order (its scheduler steps before each epoch), so that a
    # search reproduces its rates epoch by epoch.
    schedule = optimizers.EpochCosineDecay(config.learning_rate, config.learning_rate_min,
                                           config.epochs, steps_per_epoch, offset=1)
    searcher.compile(
        weight_optimizer=optimizers.TorchSGD(schedule, config.momentum, config.weight_decay),
        arch_optimizer=searcher_class.arch_optimizer_from_flags(config, steps_per_epoch),
        jit_compile=config.jit_compile)
    return searcher, schedule


def run(config, flags_text=""):
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
        run.make_checkpoint(searcher, weight_optimizer=searcher.weight_optimizer,
                            arch_optimizer=searcher.arch_optimizer)
    initial_genotype = searcher.genotype()  # A as initialised, before any restore
    initial_epoch = run.initial_epoch()
    run.keep_initial_genotype(initial_genotype)

    def pairs_from(epoch, step):  # the stream from where a checkpoint left it
        return images.search_data(source, config.batch_size, config.seed, config.train_portion,
                                  config.cutout, config.max_examples,
                                  start_step=epoch * steps + step).pairs

    logging.info("supernet: %d parameters, space %s",
                 counting.parameter_count(searcher.supernet), config.space)
    history = callbacks_lib.SearchHistory(run.dir, run.save, config.epochs)
    run.fit(searcher, pairs_from, steps, initial_epoch, data.validation, [history],
            schedule.lr_at_epoch, what="genotype")
    genotype = searcher.genotype()
    genotype_lib.write_json(genotype, run.path("genotype.json"))
    genotype_lib.write_cell_pictures(genotype, run.dir)
    logging.info("genotype: %s", genotype.to_json())
    return genotype
