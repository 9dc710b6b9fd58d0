"""Text retraining: the language model of a recurrent genotype (or the LSTM
baseline), with DARTS's averaged-SGD switch, and its export (bin/train.py
with a text dataset).

Writes flags.txt, genotype.json (the genotype trained; not for LSTM),
checkpoints/, best/ (the best validation weights, averaged
after the switch), history.json, results.json, tensorboard/, saved_model/
(signature `serve`: token ids [batch, time] and a state -> next-token
log-probabilities and the new state) and model.keras.
"""


import keras
import tensorflow as tf
from absl import logging

from nasp_tf import callbacks as callbacks_lib
from nasp_tf import checkpoints
from nasp_tf import counting
from nasp_tf import export
from nasp_tf import fs
from nasp_tf import genotype as genotype_lib
from nasp_tf import optimizers
from nasp_tf.data import text
from nasp_tf.pipelines import common
from nasp_tf.rnn import losses
from nasp_tf.rnn import model as model_lib
from nasp_tf.rnn import trainer as trainer_lib

BASELINE = "LSTM"


class ChunkLosses(keras.callbacks.Callback):
    """The mean token loss of every chunk of an evaluation, recovered from the
    running mean `evaluate` reports after each chunk and the chunks' token
    counts.

    Args:
      stream: the batchified evaluation stream, [batch, tokens].
      bptt: the evaluation's chunk length.
    """

    def __init__(self, stream, bptt):
        super().__init__()
        _, lengths = text.fixed_chunks(stream, bptt)
        self.tokens = [int(n) * stream.shape[0] for n in lengths]
        self.losses, self._seen, self._total = [], 0, 0.0

    def on_test_batch_end(self, batch, logs=None):
        self._seen += self.tokens[batch]
        total = float(logs["loss"]) * self._seen
        self.losses.append((total - self._total) / self.tokens[batch])
        self._total = total


def build_model(config, vocab_size, genotype):
    """The language model of `genotype` (the loaded --genotype), or the LSTM
    baseline when it is None."""
    if genotype is None:
        return model_lib.lstm_language_model(vocab_size, config.rnn_units, config.dropout,
                                             config.dropouti, config.dropoute, config.seed)
    return model_lib.language_model(genotype, vocab_size, config.rnn_units, config.dropout,
                                    config.dropouth, config.dropoutx, config.dropouti,
                                    config.dropoute, config.seed)


def run(config, flags_text=""):
    genotype = (None if config.genotype == BASELINE
                else genotype_lib.load_rnn_genotype(config.genotype))
    if config.dry_run:
        model = build_model(config, text.VOCAB_SIZES.get(config.dataset, 50), genotype)
        print(f"parameters: {counting.parameter_count(model)}")
        return model
    corpus, train_stream, valid_stream, steps = text.corpus_streams(config, "train")
    test_stream = text.batchify(corpus.test, config.test_batch_size)
    run = common.Run(config, flags_text, config.export_only)
    with run.strategy.scope():
        model = build_model(config, corpus.vocab_size, genotype)
        trainer = trainer_lib.LMTrainer(
            model, config.batch_size, config.eval_batch_size, config.bptt, config.grad_clip,
            config.weight_decay, config.tar_beta, config.ar_alpha, name="lm_trainer")
        # The coupled decay and the seq_len/bptt scale are applied by the trainer.
        trainer.compile(optimizers.TorchSGD(config.learning_rate, config.momentum, 0.0))
        best = tf.train.Checkpoint(weights=checkpoints.variables_by_path(model))
    run.resume(trainer, optimizer=trainer.optimizer)
    parameters = counting.parameter_count(model)
    logging.info("%s: vocabulary %d, %d steps per epoch; %s language model, %d parameters",
                 corpus.name, corpus.vocab_size, steps, config.genotype, parameters)
    if genotype is not None:
        genotype_lib.write_json(genotype, run.path("genotype.json"))

    if not config.export_only:
        def chunks_from(epoch, step):
            return text.training_chunks(train_stream, config.bptt, steps, epoch, config.epochs,
                                        config.seed, jitter=5.0).skip(step).prefetch(2)

        run.fit(trainer, chunks_from, steps, text.eval_chunks(valid_stream, config.bptt), [
                    callbacks_lib.ResetStates(),
                    callbacks_lib.ASGDSwitch(trainer, best, run.dir, config.nonmono,
                                             config.asgd),
                    callbacks_lib.EpochCheckpoint(
                        run.save, config.epochs, run.dir,
                        lambda epoch: config.learning_rate,
                        extras=lambda: {"asgd": int(trainer.is_averaging)})],
                lambda epoch: config.learning_rate)
    best_path = run.path("best", "weights")
    if fs.exists(best_path + ".index"):
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
        chunks = ChunkLosses(stream, config.bptt)
        logs = evaluator.evaluate(text.eval_chunks(stream, config.bptt), verbose=0,
                                  return_dict=True, callbacks=[chunks])
        results[f"{split}_loss"] = float(logs["loss"])
        results[f"{split}_ppl"] = losses.perplexity(logs["loss"])
        # The test perplexity's sampling error over the text follows from these.
        results[f"{split}_chunk_losses"] = chunks.losses
    run.write_results(results, f"{config.genotype}: parameters {parameters}, valid perplexity "
                      f"{results['valid_ppl']:.2f}, test perplexity {results['test_ppl']:.2f}")
    if config.export:
        run.export(model, lambda directory: export.export_language_model(model, directory))
    return results
