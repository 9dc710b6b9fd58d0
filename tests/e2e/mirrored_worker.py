"""Run by test_mirrored.py in a fresh process (the CPU must be split into
logical devices before TensorFlow initialises): CNN and recurrent search and
retraining on one device and on two logical CPU devices must agree.

Every model trains on batches whose two halves are equal, so each replica's
batch-norm statistics equal the single device's: the runs must then agree to
rounding, which checks loss scaling, gradient aggregation and the mirrored
variables exactly. Prints one JSON line: a report per case.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from nasp_tf import distribute, optimizers, spaces  # noqa: E402
from nasp_tf import genotype as genotype_lib  # noqa: E402
from nasp_tf.cnn import model as model_lib  # noqa: E402
from nasp_tf.cnn import search_model  # noqa: E402
from nasp_tf.cnn import trainer as trainer_lib  # noqa: E402
from nasp_tf.rnn import model as rnn_model_lib  # noqa: E402
from nasp_tf.rnn import search_model as rnn_search_model  # noqa: E402
from nasp_tf.rnn import trainer as rnn_trainer_lib  # noqa: E402
from nasp_tf.search import darts, darts_rnn, nasp, nasp_rnn  # noqa: E402

STEPS, BATCH = 3, 8
ARCH_RATE, RNN_ARCH_RATE = 0.5, 5.0  # of second-order searches (A moves ~0.01-0.1)
VOCAB, UNITS = 20, 6
# A pool, the identity and a convolution with batch norm: every kind of op
# that meets the replicas differently, at under half darts7's graph.
SPACE = spaces.CNNSpace("mirrored3", ("max_pool_3x3", "skip_connect", "sep_conv_3x3"),
                        ("max_pool_3x3", "skip_connect", "sep_conv_3x3"))


def twins(build, copy_weights):
    """The same model on one device and, with the same weights, on two replicas."""
    tf.keras.utils.set_random_seed(0)
    single = build()
    strategy = distribute.get_strategy("mirrored")
    with strategy.scope():
        mirrored = build()
    copy_weights(single, mirrored)
    return single, mirrored, strategy


def max_rel_diff(first, second):
    return max(float(np.abs(a.numpy() - b.numpy()).max() / (np.abs(a.numpy()).max() + 1e-8))
               for a, b in zip(first, second))


def fit_both(single, mirrored, data):
    for model in (single, mirrored):
        model.fit(data, epochs=1, steps_per_epoch=STEPS, verbose=0, shuffle=False)


# CNN


def doubled_batches(seed, size):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(STEPS, BATCH // 2, size, size, 3)).astype(np.float32)
    y = rng.integers(0, 5, (STEPS, BATCH // 2))
    x = np.concatenate([x, x], axis=1).reshape(STEPS * BATCH, size, size, 3)
    y = np.concatenate([y, y], axis=1).reshape(STEPS * BATCH)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)


def build_searcher(kind="nasp"):
    # One node keeping one of its two edges: every cell has a pruned edge and
    # a kept one.
    space = spaces.with_none(SPACE) if kind == "darts2" else SPACE
    net = search_model.SearchNetwork(space, 5, 4, 3, 1, (8, 8, 3))
    if kind == "darts2":
        searcher = darts.DARTSSearcher(net, order=2)
    else:
        searcher = nasp.NASPSearcher(net, eta=0.5, keep_edges=1)
    # Second order steps A by plain SGD: Adam's normalised step would hide a
    # gradient that is off by a factor.
    arch_optimizer = (optimizers.TorchAdam(0.01) if kind == "nasp"
                      else optimizers.TorchSGD(ARCH_RATE, 0.0, 0.0))
    searcher.compile(optimizers.TorchSGD(0.05, 0.9, 3e-4), arch_optimizer)
    return searcher


def cnn_search(kind_of_search="nasp"):
    single, mirrored, strategy = twins(lambda: build_searcher(kind_of_search),
                                       lambda s, m: m.set_weights(s.get_weights()))
    start = {k: v.numpy().copy() for k, v in single.arch_vars.items()}
    fit_both(single, mirrored,
             tf.data.Dataset.zip((doubled_batches(0, 8), doubled_batches(2, 8))))
    report = {"replicas": strategy.num_replicas_in_sync}
    for kind in ("normal", "reduce"):
        first = single.discrete_arch()[kind][0].numpy()
        second = mirrored.discrete_arch()[kind][0].numpy()
        if kind_of_search == "darts2":
            # DARTS's Ā takes each edge's most probable op: compare the edges
            # whose top two ops are more than rounding apart (a row of ops
            # with equal gradients stays tied to 1e-6).
            a = np.sort(single.arch_vars[kind].numpy()[:, 1:], axis=1)
            decided = a[:, -1] - a[:, -2] > 1e-4
            report[f"decided_{kind}"] = int(decided.sum())
            first, second = first[decided], second[decided]
        report[f"abar_equal_{kind}"] = bool(np.array_equal(first, second))
        report[f"a_max_diff_{kind}"] = float(np.abs(
            single.arch_vars[kind].numpy() - mirrored.arch_vars[kind].numpy()).max())
        report[f"a_moved_{kind}"] = float(np.abs(single.arch_vars[kind].numpy()
                                                 - start[kind]).max())
    report["weight_max_rel_diff"] = max_rel_diff(single.supernet.trainable_weights,
                                                 mirrored.supernet.trainable_weights)
    report["steps"] = int(mirrored.weight_optimizer.iterations.numpy())
    return report


def build_trainer():
    # Drop path off: its random masks are drawn per replica.
    net = model_lib.network_cifar(genotype_lib.PUBLISHED["DARTS_V2"], 5, 4, 3, True,
                                  (32, 32, 3))
    trainer = trainer_lib.FinalTrainer(net, aux_weight=0.4, label_smoothing=0.1)
    trainer.compile(optimizer=optimizers.TorchSGD(0.05, 0.9, 3e-4))
    trainer.optimizer.build(net.trainable_weights)
    return trainer


def cnn_train():
    # Auxiliary loss and label smoothing on.
    single, mirrored, strategy = twins(
        build_trainer, lambda s, m: m.network.set_weights(s.network.get_weights()))
    before = [w.numpy().copy() for w in single.network.trainable_weights]
    fit_both(single, mirrored, doubled_batches(1, 32))
    a, b = single.network.trainable_weights, mirrored.network.trainable_weights
    return {"replicas": strategy.num_replicas_in_sync,
            "weight_max_rel_diff": max_rel_diff(a, b),
            "moved": max(float(np.abs(x.numpy() - w).max()) for x, w in zip(a, before)),
            "steps": int(mirrored.optimizer.iterations.numpy())}


# Recurrent


def doubled_chunks(seed, length=5):
    """Chunks whose two halves (the two replicas' rows) are equal; each
    replica carries its own rows' hidden state."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCAB, (STEPS, BATCH // 2, length + 1)).astype(np.int32)
    tokens = np.concatenate([tokens, tokens], axis=1)
    return tf.data.Dataset.from_tensor_slices((tokens[:, :, :-1], tokens[:, :, 1:]))


def build_rnn_searcher(kind="nasp"):
    # Dropouts off: masks are drawn per replica. Two nodes: a cell with every
    # kind of node (s0 and searched ones) at a quarter of eight nodes' graph.
    darts2 = kind == "darts2"
    op_names = (spaces.RECURRENT_ACTIVATIONS_WITH_NONE if darts2
                else spaces.RECURRENT_ACTIVATIONS)
    lm = rnn_search_model.search_language_model(VOCAB, UNITS, op_names, steps=2, seed=1)
    cls, options = ((darts_rnn.DARTSRNNSearcher, {"order": 2}) if darts2
                    else (nasp_rnn.NASPRNNSearcher, {}))
    searcher = cls(lm, batch_size=BATCH, search_batch_size=BATCH, eval_batch_size=BATCH,
                   bptt=5, **options)
    searcher.compile(optimizers.TorchSGD(2.0, 0.0, 0.0),
                     optimizers.TorchSGD(RNN_ARCH_RATE, 0.0, 0.0) if darts2
                     else optimizers.TorchAdam(0.05, 0.9))
    return searcher


def build_rnn_trainer():
    lm = rnn_model_lib.language_model(genotype_lib.RNN_PUBLISHED["DARTS_V2"], VOCAB, UNITS,
                                      seed=1)
    trainer = rnn_trainer_lib.LMTrainer(lm, BATCH, BATCH, bptt=5)
    trainer.compile(optimizers.TorchSGD(2.0, 0.0, 0.0))
    trainer.start_averaging()
    return trainer


def copy_model(single, mirrored):
    mirrored.model.set_weights(single.model.get_weights())
    if hasattr(single, "arch_var"):  # DARTS draws A at random: the same start for both
        mirrored.arch_var.assign(single.arch_var.numpy())


def rnn_search(kind="nasp"):
    single, mirrored, strategy = twins(lambda: build_rnn_searcher(kind), copy_model)
    start = single.arch_var.numpy().copy()
    fit_both(single, mirrored, tf.data.Dataset.zip((doubled_chunks(0), doubled_chunks(1))))
    val = {name: m.evaluate(doubled_chunks(2), verbose=0, return_dict=True)["loss"]
           for name, m in (("single", single), ("mirrored", mirrored))}
    return {
        "replicas": strategy.num_replicas_in_sync,
        "a_max_diff": float(np.abs(single.arch_var.numpy() - mirrored.arch_var.numpy()).max()),
        "a_moved": float(np.abs(single.arch_var.numpy() - start).max()),
        "weight_max_rel_diff": max_rel_diff(single.model.trainable_weights,
                                            mirrored.model.trainable_weights),
        "hidden_max_diff": float(np.abs(
            np.concatenate(mirrored.train_hidden.values)
            - single.train_hidden.numpy()).max()),
        "val_loss_diff": abs(val["single"] - val["mirrored"]),
        "steps": int(mirrored.weight_optimizer.iterations.numpy())}


def rnn_train():
    single, mirrored, strategy = twins(build_rnn_trainer, copy_model)
    fit_both(single, mirrored, doubled_chunks(3))
    return {"replicas": strategy.num_replicas_in_sync,
            "weight_max_rel_diff": max_rel_diff(single.model.trainable_weights,
                                                mirrored.model.trainable_weights),
            "average_max_rel_diff": max_rel_diff(single.averages, mirrored.averages),
            "steps": int(mirrored.optimizer.iterations.numpy())}


CASES = {"cnn_search": cnn_search, "cnn_train": cnn_train, "rnn_search": rnn_search,
         "rnn_train": rnn_train,
         # Second order: every replica unrolls on its half of the batches.
         # (Second-order PA runs the same unrolled step, in the supernet's
         # "arch" mode.)
         "cnn_darts2": lambda: cnn_search("darts2"), "rnn_darts2": lambda: rnn_search("darts2")}


def main(names):
    distribute.split_cpu(2)
    print(json.dumps({name: CASES[name]() for name in names or CASES}))


if __name__ == "__main__":
    main(sys.argv[1:])
