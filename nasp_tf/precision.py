"""Mixed precision: the Keras dtype policy a run computes in, and dynamic loss
scaling for float16 with nasp_tf's own optimizers.

Under `mixed_float16` or `mixed_bfloat16` the layers compute in 16 bits and
keep float32 weights (Keras's dtype policies). What must stay exact stays
float32: the architecture matrices A (never cast), prox_C1 / prox_C2 and the
complexity penalty (computed on A and Ā in float32), the classifiers and so
the logits and losses, and batch norm (statistics and normalisation).

float16 has a narrow range, so small gradients underflow: its steps
differentiate the loss times a scale S and divide the gradients by S (Keras's
`LossScaleOptimizer` does the same, but it wraps `apply` and the steps here
clip and all-reduce gradients themselves, so the scaling is done in the steps).
"""

import contextlib

import keras
import tensorflow as tf

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def set_policy(name):
    """Sets Keras's global dtype policy (before any model is built)."""
    if name not in POLICIES:
        raise ValueError(f"Unknown precision policy. Received: {name!r}; choose one of "
                         f"{POLICIES}")
    keras.mixed_precision.set_global_policy(name)


def needs_loss_scaling():
    return keras.mixed_precision.global_policy().compute_dtype == "float16"


class LossScaling:
    """Dynamic loss scaling for the models' hand-written steps (Micikevicius et
    al., "Mixed Precision Training", ICLR 2018), on when the global policy
    computes in float16 and a no-op otherwise (the float32 and bfloat16 steps
    are unchanged bit for bit).

    A step's gradients are taken with the backward pass seeded by S
    (`gradients`), divided by S, and applied only if every one is finite
    (`apply_if_finite`); a step that overflowed is skipped and halves S, and
    S doubles after `growth_interval` finite steps in a row. S and the count
    are weights of the model, so checkpoints carry them and a resumed run
    scales as an uninterrupted one.

    A search step applies two optimizers (A's, then the weights'): inside
    `one_scaled_step()` they count as one step. Once an update of the step
    overflows, it and every later update of the step are skipped (an
    overflow of the architecture gradient skips the weight update too; one
    of the weight gradient comes after A was updated, as the reference
    orders the two), and S is updated once, at the end of the step.

    Mix in before `keras.Model` (it creates S in `__init__`).
    """

    initial_scale = 2.0 ** 15
    growth_interval = 2000

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_scale = None
        if not needs_loss_scaling():
            return
        self.loss_scale = self.add_weight(
            name="loss_scale", shape=(), initializer=keras.initializers.Constant(
                self.initial_scale), trainable=False, dtype="float32",
            aggregation="only_first_replica", autocast=False)
        self.finite_steps = self.add_weight(
            name="finite_steps", shape=(), initializer="zeros", trainable=False,
            dtype="int64", aggregation="only_first_replica", autocast=False)

    def gradients(self, tape, loss, sources):
        """tape.gradient(loss, sources), through a backward pass scaled by S
        under float16 and divided by S afterwards."""
        if self.loss_scale is None:
            return tape.gradient(loss, sources)
        scale = tf.convert_to_tensor(self.loss_scale)
        grads = tape.gradient(loss, sources, output_gradients=tf.cast(scale, loss.dtype))
        return tf.nest.map_structure(lambda g: None if g is None else g / scale, grads,
                                     check_types=False)

    @contextlib.contextmanager
    def one_scaled_step(self):
        """The updates applied inside count as one step of the loss scale."""
        if self.loss_scale is None:
            yield
            return
        self._step_finite = []
        try:
            yield
            finite = tf.reduce_all(self._step_finite) if self._step_finite else None
        finally:
            self._step_finite = None
        if finite is not None:
            tf.distribute.get_replica_context().merge_call(
                lambda strategy, finite: self._update_scale(
                    strategy.experimental_local_results(finite)[0]), args=(finite,))

    def apply_if_finite(self, optimizer, grads, variables):
        """optimizer.apply(grads, variables); under float16 only if every
        gradient (already summed over the replicas, so every replica agrees)
        is finite, and inside `one_scaled_step` only if the step's earlier
        updates were too; S is updated here, or at the end of the step."""
        if self.loss_scale is None:
            optimizer.apply(grads, variables)
            return
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g))
                                for g in grads if g is not None])
        in_step = getattr(self, "_step_finite", None) is not None
        if in_step:
            finite = tf.reduce_all([*self._step_finite, finite])
            self._step_finite.append(finite)

        def cross_replica(strategy, grads, finite):
            # The branch runs the optimizer on every replica: a cond inside the
            # replica context could not (optimizers synchronise variables there).
            finite = strategy.experimental_local_results(finite)[0]

            def step():
                strategy.extended.call_for_each_replica(optimizer.apply,
                                                        args=(grads, variables))
                return tf.constant(True)

            tf.cond(finite, step, lambda: tf.constant(False))
            if not in_step:
                self._update_scale(finite)

        tf.distribute.get_replica_context().merge_call(cross_replica, args=(grads, finite))

    def _update_scale(self, finite):
        count = tf.where(finite, self.finite_steps + 1, tf.zeros_like(self.finite_steps))
        grow = count >= self.growth_interval
        scale = tf.convert_to_tensor(self.loss_scale)
        self.loss_scale.assign(tf.where(finite, tf.where(grow, scale * 2.0, scale),
                                        tf.maximum(scale / 2.0, 1.0)))
        self.finite_steps.assign(tf.where(grow, tf.zeros_like(count), count))
