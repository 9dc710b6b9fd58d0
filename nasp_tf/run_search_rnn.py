"""A recurrent-cell search run (bin/search.py with a text dataset).

`run(config)` takes the parsed flags of `bin/search.py` and writes the run
directory:

    flags.txt, genotype.json, genotypes/epoch_NNN.json, arch/epoch_NNN.npz,
    cell_recurrent.{png,dot}, checkpoints/, tensorboard/
"""

import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from nasp_tf import callbacks as callbacks_lib
from nasp_tf import checkpoints
from nasp_tf import genotype as genotype_lib
from nasp_tf import optimizers
from nasp_tf.data import text
from nasp_tf.rnn import callbacks as rnn_callbacks
from nasp_tf.rnn import model as model_lib
from nasp_tf.rnn import search_model
from nasp_tf.run_search import RunFailed, raise_if_diverged, start_run
from nasp_tf.search import darts_rnn, nasp_rnn, rnn_base

RNN_SEARCHERS = ("nasp", "darts1")
DEFAULT_DIRS = {"ptb": "data/penn", "wt2": "data/wikitext-2"}


def load_corpus(config):
    """The corpus of a text dataset flag (a directory, or `synthetic_text`)."""
    if config.dataset == "synthetic_text":
        corpus = text.synthetic_corpus(seed=config.seed)
    else:
        files = {split: name for split, name in (("train", config.train_file),
                                                 ("valid", config.valid_file),
                                                 ("test", config.test_file)) if name}
        corpus = text.read_corpus(config.data_dir or DEFAULT_DIRS[config.dataset], files)
    if config.max_tokens:
        for split in text.SPLITS:
            setattr(corpus, split, getattr(corpus, split)[:config.max_tokens])
    return corpus


def train_pairs(train_stream, search_stream, bptt, steps, first_epoch, epochs, seed):
    """(train chunk, search chunk) pairs for epochs first_epoch..epochs-1.

    Train chunks have DARTS's random lengths (35, or 17 w.p. 0.05), drawn from
    a generator seeded by (seed, epoch) so a resumed run sees the same chunks;
    search chunks walk the search stream in steps of `bptt`, wrapping around.
    """
    starts, lengths = [], []
    for epoch in range(first_epoch, epochs):
        s, n = text.random_chunks(train_stream, bptt, steps,
                                  np.random.default_rng([seed, epoch]))
        starts.append(s)
        lengths.append(n)
    search_starts, search_lengths = text.fixed_chunks(search_stream, bptt)
    full = search_lengths == bptt
    search_starts = search_starts[full] if full.any() else search_starts
    total = steps * (epochs - first_epoch)
    offset = (steps * first_epoch) % len(search_starts)
    picks = (offset + np.arange(total)) % len(search_starts)
    search = text.chunk_dataset(search_stream, search_starts[picks],
                                np.full(total, min(bptt, search_stream.shape[1] - 1)))
    train = text.chunk_dataset(train_stream, np.concatenate(starts), np.concatenate(lengths))
    return tf.data.Dataset.zip((train, search)).prefetch(2)


def eval_chunks(stream, bptt):
    return text.chunk_dataset(stream, *text.fixed_chunks(stream, bptt)).prefetch(2)


