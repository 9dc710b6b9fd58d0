"""Run by test_multi_worker.py: NASP search steps and CNN retraining steps,
and NASP steps on a space of your own (`nasp_tf.SpaceSearcher`), under the strategy `argv[2]` ("multi_worker": one of the workers bin/launch.py
starts; "default": one process), on batches whose two halves are equal:
bin/launch.py's workers each get one half of every batch (TensorFlow shards
the batches in blocks), so each worker's batch-norm statistics equal one
device's (as in mirrored_worker.py) and the runs must agree up to rounding.
The chief (or the single process) writes the weights it starts and ends
with, A and Ā to `argv[1]` (.npz); the space's variables under `space_*`."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import nasp_tf  # noqa: E402
from nasp_tf import distribute, optimizers  # noqa: E402
from nasp_tf import genotype as genotype_lib  # noqa: E402
from nasp_tf.cnn import model as model_lib  # noqa: E402
from nasp_tf.cnn import search_model  # noqa: E402
from nasp_tf.cnn import trainer as trainer_lib  # noqa: E402
from nasp_tf.pipelines import space_train  # noqa: E402
from nasp_tf.search import nasp  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mirrored_worker import SPACE, STEPS, doubled_batches  # noqa: E402


def main(out, strategy_name):
    strategy = distribute.get_strategy(strategy_name)
    _, chief = distribute.worker_role() if strategy_name == "multi_worker" else (0, True)
    with strategy.scope():
        tf.keras.utils.set_random_seed(0)
        net = search_model.SearchNetwork(SPACE, 5, 4, 3, 1, (8, 8, 3))
        searcher = nasp.NASPSearcher(net, eta=0.5, keep_edges=1)
        searcher.compile(optimizers.TorchSGD(0.05, 0.9, 3e-4), optimizers.TorchAdam(0.01))
        tf.keras.utils.set_random_seed(1)
        final = model_lib.network_cifar(genotype_lib.PUBLISHED["DARTS_V2"], 5, 4, 3, True,
                                        (32, 32, 3))
        trainer = trainer_lib.FinalTrainer(final, aux_weight=0.4, label_smoothing=0.1)
        trainer.compile(optimizer=optimizers.TorchSGD(0.05, 0.9, 3e-4))
        trainer.optimizer.build(final.trainable_weights)
    start = {f"{name}_start{i}": w.numpy() for name, net_ in (("search", net), ("train", final))
             for i, w in enumerate(net_.trainable_weights)}
    searcher.fit(tf.data.Dataset.zip((doubled_batches(0, 8), doubled_batches(2, 8))),
                 epochs=1, steps_per_epoch=STEPS, verbose=0, shuffle=False)
    trainer.fit(doubled_batches(1, 32), epochs=1, steps_per_epoch=STEPS, verbose=0,
                shuffle=False)
    arrays = {"replicas": np.array(strategy.num_replicas_in_sync),
              "steps": np.array(int(searcher.weight_optimizer.iterations.numpy())),
              "train_steps": np.array(int(trainer.optimizer.iterations.numpy()))}
    for kind in ("normal", "reduce"):
        arrays[f"A_{kind}"] = searcher.arch_vars[kind].numpy()
        arrays[f"Abar_{kind}"] = searcher.discrete_arch()[kind][0].numpy()
    for i, w in enumerate(net.trainable_weights):
        arrays[f"search_w{i}"] = w.numpy()
    for i, w in enumerate(final.trainable_weights):
        arrays[f"train_w{i}"] = w.numpy()
    arrays.update(start)
    arrays.update(space_search(strategy))
    if chief:
        np.savez(out, **arrays)
    if strategy_name == "multi_worker":
        packed_collectives(strategy, out)


def _dense(units, seed, name, activation=None):
    return keras.layers.Dense(units, activation=activation, name=name,
                              kernel_initializer=keras.initializers.GlorotUniform(seed))


def space_search(strategy):
    """NASP on a regression space (a Choice of two layers and an
    InputChoice between it and a plain layer): {space_<variable>: value}
    after STEPS steps, and `space_start_<weight>` before them."""
    rng = np.random.RandomState(0)
    x, xv = rng.randn(48, 6).astype("float32"), rng.randn(48, 6).astype("float32")
    truth = rng.randn(6, 3)
    y, yv = (x @ truth).astype("float32"), (xv @ truth).astype("float32")
    with strategy.scope():
        inputs = keras.Input((6,))
        h = nasp_tf.Choice({"a": _dense(8, 1, "a", "relu"), "b": _dense(8, 2, "b", "tanh")},
                           name="c")(inputs)
        merged = nasp_tf.InputChoice(1, name="s")([h, _dense(8, 3, "p")(inputs)])
        model = keras.Model(inputs, _dense(3, 4, "o")(merged))
        searcher = nasp_tf.SpaceSearcher(model, searcher="nasp", eta=0.3, grad_clip=0.5)
        searcher.arch_vars["c"].assign([[0.5, 0.55]])
        searcher.arch_vars["s"].assign([[0.5], [0.52]])
        searcher.compile(weight_optimizer=optimizers.TorchSGD(0.1, 0.9),
                         arch_optimizer=optimizers.TorchAdam(0.02), loss="mse")
    start = {f"space_start_{_key(w)}": w.numpy() for w in model.trainable_weights}
    data = tf.data.Dataset.from_tensor_slices(((x, y), (xv, yv))).batch(16)
    searcher.fit(data, epochs=1, steps_per_epoch=STEPS, verbose=0, shuffle=False)
    found = {**start, **{f"space_{_key(v)}": np.array(v.numpy()) for v in searcher.weights}}
    # The chosen network retrained as bin/train.py --space trains it.
    with strategy.scope():
        network = searcher.export_model()
        retrained = space_train.compiled(network, 0.1, 0.9, 0.0, "mse", [])
    found.update({f"space_train_start_{_key(w)}": w.numpy() for w in network.trainable_weights})
    retrained.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(16), epochs=1,
                  steps_per_epoch=STEPS, verbose=0, shuffle=False)
    found.update({f"space_train_{_key(w)}": w.numpy() for w in network.trainable_weights})
    return found


def _key(variable):
    return variable.path.replace("/", "_")


def packed_collectives(strategy, out):
    """Worker i makes a mirrored and an integer variable of (i + 1) x BASE
    under `create_variables_locally`, then broadcasts from the chief; writes
    what it holds before and after to `out`.i.npz."""
    worker, chief = distribute.worker_role()
    base = np.arange(1.0, 7.0, dtype=np.float32).reshape(2, 3)
    distribute.create_variables_locally(strategy)
    with strategy.scope():
        mirrored = tf.Variable((worker + 1) * base)
        counter = tf.Variable((worker + 1) * np.array([3, 4], np.int64))
    local = distribute.local_variables(strategy, [mirrored, counter])
    found = {"created": local[0].numpy()}
    distribute.broadcast_from_chief(strategy, [mirrored, counter], chief)
    found.update(broadcast=local[0].numpy(), counter=local[1].numpy())
    np.savez(f"{out}.{worker}.npz", **found)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
