"""One SpaceSearcher run of 4 steps, on one device or mirrored over two
logical CPU devices (they must be made before TensorFlow starts, hence a
process of its own): python space_mirrored_worker.py single|mirrored SEARCHER
keras|nasp_tf OUT.npz"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

import nasp_tf  # noqa: E402

mode, searcher_name, optimizers, out = sys.argv[1:5]
keras.utils.set_random_seed(0)
rng = np.random.RandomState(0)
x, xv = rng.randn(64, 6).astype("float32"), rng.randn(64, 6).astype("float32")
truth = rng.randn(6, 3)
y, yv = (x @ truth).astype("float32"), (xv @ truth).astype("float32")


def dense(units, seed, name, activation=None):
    return keras.layers.Dense(units, activation=activation, name=name,
                              kernel_initializer=keras.initializers.GlorotUniform(seed))


def build():
    inputs = keras.Input((6,))
    h = nasp_tf.Choice({"a": dense(8, 1, "a", "relu"), "b": dense(8, 2, "b", "tanh")},
                       name="c")(inputs)
    merged = nasp_tf.InputChoice(1, name="s")([h, dense(8, 3, "p")(inputs)])
    return keras.Model(inputs, dense(3, 4, "o")(merged))


strategy = (tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]) if mode == "mirrored"
            else tf.distribute.get_strategy())
with strategy.scope():
    searcher = nasp_tf.SpaceSearcher(build(), searcher=searcher_name, eta=0.3, grad_clip=0.5)
    searcher.arch_vars["c"].assign([[0.5, 0.55]])
    searcher.arch_vars["s"].assign([[0.5], [0.52]])
    if optimizers == "keras":
        weight, arch = keras.optimizers.SGD(0.1, momentum=0.9), keras.optimizers.Adam(0.02)
    else:
        weight, arch = nasp_tf.TorchSGD(0.1, 0.9), nasp_tf.TorchAdam(0.02)
    searcher.compile(weight_optimizer=weight, arch_optimizer=arch, loss="mse")
data = tf.data.Dataset.from_tensor_slices(((x, y), (xv, yv))).batch(16).repeat()
searcher.fit(data, epochs=1, steps_per_epoch=4, verbose=0)
np.savez(out, **{v.path.replace("/", "_"): np.array(v.numpy()) for v in searcher.weights})
