"""Run by test_mirrored.py in a fresh process (the CPU is split into two
logical devices before TensorFlow initialises): batch-norm statistics whose
replicas hold different values are checkpointed by `make_checkpoint` and
restored into a fresh copy. Prints one JSON line."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from nasp_tf import checkpoints, distribute  # noqa: E402
from nasp_tf.cnn import ops  # noqa: E402


def build():
    inputs = keras.Input((3, 3, 5))
    h = ops.BatchNorm(name="bn1")(inputs)
    h = keras.layers.Conv2D(4, 1, name="conv", dtype="float32")(h)
    return keras.Model(inputs, ops.BatchNorm(affine=False, name="bn2")(h))


def main(directory):
    strategy = distribute.get_strategy("mirrored", 2)
    with strategy.scope():
        model = build()
        checkpoint = checkpoints.make_checkpoint(model)
    stats = [v for v in model.weights if "moving" in v.path]
    rng = np.random.RandomState(0)
    per_replica = {v.path: [rng.standard_normal(v.shape).astype(np.float32) for _ in range(2)]
                   for v in stats}

    def set_local(v):
        context = tf.distribute.get_replica_context()
        values = tf.constant(np.stack(per_replica[v.path]))
        v.value.assign(values[context.replica_id_in_sync_group])

    for v in stats:
        strategy.run(set_local, args=(v,))
    packed = sorted(k for k, v in checkpoint.weights.items()
                    if type(v).__name__ == "_PackedOnRead")
    manager = checkpoints.manager_for(checkpoint, directory)
    manager.save(checkpoint_number=1)
    manager.save(checkpoint_number=2)  # a second save reads the values again
    prefix = os.path.join(directory, "checkpoints", "ckpt-2")
    reader = tf.train.load_checkpoint(prefix)
    saved = {}
    for name, _ in tf.train.list_variables(prefix):
        if name.startswith("weights/"):
            saved[name] = reader.get_tensor(name)
    # TensorFlow's own checkpoint of the same variables, unpacked: the same keys.
    with strategy.scope():
        plain = tf.train.Checkpoint(weights=checkpoints.variables_by_path(model))
    plain_prefix = plain.write(os.path.join(directory, "plain", "ckpt"))
    plain_reader = tf.train.load_checkpoint(plain_prefix)
    plain_saved = {name: plain_reader.get_tensor(name)
                   for name, _ in tf.train.list_variables(plain_prefix)
                   if name.startswith("weights/")}
    with strategy.scope():
        fresh = build()
        restored = checkpoints.make_checkpoint(fresh)
    epoch, step, _ = checkpoints.restore_latest(restored, directory)
    report = {
        "packed": packed,
        "keys_equal": sorted(saved) == sorted(plain_saved),
        "values_equal_plain": all(np.array_equal(saved[k], plain_saved[k]) for k in saved),
        "stats": {},
    }
    for v in stats:
        key = next(k for k in saved if v.path.replace("/", "..") in k)
        fresh_v = next(w for w in fresh.weights if w.path == v.path)
        local = [np.asarray(x) for x in strategy.experimental_local_results(fresh_v.value)]
        report["stats"][v.path] = {
            "saved_minus_mean": float(np.abs(saved[key] - np.mean(per_replica[v.path], 0)).max()),
            "restored_minus_mean": max(float(np.abs(x - np.mean(per_replica[v.path], 0)).max())
                                       for x in local),
            "replicas_differed": float(np.abs(per_replica[v.path][0]
                                              - per_replica[v.path][1]).max())}
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
