"""The tf.distribute strategy a run uses, chosen by a flag."""

import tensorflow as tf

STRATEGIES = ("default", "mirrored")


def split_cpu(num_devices):
    """Splits the CPU into `num_devices` logical devices (before any TF op runs).

    Lets `MirroredStrategy` run on a machine without GPUs: tests and the
    `--cpu_devices=2` flag use it to check multi-replica runs on 2 CPU cores.
    """
    if num_devices <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * num_devices)


def get_strategy(name, cpu_devices=0):
    """`default` (one device) or `mirrored` (every GPU, else every logical CPU)."""
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy. Received: {name!r}; choose one of {STRATEGIES}")
    split_cpu(cpu_devices)
    if name == "default":
        return tf.distribute.get_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    cross_ops = None if gpus else tf.distribute.ReductionToOneDevice()
    return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross_ops)
