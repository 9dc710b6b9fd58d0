"""PyTorch-semantics optimizers and schedules for the search and retraining.

The reference trains with PyTorch's SGD and Adam, whose weight decay is a
coupled L2 term added to the (already clipped) gradient, and whose SGD
momentum buffer does not fold in the learning rate. Keras's own optimizers
differ on both counts once the learning rate changes every epoch
(docs/reference.md §9).

Gradients reach these optimizers already summed across replicas: the
searchers all-reduce them first, because the global-norm clip must see the
global gradient. So the optimizers skip Keras's own all-reduce.
"""

import math

import keras
import tensorflow as tf


class _PreAggregated:
    """nasp_tf's steps hand these optimizers gradients already summed over the
    replicas. With `sums_replicas` one sums them itself, as Keras's own
    optimizers do: for a model that Keras's own `train_step` trains."""

    sums_replicas = False

    def _all_reduce_sum_gradients(self, grads_and_vars):
        if self.sums_replicas:
            return super()._all_reduce_sum_gradients(grads_and_vars)
        return list(grads_and_vars)

    def get_config(self):
        config = super().get_config()
        config.update(sums_replicas=self.sums_replicas)
        return config


def sums_over_replicas(optimizer):
    """Whether `optimizer` all-reduces the gradients it is given (Keras's own
    optimizers do; nasp_tf's take them summed already, unless made with
    `sums_replicas=True`)."""
    return not isinstance(optimizer, _PreAggregated) or optimizer.sums_replicas


class _ScaledRate:
    """A factor on the learning rate, kept in a variable of the optimizer (so
    checkpoints carry it): 1 unless a run restored after a NaN
    (`--on_nan=restore`) and halved it with `scale_learning_rate`. Multiplying
    by 1.0 is exact: the updates are bit for bit those without it."""

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.rate_scale = self.add_variable((), initializer="ones", name="rate_scale")

    def _get_current_learning_rate(self):
        rate = super()._get_current_learning_rate()
        scale = getattr(self, "rate_scale", None)
        return rate if scale is None else rate * scale


def set_learning_rate_scale(optimizer, scale):
    """From now on `optimizer` (a TorchSGD or TorchAdam, built) steps at
    `scale` times its learning rate or schedule."""
    optimizer.rate_scale.assign(scale)


