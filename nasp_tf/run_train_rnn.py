"""Retraining a recurrent genotype into a language model (bin/train.py with a
text dataset), with DARTS's averaged-SGD switch, and exporting it.

`run(config)` writes:

    flags.txt, checkpoints/, best/ (the best validation weights, averaged
    after the switch), history.json, results.json, tensorboard/,
    saved_model/ (signature `serve`: token ids [batch, time] and a state ->
    next-token log-probabilities and the new state)
"""

import json
import math
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from nasp_tf import callbacks as callbacks_lib
from nasp_tf import checkpoints
from nasp_tf import export
from nasp_tf import genotype as genotype_lib
from nasp_tf import optimizers
from nasp_tf.data import text
from nasp_tf.rnn import callbacks as rnn_callbacks
from nasp_tf.rnn import model as model_lib
from nasp_tf.rnn import trainer as trainer_lib
from nasp_tf.run_search import RunFailed, start_run
from nasp_tf.run_search_rnn import eval_chunks, load_corpus
from nasp_tf.run_train import resume_epoch
from nasp_tf.search import rnn_base

BASELINE = "LSTM"


def build_model(config, vocab_size):
    """The language model of --genotype (a recurrent genotype, or LSTM)."""
    if config.genotype == BASELINE:
        return model_lib.lstm_language_model(vocab_size, config.rnn_units, config.dropout,
                                             config.dropouti, config.dropoute, config.seed)
    genotype = genotype_lib.load_rnn_genotype(config.genotype)
    return model_lib.language_model(genotype, vocab_size, config.rnn_units, config.dropout,
                                    config.dropouth, config.dropoutx, config.dropouti,
                                    config.dropoute, config.seed)


def train_chunks(stream, bptt, steps, first_epoch, epochs, seed):
    """DARTS's rnn/train.py lengths: base bptt (or bptt/2 w.p. 0.05), then
    N(base, 5), at least 5, at most bptt + 20; seeded by (seed, epoch)."""
    starts, lengths = [], []
    for epoch in range(first_epoch, epochs):
        s, n = text.random_chunks(stream, bptt, steps, np.random.default_rng([seed, epoch]),
                                  jitter=5.0)
        starts.append(s)
        lengths.append(n)
    return text.chunk_dataset(stream, np.concatenate(starts), np.concatenate(lengths)) \
        .prefetch(2)


class ASGDSwitch(keras.callbacks.Callback):
    """DARTS's non-monotone switch to averaged SGD, the averaged weights for
    validation, and the best-validation snapshot.

    Validation runs with the averaged weights once averaging is on. At an
    epoch's end: if the validation loss is the best so far, the evaluated
    weights are written to `best/`; then, before averaging is on, if more
    than `nonmono` losses are recorded and this one is worse than the best of
    all but the last `nonmono`, averaging starts.

    Args:
      trainer: the `LMTrainer`.
      best: a `tf.train.Checkpoint` of the model's weights.
      run_dir: the run directory (history.json, best/).
      nonmono: the switch's patience.
      enabled: allow the switch at all.
    """

    def __init__(self, trainer, best, run_dir, nonmono=5, enabled=True):
        super().__init__()
        self.trainer, self.best, self.run_dir = trainer, best, run_dir
        self.nonmono, self.enabled = nonmono, enabled
        self.path = os.path.join(run_dir, "history.json")
        self.state = {"val_losses": [], "best_loss": None, "switched_at": None}
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                self.state.update(json.load(f))
        self.writer = tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard",
                                                                 "asgd"))

    def on_test_begin(self, logs=None):
        if self.trainer.is_averaging:
            self.trainer.swap_averages()

    def on_test_end(self, logs=None):
        if self.trainer.is_averaging:
            self.trainer.swap_averages()

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss")
        if loss is None or not math.isfinite(loss):
            return
        losses = self.state["val_losses"]
        if self.state["best_loss"] is None or loss < self.state["best_loss"]:
            self.state["best_loss"] = loss
            averaging = self.trainer.is_averaging
            if averaging:
                self.trainer.swap_averages()
            self.best.write(os.path.join(self.run_dir, "best", "weights"))
            if averaging:
                self.trainer.swap_averages()
        if (self.enabled and not self.trainer.is_averaging and len(losses) > self.nonmono
                and loss > min(losses[:-self.nonmono])):
            logging.info("epoch %d: validation stopped improving; switching to averaged SGD",
                         epoch + 1)
            self.trainer.start_averaging()
            self.state["switched_at"] = epoch + 1
        losses.append(loss)
        with open(self.path, "w", encoding="utf-8") as f:
            json.dump(self.state, f)
        with self.writer.as_default(step=epoch + 1):
            tf.summary.scalar("averaging", float(self.trainer.is_averaging))
            tf.summary.scalar("perplexity/val", math.exp(min(loss, 50.0)))
        self.writer.flush()


