"""Image search: a CNN cell searched on an image dataset (bin/search.py).

Writes the run directory: flags.txt, genotype.json, initial_genotype.json (the
genotype of the architecture it started from), genotypes/epoch_NNN.json,
arch/epoch_NNN.npz, cell_normal.{png,dot}, cell_reduce.{png,dot},
checkpoints/, tensorboard/.
"""

import json

from absl import logging

from nasp_tf import api
from nasp_tf import atomic
from nasp_tf import callbacks as callbacks_lib
from nasp_tf import config as config_lib
from nasp_tf import counting
from nasp_tf import genotype as genotype_lib
from nasp_tf import shipped
from nasp_tf import spaces
from nasp_tf.cnn import final_size
from nasp_tf.data import checks, images
from nasp_tf.pipelines import common
from nasp_tf.pipelines import estimate
from nasp_tf.search import registry


def build_searcher(config, image_shape, num_classes, steps_per_epoch, size_table=None):
    """The supernet, the searcher `config.searcher` names and both optimizers
    (call inside a strategy scope; `size_table`: `budget_table`'s, with
    --max_params). Returns (searcher, weight schedule)."""
    searcher_class = registry.get(config.searcher).load("images")
    extra = {"size_table": size_table} if config.max_params else {}
    # One fixed layer name ("searcher"): checkpoints key the weights by their paths.
    searcher = api.build_searcher(config.searcher, config.space, image_shape, num_classes,
                                  config.init_channels, config.layers, config.nodes,
                                  **searcher_class.settings(config), **extra)
    weight_optimizer, arch_optimizer, schedule = common.search_optimizers(
        config, searcher_class, steps_per_epoch)
    searcher.compile(weight_optimizer=weight_optimizer, arch_optimizer=arch_optimizer,
                     jit_compile=config.jit_compile)
    return searcher, schedule


def budget_table(config, image_shape, num_classes):
    """--max_params: the `final_size.SizeTable` of the network --train_flagfile
    (or bin/train.py's defaults) retrains, refused in one line when no cell
    fits the budget; None without a budget."""
    if not config.max_params:
        return None
    train = (config_lib.from_flagfile(config_lib.TrainConfig,
                                      shipped.resolve_flagfile(config.train_flagfile))
             if config.train_flagfile else config_lib.TrainConfig())
    imagenet = train.dataset == "imagenet2012"
    if imagenet:
        image_shape, num_classes = (224, 224, 3), 1000
    table = final_size.size_table(spaces.get_cnn_space(config.space), config.nodes,
                                  num_classes, train.init_channels, train.layers, image_shape,
                                  imagenet)
    final_size.check_budget(table, config.max_params)
    return table


def fit_to_budget(searcher, table, config, run):
    """The searched genotype, fitted to --max_params if it is over; writes
    budget.json (the budget, the counts before and after, the changes, eta)."""
    genotype = searcher.genotype()
    before = table.parameters(genotype)
    changes = []
    if before > config.max_params:
        arch = {kind: matrix for kind, (matrix, _) in searcher.selection_numpy().items()}
        genotype, changes = table.fit(genotype, arch, config.max_params)
    after = table.parameters(genotype)
    report = {"max_params": config.max_params, "final_parameters": after,
              "searched_parameters": before, "fitted": changes,
              "eta": float(searcher.eta_variable.numpy()),
              "train_flagfile": config.train_flagfile}
    atomic.write_text(run.path("budget.json"), json.dumps(report, indent=1))
    logging.info("--max_params=%d: the searched cell's network has %d parameters%s",
                 config.max_params, before,
                 f"; fitted to {after} by {len(changes)} change(s): {'; '.join(changes)}"
                 if changes else " (within the budget)")
    return genotype


def search_inputs(config):
    """What a search and its dry run read before the searcher is built: the
    image source, the size budget's table (`budget_table`: None without one;
    a budget no cell fits is refused here, before anything is written), the
    search data and the steps per epoch."""
    source = images.get_source(config.dataset, config.data_dir, config.download,
                               image_size=checks.parse_image_size(config.image_size))
    table = budget_table(config, source.image_shape, source.num_classes)
    data = images.search_data(source, config.batch_size, config.seed, config.train_portion,
                              config.cutout, config.max_examples)
    return source, table, data, config.steps_per_epoch or data.steps_per_epoch


def run(config, flags_text=""):
    if config.dry_run:
        return dry_run(config)
    run = common.Run(config, flags_text)
    source, table, data, steps = search_inputs(config)
    logging.info("%s: %d steps per epoch, global batch %d, %d replica(s)", source.name, steps,
                 config.batch_size, run.strategy.num_replicas_in_sync)
    with run.strategy.scope():
        searcher, schedule = build_searcher(config, source.image_shape, source.num_classes,
                                            steps, table)
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
    genotype = fit_to_budget(searcher, table, config, run) if table else searcher.genotype()
    genotype_lib.write_json(genotype, run.path("genotype.json"))
    genotype_lib.write_cell_pictures(genotype, run.dir)
    run.note_collapse(genotype)
    logging.info("genotype: %s", genotype.to_json())
    return genotype


def dry_run(config):
    """--dry_run: the search's cost, measured on its first steps (`estimate`)."""
    strategy = common.strategy_for(config)
    source, table, data, steps = search_inputs(config)
    with strategy.scope():
        searcher, _ = build_searcher(config, source.image_shape, source.num_classes, steps,
                                     table)
    validation_batches = int(data.validation.cardinality().numpy())
    if validation_batches < 0:  # unknown: one pass over the architecture half
        validation_batches = max(1, int(steps * (1 - config.train_portion)
                                        / config.train_portion))
    return estimate.measure(searcher, searcher.supernet, data.pairs, data.validation, steps,
                            validation_batches, config)