class TorchSGD(_ScaledRate, _PreAggregated, keras.optimizers.Optimizer):
    """SGD as PyTorch computes it: g += l2*w; buf = momentum*buf + g; w -= lr*buf.

    Args:
      learning_rate: float or schedule.
      momentum: momentum factor (no dampening, no Nesterov).
      l2: coupled weight decay.
      sums_replicas: sum the gradients over the replicas here (Keras's own
        `train_step` gives each replica's); nasp_tf's steps give them summed.
    """

    def __init__(self, learning_rate=0.025, momentum=0.9, l2=0.0, name="torch_sgd",
                 sums_replicas=False, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if momentum < 0 or l2 < 0:
            raise ValueError(f"momentum and l2 must be >= 0. Received: momentum={momentum}, l2={l2}")
        self.momentum = momentum
        self.l2 = l2
        self.sums_replicas = bool(sums_replicas)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = [self.add_variable_from_reference(v, "momentum") for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        gradient = tf.cast(gradient, variable.dtype)
        if self.l2:
            gradient = gradient + self.l2 * variable
        buf = self.momentums[self._get_variable_index(variable)]
        self.assign(buf, self.momentum * buf + gradient)
        self.assign_sub(variable, tf.cast(learning_rate, variable.dtype) * buf)

    @tf.autograph.experimental.do_not_convert
    def apply(self, grads, trainable_variables=None):
        """One fused kernel per variable instead of Keras's generic path.

        TF's ApplyMomentum is exactly PyTorch's buf = momentum*buf + g;
        w -= lr*buf. A search network has about a thousand weights, so the
        ops per weight are what its step graph costs to trace and build:
        the generic path (a distribution update and half a dozen ops per
        variable) was a third of the weight step's graph; here each weight
        costs a read, the decay (a multiply and an add) and the kernel, made
        with raw ops (no dispatch, no autograph). Gradients arrive summed
        across replicas, so each replica updates its own copy of a mirrored
        weight with identical numbers.
        """
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        if not self.built:
            self.build(trainable_variables)
        if self.sums_replicas:
            present = [i for i, g in enumerate(grads) if g is not None]
            summed = all_reduce_sum([grads[i] for i in present])
            grads = list(grads)
            for i, grad in zip(present, summed):
                grads[i] = grad
        learning_rate = tf.cast(self.learning_rate, tf.float32)
        momentum = tf.constant(self.momentum, tf.float32)
        l2 = tf.constant(self.l2, tf.float32) if self.l2 else None
        for grad, var in zip(grads, trainable_variables):
            if grad is None:
                continue
            handle = _local_handle(var)
            if l2 is not None:
                value = tf.raw_ops.ReadVariableOp(resource=handle, dtype=var.dtype)
                grad = tf.raw_ops.AddV2(x=grad, y=tf.raw_ops.Mul(x=l2, y=value))
            buf = self.momentums[self._get_variable_index(var)]
            tf.raw_ops.ResourceApplyMomentum(
                var=handle, accum=_local_handle(buf), lr=learning_rate,
                grad=grad, momentum=momentum, use_locking=False, use_nesterov=False)
        # Keras applies a variable's constraint after its update; so do we (the
        # PA searchers' A, projected onto C after a plain step).
        for var in trainable_variables:
            if getattr(var, "constraint", None) is not None:
                var.assign(var.constraint(var))
        self.iterations.assign_add(1)

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, l2=self.l2)
        return config


def _local_handle(variable):
    if isinstance(variable, keras.Variable):
        variable = variable.value
    local = getattr(variable, "_get_on_device_or_primary", None)
    return (local() if local is not None else variable).handle


class TorchAdam(_ScaledRate, _PreAggregated, keras.optimizers.Adam):
    """Keras Adam with PyTorch's coupled weight decay (g += l2*w before the moments).

    Args:
      l2: coupled weight decay.
      sums_replicas: as `TorchSGD`'s.
      **kwargs: arguments of `keras.optimizers.Adam`.
    """

    def __init__(self, learning_rate=3e-4, beta_1=0.5, beta_2=0.999, epsilon=1e-8,
                 l2=1e-3, name="torch_adam", sums_replicas=False, **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, name=name, **kwargs)
        if l2 < 0:
            raise ValueError(f"l2 must be >= 0. Received: l2={l2}")
        self.l2 = l2
        self.sums_replicas = bool(sums_replicas)

    def update_step(self, gradient, variable, learning_rate):
        if self.l2:
            gradient = tf.cast(gradient, variable.dtype) + self.l2 * variable
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update(l2=self.l2)
        return config


class EpochCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Cosine annealing stepped once per epoch.

    Epoch e (0-based) of `epochs` runs at
    lr(e) = minimum + (initial - minimum) * (1 + cos(pi * (e + offset) / epochs)) / 2.
    With `offset=0` the first epoch runs at `initial` and every epoch of a
    short run trains (one epoch: `initial`). `offset=1` is the reference's
    search, whose PyTorch 0.3 scheduler steps before each epoch: the first
    epoch already runs at the T=1 value and the last one at `minimum`
    (docs/reference.md §3.7); with one epoch and `minimum=0` it would not
    train at all.

    Args:
      initial: learning rate at T=0.
      minimum: learning rate at T=epochs.
      epochs: annealing period in epochs.
      steps_per_epoch: optimizer steps per epoch.
      offset: T of the first epoch, 0 or 1.
    """

    def __init__(self, initial, minimum, epochs, steps_per_epoch, offset=0):
        if epochs < 1 or steps_per_epoch < 1:
            raise ValueError(f"epochs and steps_per_epoch must be positive. Received: "
                             f"epochs={epochs}, steps_per_epoch={steps_per_epoch}")
        if offset not in (0, 1):
            raise ValueError(f"offset must be 0 or 1. Received: offset={offset}")
        self.initial = float(initial)
        self.minimum = float(minimum)
        self.epochs = int(epochs)
        self.steps_per_epoch = int(steps_per_epoch)
        self.offset = int(offset)

    def lr_at_epoch(self, epoch):
        """The learning rate of every step of epoch `epoch` (0-based)."""
        return self.minimum + (self.initial - self.minimum) * 0.5 * (
            1.0 + math.cos(math.pi * (epoch + self.offset) / self.epochs))

    def __call__(self, step):
        epoch = tf.cast(step // self.steps_per_epoch, tf.float32)
        cosine = tf.cos(math.pi * (epoch + float(self.offset)) / self.epochs)
        return self.minimum + (self.initial - self.minimum) * 0.5 * (1.0 + cosine)

    def get_config(self):
        return dict(initial=self.initial, minimum=self.minimum, epochs=self.epochs,
                    steps_per_epoch=self.steps_per_epoch, offset=self.offset)


class EpochExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(e) = initial * gamma^(e + 1), stepped at each epoch's start (DARTS's ImageNet).

    Args:
      initial: base learning rate.
      gamma: per-epoch factor.
      steps_per_epoch: optimizer steps per epoch.
    """

    def __init__(self, initial, gamma, steps_per_epoch):
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be positive. Received: {steps_per_epoch}")
        self.initial, self.gamma = float(initial), float(gamma)
        self.steps_per_epoch = int(steps_per_epoch)

    def lr_at_epoch(self, epoch):
        return self.initial * self.gamma ** (epoch + 1)

    def __call__(self, step):
        epoch = tf.cast(step // self.steps_per_epoch, tf.float32)
        return self.initial * tf.pow(self.gamma, epoch + 1.0)

    def get_config(self):
        return dict(initial=self.initial, gamma=self.gamma, steps_per_epoch=self.steps_per_epoch)


def all_reduce_sum(grads):
    """Sums gradients across replicas (identity outside a multi-replica run)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return list(grads)
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, list(grads))


def global_norm_scale(grads, clip_norm):
    """The factor `clip_by_global_norm` multiplies every gradient by:
    min(1, clip_norm / ||grads||), NaN if the norm is infinite or NaN."""
    half_squared = tf.reduce_sum(tf.stack([tf.raw_ops.L2Loss(t=g) for g in grads]))
    norm = tf.sqrt(half_squared * 2.0)
    limit = tf.constant(clip_norm, tf.float32)
    # As TF: an infinite or NaN norm makes every clipped gradient NaN.
    return limit * tf.minimum(1.0 / norm, 1.0 / limit) + (norm - norm)


def clip_by_global_norm(grads, clip_norm):
    """`tf.clip_by_global_norm(grads, clip_norm)[0]`, the same arithmetic
    (so the same numbers) without its per-tensor colocation scope and
    identity op: on a supernet's ~900 gradients those were a tenth of the
    weight step's graph."""
    scale = global_norm_scale(grads, clip_norm)
    return [tf.raw_ops.Mul(x=g, y=tf.cast(scale, g.dtype)) for g in grads]


@tf.autograph.experimental.do_not_convert
def global_gradients(grads, variables, clip_norm=0.0):
    """Gradients summed over replicas, None replaced by zeros, then clipped by
    their global norm (the norm of the whole, summed gradient, as one device
    would compute it)."""
    grads = [tf.zeros(v.shape) if g is None else g for g, v in zip(grads, variables)]
    grads = all_reduce_sum(grads)
    if clip_norm > 0:
        grads = clip_by_global_norm(grads, clip_norm)
    return grads