class EpochLog(keras.callbacks.Callback):
    """Checkpoints every epoch and logs one line."""

    def __init__(self, checkpoint, manager, learning_rate, epochs, run_dir):
        super().__init__()
        self.checkpoint, self.manager = checkpoint, manager
        self.learning_rate, self.epochs = learning_rate, epochs
        self.writer = tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard",
                                                                 "schedule"))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        with self.writer.as_default(step=epoch + 1):
            tf.summary.scalar("learning_rate", self.learning_rate)
        self.writer.flush()
        self.checkpoint.epoch.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1)
        metrics = " ".join(f"{k}={float(v):.4f}" for k, v in sorted(logs.items()))
        logging.info("epoch %d/%d asgd=%d %s", epoch + 1, self.epochs,
                     int(self.model.is_averaging), metrics)


def run(config, flags_text=""):
    if config.genotype != BASELINE:
        genotype_lib.load_rnn_genotype(config.genotype)  # fail fast on a bad genotype
    if config.dry_run:
        vocab = text.VOCAB_SIZES.get(config.dataset, 50)
        model = build_model(config, vocab)
        print(f"parameters: {model_lib.parameter_count(model)}")
        return model
    run_dir = config.output_dir
    corpus = load_corpus(config)
    train_stream = text.batchify(corpus.train, config.batch_size)
    valid_stream = text.batchify(corpus.valid, config.eval_batch_size)
    test_stream = text.batchify(corpus.test, config.test_batch_size)
    steps = config.steps_per_epoch or max(1, (train_stream.shape[1] - 1) // config.bptt)
    strategy = start_run(config, flags_text)
    with strategy.scope():
        model = build_model(config, corpus.vocab_size)
        trainer = trainer_lib.LMTrainer(
            model, config.batch_size, config.eval_batch_size, config.bptt, config.grad_clip,
            config.weight_decay, config.tar_beta, config.ar_alpha, name="lm_trainer")
        # The coupled decay and the seq_len/bptt scale are applied by the trainer.
        trainer.compile(optimizers.TorchSGD(config.learning_rate, config.momentum, 0.0))
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        checkpoint = checkpoints.make_checkpoint(trainer, optimizer=trainer.optimizer,
                                                 epoch=epoch)
        best = tf.train.Checkpoint(weights=checkpoints.variables_by_path(model))
    manager = checkpoints.manager_for(checkpoint, run_dir)
    parameters = model_lib.parameter_count(model)
    logging.info("%s: vocabulary %d, %d steps per epoch; %s language model, %d parameters",
                 corpus.name, corpus.vocab_size, steps, config.genotype, parameters)
    initial_epoch = resume_epoch(config, checkpoint, manager)

    if not config.export_only and initial_epoch < config.epochs:
        guard = callbacks_lib.NaNGuard()
        trainer.fit(
            train_chunks(train_stream, config.bptt, steps, initial_epoch, config.epochs,
                         config.seed),
            epochs=config.epochs, steps_per_epoch=steps, initial_epoch=initial_epoch,
            validation_data=eval_chunks(valid_stream, config.bptt), shuffle=False,
            verbose=config.verbose, callbacks=[
                rnn_callbacks.ResetStates(), guard,
                ASGDSwitch(trainer, best, run_dir, config.nonmono, config.asgd),
                EpochLog(checkpoint, manager, config.learning_rate, config.epochs, run_dir),
                keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard"),
                                            write_graph=False)])
        if guard.failed_at:
            raise RunFailed(f"the loss became NaN/inf at epoch {guard.failed_at[0]}; the "
                            f"last good checkpoint is in {run_dir}/checkpoints: lower "
                            "--learning_rate and rerun (it resumes)")
    best_path = os.path.join(run_dir, "best", "weights")
    if os.path.exists(best_path + ".index"):
        best.read(best_path).assert_consumed()
        logging.info("evaluating the best validation weights from %s", best_path)
    results = {"genotype": config.genotype, "parameters": parameters}
    tester = trainer
    if config.test_batch_size != config.eval_batch_size:
        # Its own hidden state of the test batch; on one device (a test batch of
        # 1, as the reference, does not split between replicas).
        tester = trainer_lib.LMTrainer(model, config.test_batch_size, config.test_batch_size,
                                       config.bptt, name="lm_tester")
        tester.compile(optimizers.TorchSGD(0.0, 0.0, 0.0), build_optimizer=False)
    for split, stream in (("valid", valid_stream), ("test", test_stream)):
        evaluator = trainer if split == "valid" else tester
        logs = evaluator.evaluate(eval_chunks(stream, config.bptt), verbose=0,
                                  return_dict=True)
        results[f"{split}_loss"] = float(logs["loss"])
        results[f"{split}_ppl"] = rnn_base.perplexity(logs["loss"])
    with open(os.path.join(run_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    logging.info("valid ppl %.2f, test ppl %.2f", results["valid_ppl"], results["test_ppl"])
    print(f"{config.genotype}: parameters {parameters}, valid perplexity "
          f"{results['valid_ppl']:.2f}, test perplexity {results['test_ppl']:.2f}")
    export.export_language_model(model, os.path.join(run_dir, "saved_model"))
    logging.info("exported %s", os.path.join(run_dir, "saved_model"))
    return results