def build_searcher(config, vocab_size):
    """The search language model, the searcher and both optimizers (inside a
    strategy scope)."""
    if config.searcher not in RNN_SEARCHERS:
        raise RunFailed(f"--searcher={config.searcher} has no recurrent version; use one of "
                        f"{', '.join(RNN_SEARCHERS)}")
    darts = config.searcher == "darts1"
    op_names = search_model.DARTS_ACTIVATIONS if darts else search_model.NASP_ACTIVATIONS
    model = search_model.search_language_model(
        vocab_size, config.rnn_units, op_names, config.rnn_steps, config.dropout,
        config.dropouth, config.dropoutx, config.dropouti, config.dropoute, seed=config.seed,
        name="rnn_search_model")
    common = dict(batch_size=config.batch_size, search_batch_size=config.batch_size,
                  eval_batch_size=config.eval_batch_size, bptt=config.bptt,
                  grad_clip=config.grad_clip, weight_decay=config.weight_decay,
                  tar_beta=config.tar_beta, ar_alpha=config.ar_alpha)
    if darts:
        searcher = darts_rnn.DARTSRNNSearcher(model, name="darts_rnn", **common)
    else:
        searcher = nasp_rnn.NASPRNNSearcher(model, keep_value=config.prox_value == "keep",
                                            derive=config.derive, name="nasp_rnn", **common)
    # The coupled decay and the seq_len/bptt scale are applied by the searcher.
    searcher.compile(
        weight_optimizer=optimizers.TorchSGD(config.learning_rate, config.momentum, 0.0),
        arch_optimizer=optimizers.TorchAdam(config.arch_learning_rate, beta_1=config.arch_beta1,
                                            l2=config.arch_weight_decay))
    return searcher


def run(config, flags_text=""):
    if config.searcher not in RNN_SEARCHERS:  # before any work or log line
        raise RunFailed(f"--searcher={config.searcher} has no recurrent version; use one of "
                        f"{', '.join(RNN_SEARCHERS)}")
    run_dir = config.output_dir
    corpus = load_corpus(config)
    train_stream = text.batchify(corpus.train, config.batch_size)
    search_stream = text.batchify(corpus.valid, config.batch_size)
    valid_stream = text.batchify(corpus.valid, config.eval_batch_size)
    steps = config.steps_per_epoch or max(1, (train_stream.shape[1] - 1) // config.bptt)
    strategy = start_run(config, flags_text)
    logging.info("%s: vocabulary %d, %d/%d/%d tokens, %d steps per epoch, batch %d, "
                 "%d replica(s)", corpus.name, corpus.vocab_size, len(corpus.train),
                 len(corpus.valid), len(corpus.test), steps, config.batch_size,
                 strategy.num_replicas_in_sync)
    with strategy.scope():
        searcher = build_searcher(config, corpus.vocab_size)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        checkpoint = checkpoints.make_checkpoint(
            searcher, epoch=epoch, weight_optimizer=searcher.weight_optimizer,
            arch_optimizer=searcher.arch_optimizer)
    manager = checkpoints.manager_for(checkpoint, run_dir)
    initial_epoch = checkpoints.restore_latest(checkpoint, manager) if config.resume else 0
    if initial_epoch:
        logging.info("resuming from %s at epoch %d", manager.latest_checkpoint, initial_epoch + 1)
    logging.info("search model: %d parameters, searcher %s",
                 model_lib.parameter_count(searcher.model), config.searcher)

    guard = callbacks_lib.NaNGuard()
    if initial_epoch < config.epochs:
        pairs = train_pairs(train_stream, search_stream, config.bptt, steps, initial_epoch,
                            config.epochs, config.seed)
        searcher.fit(pairs, epochs=config.epochs, steps_per_epoch=steps,
                     initial_epoch=initial_epoch,
                     validation_data=eval_chunks(valid_stream, config.bptt),
                     verbose=config.verbose, shuffle=False, callbacks=[
                         rnn_callbacks.ResetStates(), guard,
                         rnn_callbacks.RNNSearchHistory(run_dir, checkpoint, manager,
                                                        config.learning_rate, config.epochs),
                         keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard"),
                                                     write_graph=False)])
    raise_if_diverged(guard, run_dir)
    genotype = searcher.genotype()
    genotype_lib.write_json(genotype, os.path.join(run_dir, "genotype.json"))
    genotype_lib.write_rnn_cell_pictures(genotype, run_dir)
    valid = searcher.evaluate(eval_chunks(valid_stream, config.bptt), verbose=0,
                              return_dict=True)
    logging.info("genotype: %s", genotype.to_json())
    print(f"search valid perplexity (discrete cell, shared weights): "
          f"{rnn_base.perplexity(valid['loss']):.2f}")
    return genotype
