"""Run by test_mirrored.py in a fresh process (the CPU must be split into
logical devices before TensorFlow initialises): CNN search and retraining on
one device and on two logical CPU devices must agree."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from nasp_tf import distribute, optimizers  # noqa: E402
from nasp_tf import genotype as genotype_lib  # noqa: E402
from nasp_tf.cnn import model as model_lib  # noqa: E402
from nasp_tf.cnn import search_model  # noqa: E402
from nasp_tf.cnn import trainer as trainer_lib  # noqa: E402
from nasp_tf.search import nasp  # noqa: E402

STEPS, BATCH = 3, 8


def build():
    # One node keeping one of its two edges: every cell has a pruned edge and
    # a kept one, in a graph a third the size of two nodes'.
    net = search_model.SearchNetwork("darts7", 5, 4, 3, 1, (8, 8, 3))
    searcher = nasp.NASPSearcher(net, eta=0.5, keep_edges=1)
    searcher.compile(optimizers.TorchSGD(0.05, 0.9, 3e-4), optimizers.TorchAdam(0.01))
    return searcher


def doubled_batches(seed, size):
    """Batches whose two halves are equal, so each replica's batch-norm
    statistics equal the single device's: the runs must then agree to
    rounding, which checks loss scaling, gradient aggregation and the
    mirrored variables exactly."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(STEPS, BATCH // 2, size, size, 3)).astype(np.float32)
    y = rng.integers(0, 5, (STEPS, BATCH // 2))
    x = np.concatenate([x, x], axis=1).reshape(STEPS * BATCH, size, size, 3)
    y = np.concatenate([y, y], axis=1).reshape(STEPS * BATCH)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)


def dataset():
    return tf.data.Dataset.zip((doubled_batches(0, 8), doubled_batches(2, 8)))


def twins(build, copy_weights):
    """The same model on one device and, with the same weights, on two replicas."""
    distribute.split_cpu(2)
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


def build_trainer():
    # Drop path off: its random masks are drawn per replica.
    net = model_lib.network_cifar(genotype_lib.PUBLISHED["DARTS_V2"], 5, 4, 3, True,
                                  (32, 32, 3))
    trainer = trainer_lib.FinalTrainer(net, aux_weight=0.4, label_smoothing=0.1)
    trainer.compile(optimizer=optimizers.TorchSGD(0.05, 0.9, 3e-4))
    trainer.optimizer.build(net.trainable_weights)
    return trainer


def main_train():
    single, mirrored, strategy = twins(
        build_trainer, lambda s, m: m.network.set_weights(s.network.get_weights()))
    before = [w.numpy().copy() for w in single.network.trainable_weights]
    for model in (single, mirrored):
        model.fit(doubled_batches(1, 32), epochs=1, steps_per_epoch=STEPS, verbose=0, shuffle=False)
    a, b = single.network.trainable_weights, mirrored.network.trainable_weights
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "weight_max_rel_diff": max_rel_diff(a, b),
        "moved": max(float(np.abs(x.numpy() - w).max()) for x, w in zip(a, before)),
        "steps": int(mirrored.optimizer.iterations.numpy())}))


def main():
    single, mirrored, strategy = twins(build, lambda s, m: m.set_weights(s.get_weights()))
    for model in (single, mirrored):
        model.fit(dataset(), epochs=1, steps_per_epoch=STEPS, verbose=0, shuffle=False)
    report = {"replicas": strategy.num_replicas_in_sync}
    for kind in ("normal", "reduce"):
        report[f"abar_equal_{kind}"] = bool(np.array_equal(
            single.discrete_arch()[kind][0].numpy(), mirrored.discrete_arch()[kind][0].numpy()))
        report[f"a_max_diff_{kind}"] = float(np.abs(
            single.arch_vars[kind].numpy() - mirrored.arch_vars[kind].numpy()).max())
        report[f"a_moved_{kind}"] = float(np.abs(single.arch_vars[kind].numpy() - 0.5).max())
    report["weight_max_rel_diff"] = max_rel_diff(single.supernet.trainable_weights,
                                                 mirrored.supernet.trainable_weights)
    report["steps"] = int(mirrored.weight_optimizer.iterations.numpy())
    print(json.dumps(report))


if __name__ == "__main__":
    main_train() if sys.argv[1:] == ["train"] else main()
