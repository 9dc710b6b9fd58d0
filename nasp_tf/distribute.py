"""The tf.distribute strategy a run uses, chosen by a flag, and which worker
of a cluster this process is."""

import json
import os

import keras
import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")


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
    """`default` (one device), `mirrored` (every GPU, else every logical CPU)
    or `multi_worker` (MultiWorkerMirroredStrategy over the cluster in
    TF_CONFIG, ring all-reduce: the collective implementation that runs on
    CPUs too)."""
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy. Received: {name!r}; choose one of {STRATEGIES}")
    split_cpu(cpu_devices)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multi_worker":
        _reduce_logs_across_workers()
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    cross_ops = None if gpus else tf.distribute.ReductionToOneDevice()
    return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross_ops)


def is_cluster(strategy):
    """Whether `strategy` spans the workers of a cluster (MultiWorkerMirroredStrategy)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _reduce_logs_across_workers():
    """Keras 3's `fit` reduces each step's logs across workers with
    `strategy.reduce(op, value, axis=0)`, which fails for the scalar losses
    and metrics every step returns ("Invalid reduction dimension 0 for input
    with 0 dimensions", keras-team/keras#20585). Under
    MultiWorkerMirroredStrategy the logs are reduced with axis=None instead
    (the mean of each value over the workers); other strategies and
    `predict`'s concatenation keep Keras's own path."""
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    if getattr(original, "reduces_scalars_across_workers", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if is_cluster(strategy) and reduction in ("auto", "mean", "sum"):
            op = "SUM" if reduction == "sum" else "MEAN"
            return tf.nest.map_structure(lambda v: strategy.reduce(op, v, axis=None), values)
        return original(values, strategy, reduction)

    reduce_per_replica.reduces_scalars_across_workers = True
    tf_trainer.reduce_per_replica = reduce_per_replica


def worker_role():
    """(this worker's index, whether it is the chief) in the cluster of
    TF_CONFIG; (0, True) outside a cluster. The chief is the task of type
    `chief`, else worker 0 (TensorFlow's convention)."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return 0, True
    config = json.loads(text)
    task = config.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    if kind == "chief":
        return 0, True
    has_chief = bool(config.get("cluster", {}).get("chief"))
    return index + (1 if has_chief else 0), (kind == "worker" and index == 0 and not has_chief)


class StrategyModel(keras.Model):
    """A Keras model that also starts `fit` under MultiWorkerMirroredStrategy.

    Before the first step, Keras 3 builds a model under a strategy from one
    batch averaged over the replicas (`strategy.reduce`); with
    MultiWorkerMirroredStrategy that reduce fails in eager mode ("Attempt to
    convert a value (PerReplica ...) to a Tensor", keras-team/keras#20585).
    The build needs shapes, not values: on a cluster it takes this worker's
    first replica's batch instead. Elsewhere Keras's own path runs.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = getattr(self, "_distribute_strategy", None)
        if iterator is None or not is_cluster(strategy):
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            data_batch = tf.nest.map_structure(
                lambda x: (strategy.experimental_local_results(x)[0]
                           if isinstance(x, tf.distribute.DistributedValues) else x), next(it))
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)


# A cluster's build cost. MultiWorkerMirroredStrategy sends every new
# variable's initial value from the chief with a collective of its own: for
# the quick start's supernet, thousands of round trips. The helpers below send
# them all in one collective per dtype.


def create_variables_locally(strategy):
    """Until `broadcast_from_chief`, variables made under `strategy` start
    from this worker's own initial value instead of the chief's, sent one
    collective per variable. Every worker builds the same model from the
    same seed; `broadcast_from_chief` then makes every value the chief's."""
    extended = strategy.extended
    original = type(extended)._get_variable_creator_initial_value

    def initial_value(replica_id, device, primary_var, **kwargs):
        if replica_id != 0:  # further replicas of this worker copy its first
            return original(extended, replica_id=replica_id, device=device,
                            primary_var=primary_var, **kwargs)

        def make():
            with tf.device(device):
                value = kwargs["initial_value"]
                value = value() if callable(value) else value
                # A value restored on creation comes wrapped (CheckpointInitialValue).
                value = getattr(value, "wrapped_value", value)
                return tf.convert_to_tensor(value, dtype=kwargs.get("dtype"))

        return make

    extended._get_variable_creator_initial_value = initial_value


def _tf_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


def local_variables(strategy, variables):
    """The tf.Variable(s) of this worker's replicas behind each of `variables`
    (Keras or distributed variables), flattened."""
    found = []
    for variable in variables:
        found.extend(strategy.experimental_local_results(_tf_variable(variable)))
    return found


def _sum_over_workers(strategy, tensors):
    """The sum over the workers of each of this worker's `tensors`: one
    collective per dtype, of all of them concatenated (what TensorFlow's own
    packing does, without its per-tensor tracing: seconds for a supernet's
    thousands of variables)."""

    @tf.function(autograph=False)
    def sum_vector(vector):
        def on_replica():
            # Made on the replica's device: the all-reduce sends from there.
            return tf.distribute.get_replica_context().all_reduce("SUM", tf.identity(vector))
        return strategy.experimental_local_results(strategy.run(on_replica))[0]

    results = [None] * len(tensors)
    groups = {}
    for i, tensor in enumerate(tensors):
        groups.setdefault(tensor.dtype, []).append(i)
    for indices in groups.values():
        parts = [tensors[i] for i in indices]
        total = sum_vector(tf.concat([tf.reshape(t, [-1]) for t in parts], 0))
        pieces = tf.split(total, [t.shape.num_elements() for t in parts])
        for i, part, piece in zip(indices, parts, pieces):
            results[i] = tf.reshape(piece, part.shape)
    return results


def broadcast_from_chief(strategy, variables, is_chief):
    """Gives every worker the chief's values of `variables` (the sum of the
    chief's values and zeros from the others), and ends
    `create_variables_locally`: variables made after this take the chief's
    initial value as TensorFlow does."""
    extended = strategy.extended
    extended.__dict__.pop("_get_variable_creator_initial_value", None)
    targets = [v for v in local_variables(strategy, variables)
               if v.dtype.is_floating or v.dtype.is_integer]
    if not targets:
        return
    sent = [v.read_value() if is_chief else tf.zeros_like(v) for v in targets]
    for target, value in zip(targets, _sum_over_workers(strategy, sent)):
        target.assign(value)
