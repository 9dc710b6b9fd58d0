"""Run by test_mirrored.py in a fresh process: recurrent search and
retraining on one device and on two logical CPU devices must agree."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mirrored_worker import max_rel_diff, twins  # noqa: E402
from nasp_tf import genotype as genotype_lib  # noqa: E402
from nasp_tf import optimizers  # noqa: E402
from nasp_tf.rnn import model as model_lib  # noqa: E402
from nasp_tf.rnn import search_model  # noqa: E402
from nasp_tf.rnn import trainer as trainer_lib  # noqa: E402
from nasp_tf.search import nasp_rnn  # noqa: E402

STEPS, BATCH, VOCAB, UNITS = 3, 8, 20, 6


def doubled_chunks(seed, length=5):
    """Chunks whose two halves (the two replicas' rows) are equal: each
    replica's batch-norm statistics then equal the single device's, and
    each replica carries its own rows' hidden state."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCAB, (STEPS, BATCH // 2, length + 1)).astype(np.int32)
    tokens = np.concatenate([tokens, tokens], axis=1)
    return tf.data.Dataset.from_tensor_slices((tokens[:, :, :-1], tokens[:, :, 1:]))


def build_searcher():
    # Dropouts off: masks are drawn per replica. Two nodes: the graph of a
    # cell with every kind of node (s0 and searched ones) at a quarter the size.
    lm = search_model.search_language_model(VOCAB, UNITS, steps=2, seed=1)
    searcher = nasp_rnn.NASPRNNSearcher(lm, batch_size=BATCH, search_batch_size=BATCH,
                                        eval_batch_size=BATCH, bptt=5)
    searcher.compile(optimizers.TorchSGD(2.0, 0.0, 0.0), optimizers.TorchAdam(0.05, 0.9))
    return searcher


def build_trainer():
    lm = model_lib.language_model(genotype_lib.RNN_PUBLISHED["DARTS_V2"], VOCAB, UNITS, seed=1)
    trainer = trainer_lib.LMTrainer(lm, BATCH, BATCH, bptt=5)
    trainer.compile(optimizers.TorchSGD(2.0, 0.0, 0.0))
    trainer.start_averaging()
    return trainer


def copy(single, mirrored):
    mirrored.model.set_weights(single.model.get_weights())


def main_search():
    single, mirrored, strategy = twins(build_searcher, copy)
    data = tf.data.Dataset.zip((doubled_chunks(0), doubled_chunks(1)))
    for model in (single, mirrored):
        model.fit(data, epochs=1, steps_per_epoch=STEPS, verbose=0, shuffle=False)
    val = {name: m.evaluate(doubled_chunks(2), verbose=0, return_dict=True)["loss"]
           for name, m in (("single", single), ("mirrored", mirrored))}
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "a_max_diff": float(np.abs(single.arch_var.numpy() - mirrored.arch_var.numpy()).max()),
        "a_moved": float(np.abs(single.arch_var.numpy() - 0.5).max()),
        "weight_max_rel_diff": max_rel_diff(single.model.trainable_weights,
                                            mirrored.model.trainable_weights),
        "hidden_max_diff": float(np.abs(
            np.concatenate(mirrored.train_hidden.values)
            - single.train_hidden.numpy()).max()),
        "val_loss_diff": abs(val["single"] - val["mirrored"]),
        "steps": int(mirrored.weight_optimizer.iterations.numpy())}))


def main_train():
    single, mirrored, strategy = twins(build_trainer, copy)
    for model in (single, mirrored):
        model.fit(doubled_chunks(3), epochs=1, steps_per_epoch=STEPS, verbose=0, shuffle=False)
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "weight_max_rel_diff": max_rel_diff(single.model.trainable_weights,
                                            mirrored.model.trainable_weights),
        "average_max_rel_diff": max_rel_diff(single.averages, mirrored.averages),
        "steps": int(mirrored.optimizer.iterations.numpy())}))


if __name__ == "__main__":
    main_train() if sys.argv[1:] == ["train"] else main_search()
