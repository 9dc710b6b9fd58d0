"""Text search: a recurrent cell searched on a corpus (bin/search.py with a
text dataset).

Writes the run directory: flags.txt, genotype.json, initial_genotype.json (the
genotype of the architecture it started from), genotypes/epoch_NNN.json,
arch/epoch_NNN.npz, cell_recurrent.{png,dot}, checkpoints/, tensorboard/.
"""

from absl import logging

from nasp_tf import api
from nasp_tf import callbacks as callbacks_lib
from nasp_tf import counting
from nasp_tf import genotype as genotype_lib
from nasp_tf import optimizers
from nasp_tf.data import text
from nasp_tf.pipelines import common
from nasp_tf.pipelines import estimate
from nasp_tf.rnn import losses
from nasp_tf.search import registry


def build_searcher(config, vocab_size, steps_per_epoch):
    """The search language model, the searcher and both optimizers (inside a
    strategy scope)."""
    searcher_class = registry.get(config.searcher).load("text")
    settings = dict(searcher_class.settings(config))
    searcher = api.build_text_searcher(
        config.searcher, vocab_size, units=config.rnn_units, steps=config.rnn_steps,
        dropout=config.dropout, dropouth=config.dropouth, dropoutx=config.dropoutx,
        dropouti=config.dropouti, dropoute=config.dropoute, seed=config.seed,
        layer_name=settings.pop("name"), **settings)
    # The coupled decay and the seq_len/bptt scale are applied by the searcher.
    searcher.compile(
        weight_optimizer=optimizers.TorchSGD(config.learning_rate, config.momentum, 0.0),
        arch_optimizer=searcher_class.arch_optimizer_for(config, steps_per_epoch))
    return searcher


def run(config, flags_text=""):
    if config.dry_run:
        return dry_run(config)
    corpus, train_stream, valid_stream, steps = text.corpus_streams(config, "search")
    search_stream = text.batchify(corpus.valid, config.batch_size)
    run = common.Run(config, flags_text)
    # The test split is never read here: weights train on `train`, the
    # architecture steps and the validation run on `valid`.
    logging.info("%s: vocabulary %d, %d tokens train the weights, %d the architecture; "
                 "%d steps per epoch, batch %d, %d replica(s)", corpus.name,
                 corpus.vocab_size, len(corpus.train), len(corpus.valid), steps,
                 config.batch_size, run.strategy.num_replicas_in_sync)
    with run.strategy.scope():
        searcher = build_searcher(config, corpus.vocab_size, steps)
    initial_genotype = searcher.genotype()  # A as initialised, before any restore
    run.resume(searcher, weight_optimizer=searcher.weight_optimizer,
               arch_optimizer=searcher.arch_optimizer)
    run.keep_initial_genotype(initial_genotype)
    logging.info("search model: %d parameters, searcher %s",
                 counting.parameter_count(searcher.model), config.searcher)
    if not run.finished:
        def pairs_from(epoch, step):
            return text.search_pairs(train_stream, search_stream, config.bptt, steps, epoch,
                                     config.epochs, config.seed).skip(step)

        history = callbacks_lib.SearchHistory(run.dir, run.save, config.epochs)
        run.fit(searcher, pairs_from, steps, text.eval_chunks(valid_stream, config.bptt),
                [callbacks_lib.ResetStates(), history], lambda epoch: config.learning_rate,
                what="genotype")
    genotype = searcher.genotype()
    genotype_lib.write_json(genotype, run.path("genotype.json"))
    genotype_lib.write_rnn_cell_pictures(genotype, run.dir)
    run.note_collapse(genotype)
    valid = searcher.evaluate(text.eval_chunks(valid_stream, config.bptt), verbose=0,
                              return_dict=True)
    logging.info("genotype: %s", genotype.to_json())
    print(f"search valid perplexity (discrete cell, shared weights): "
          f"{losses.perplexity(valid['loss']):.2f}")
    return genotype


def dry_run(config):
    """--dry_run: the search's cost, measured on its first steps (`estimate`)."""
    strategy = common.strategy_for(config)
    corpus, train_stream, valid_stream, steps = text.corpus_streams(config, "search")
    search_stream = text.batchify(corpus.valid, config.batch_size)
    with strategy.scope():
        searcher = build_searcher(config, corpus.vocab_size, steps)
    validation = text.eval_chunks(valid_stream, config.bptt)
    pairs = text.search_pairs(train_stream, search_stream, config.bptt, steps, 0,
                              config.epochs, config.seed)
    return estimate.measure(searcher, searcher.model, pairs, validation, steps,
                            len(text.fixed_chunks(valid_stream, config.bptt)[0]), config)
