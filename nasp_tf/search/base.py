"""What every CNN searcher shares: the supernet, the architecture variables,
both optimizers, the metrics and the discrete validation step."""

import keras
import numpy as np
import tensorflow as tf

from nasp_tf import distribute
from nasp_tf import genotype as genotype_lib
from nasp_tf import optimizers as optimizers_lib
from nasp_tf import precision
from nasp_tf import spaces

CELL_KINDS = ("normal", "reduce")


def per_example_loss(labels, logits):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=logits)


class TwoOptimizerModel(precision.LossScaling, distribute.StrategyModel):
    """What every searcher shares, CNN and recurrent alike.

    `compile` takes a weight and an architecture optimizer (keras-io's
    GAN-guide pattern) and builds both inside the caller's strategy scope.
    Subclasses keep their architecture variables in `arch_vars` ({cell kind:
    A}) and define `network_weights()` and `discrete_arch()`: {cell kind:
    (Ā, selected index)}, the discrete architecture the network runs at
    validation and the genotype describes, and `update_arch(train batch,
    search batch)` and `update_weights(*train batch)`, which `train_step`
    runs in that order. `train_step` also counts the entries of Ā's pattern
    each architecture step changes (the `abar_changes` metric: it falls
    towards 0 as a search settles).
    """

    # A matrix whose rows are logits (DARTS) is shown through a softmax.
    arch_is_logits = False

    @staticmethod
    def arch_optimizer_for(config, steps_per_epoch):
        """The optimizer of A for a `SearchConfig`: the reference's Adam with its
        coupled L2, at a constant rate or (arch_lr_schedule="cosine") annealed
        to 0 over the search, step by step."""
        rate = config.arch_learning_rate
        if config.arch_lr_schedule == "cosine":
            rate = keras.optimizers.schedules.CosineDecay(rate, config.epochs * steps_per_epoch)
        return optimizers_lib.TorchAdam(rate, beta_1=config.arch_beta1,
                                        l2=config.arch_weight_decay)

    def arch_matrices(self):
        return list(self.arch_vars.values())

    def selected_indices(self):
        """{cell kind: the selected op of every row of Ā} (the op count for a
        pruned row)."""
        return {kind: index for kind, (_, index) in self.discrete_arch().items()}

    def record_changes(self, before, after):
        """Adds to `abar_changes` how many entries of Ā's pattern (one-hot rows
        of the selected ops, pruned rows zero) differ between two
        `selected_indices()`."""
        changed = []
        for kind, var in self.arch_vars.items():
            ops = var.shape[1]
            changed.append(tf.reduce_sum(tf.cast(tf.not_equal(
                tf.one_hot(before[kind], ops), tf.one_hot(after[kind], ops)), tf.float32)))
        self.abar_changes.update_state(tf.add_n(changed))

    def train_step(self, data):
        train, search = data
        # Both updates are one step of float16's loss scale (`precision.LossScaling`).
        with self.one_scaled_step():
            before = self.selected_indices()
            self.update_arch(train, search)
            after = self.selected_indices()
            self.record_changes(before, after)
            self.selection_updated(after)
            self.update_weights(*train)
        return self.get_metrics_result()

    def selection_updated(self, selected):
        """Called after each architecture update with the new
        `selected_indices()` (NASP's size budget steps its multiplier here);
        nothing by default."""

    def arch_numpy(self):
        """{cell kind: (A, Ā)} as numpy arrays."""
        arch = self.discrete_arch()
        return {kind: (np.array(var.numpy()), np.array(arch[kind][0]))
                for kind, var in self.arch_vars.items()}

    def selection_numpy(self):
        """{cell kind: (A, Ā's selection pattern)}: 1 at each kept row's selected
        op, whatever Ā's value there. Genotypes are derived from it: with
        --prox_value=keep a kept row whose A was clipped to 0 has Ā = 0 there,
        and is still part of the architecture."""
        arch = self.discrete_arch()
        return {kind: (np.array(var.numpy()),
                       np.array(tf.one_hot(arch[kind][1], var.shape[1])))
                for kind, var in self.arch_vars.items()}

    def display_matrix(self, arch_matrix):
        """A as an image in [0, 1]: itself, or its row softmax for logits."""
        if not self.arch_is_logits:
            return arch_matrix
        e = np.exp(arch_matrix - arch_matrix.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def compile(self, weight_optimizer, arch_optimizer, **kwargs):
        kwargs.setdefault("jit_compile", False)
        super().compile(**kwargs)
        self.weight_optimizer = weight_optimizer
        self.arch_optimizer = arch_optimizer
        self.weight_optimizer.build(self.network_weights())
        self.arch_optimizer.build(self.arch_matrices())


class CNNSearcher(TwoOptimizerModel):
    """Base searcher over a `SearchNetwork`.

    Subclasses set `arch_initializer` and define `discrete_arch()` ({kind:
    (Ā, index)}, the discrete architecture validated and written as the
    genotype), `update_arch(train, val)` and `update_weights(images, labels)`
    (one step each; batches are (images, labels)). `compile(weight_optimizer,
    arch_optimizer)` takes both optimizers, in the manner of keras-io's GAN
    guide, and `train_step` alternates them, so `fit`, callbacks and
    `tf.distribute` work unchanged. Validation (`test_step`) always runs the
    searcher's current discrete architecture, the one its genotype describes.

    Args:
      supernet: the `SearchNetwork` searched over.
      grad_clip: global-norm clip of the weight gradient (0 disables it).
      derive: genotype rule, "complete" (the discrete Ā) or "softmax".
    """

    arch_initializer = "zeros"
    # A method A -> A applied after every architecture optimizer step, if any.
    arch_constraint = None
    # DARTS searches a space with `none` added as column 0 of both cells.
    searches_none = False

    def __init__(self, supernet, grad_clip=5.0, derive="complete", **kwargs):
        super().__init__(**kwargs)
        if derive not in ("complete", "softmax"):
            raise ValueError(f"derive must be 'complete' or 'softmax'. Received: {derive!r}")
        self.supernet = supernet
        self.grad_clip = float(grad_clip)
        self.derive = derive
        self.arch_vars = {}
        for kind in CELL_KINDS:
            num_ops = len(supernet.space.ops(kind))
            self.arch_vars[kind] = self.add_weight(
                name=f"arch_matrix_{kind}", shape=(supernet.num_edges, num_ops),
                initializer=self.arch_initializer, trainable=False,
                constraint=self.arch_constraint, aggregation="only_first_replica",
                autocast=False)
        self.train_loss = keras.metrics.Mean(name="loss")
        self.train_accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.arch_loss = keras.metrics.Mean(name="arch_loss")
        self.arch_accuracy = keras.metrics.SparseCategoricalAccuracy(name="arch_accuracy")
        self.abar_changes = keras.metrics.Mean(name="abar_changes")
        # The supernet builds itself from its image shape; nothing is left to
        # build from data.
        self.built = True

    @classmethod
    def searched_space(cls, space):
        """The `spaces.CNNSpace` this searcher's supernet is built on for `space`."""
        return spaces.with_none(space) if cls.searches_none else space

    @classmethod
    def settings(cls, config):
        """The keyword arguments a `nasp_tf.config.SearchConfig` gives this searcher."""
        return {"grad_clip": config.grad_clip, "derive": config.derive}

    def network_weights(self):
        return self.supernet.trainable_weights

    @property
    def metrics(self):
        return [self.train_loss, self.train_accuracy, self.arch_loss, self.arch_accuracy,
                self.abar_changes]

    def call(self, images, training=False):
        return self.supernet(images, self.discrete_arch(), mode="discrete", training=training)

    def mean_loss(self, labels, logits):
        # Divided by the global batch: the per-replica gradients sum to the mean.
        return tf.nn.compute_average_loss(per_example_loss(labels, logits))

    def weight_step(self, images, labels, arch, mode):
        """One SGD step on the network weights under `arch`."""
        weights = self.supernet.trainable_weights
        with tf.GradientTape() as tape:
            logits = self.supernet(images, arch, mode=mode, training=True)
            loss = self.mean_loss(labels, logits)
        grads = optimizers_lib.global_gradients(self.gradients(tape, loss, weights), weights,
                                                self.grad_clip)
        self.apply_if_finite(self.weight_optimizer, grads, weights)
        self.train_loss.update_state(per_example_loss(labels, logits))
        self.train_accuracy.update_state(labels, logits)
        return loss

    def unrolled_arch_gradient(self, train, val, arch_inputs, loss_at):
        """DARTS's second-order architecture gradient (docs/reference.md §4.3).

        w' = w - xi (momentum * m + grad_w L_train(w, a) + l2 w) with the weight
        optimizer's real momentum buffers and learning rate xi; the gradient
        is grad_a L_val(w', a) - xi (g+ - g-) / 2r with g± = grad_a
        L_train(w ± r v, a), v = grad_w L_val(w', a), r = 0.01 / ||v||. As in
        DARTS's architect, the first pass (L_train at w) runs on the real
        network and updates its batch-norm statistics; the reference runs the
        other three on a copy. Here they run at substituted weights
        (`weights_at`), so the weights never change, and the statistics they
        update (the ops write them directly) are restored afterwards.

        On several replicas each one unrolls on its share of the batches:
        grad_w L_train(w) and v are summed over the replicas first, so w', r
        and the perturbed weights are the single-device ones, and the
        per-replica architecture gradients returned sum to the single-device
        gradient (the caller all-reduces them).

        Args:
          train, val: (images, labels) batches.
          arch_inputs: the architecture tensors a, a list (watched here).
          loss_at: (batch, arch_inputs) -> (mean loss, logits) in training mode.
        Returns:
          (this replica's share of the gradient, one tensor per arch input;
          the validation logits).
        """
        return unrolled_arch_gradient(self, self.supernet.trainable_weights,
                                      self.supernet.non_trainable_weights, train, val,
                                      arch_inputs, loss_at)

    def test_step(self, data):
        images, labels = data
        logits = self(images, training=False)
        self.train_loss.update_state(per_example_loss(labels, logits))
        self.train_accuracy.update_state(labels, logits)
        return {"loss": self.train_loss.result(), "accuracy": self.train_accuracy.result()}

    def genotype(self):
        return genotype_lib.derive_cnn_genotype(
            self.supernet.space, self.selection_numpy(), self.supernet.num_nodes, self.derive)

    def arch_labels(self):
        """{cell kind: (row labels, column labels)} of A: the edges "j←i",
        numbered as in the genotype JSON, and the op names."""
        rows = genotype_lib.cnn_edge_labels(self.supernet.num_nodes)
        return {kind: (rows, list(self.supernet.space.ops(kind))) for kind in self.arch_vars}


def unrolled_arch_gradient(searcher, weights, statistics, train, val, arch_inputs, loss_at):
    """`CNNSearcher.unrolled_arch_gradient` for any searcher: `weights` are the
    network's trainable weights, `statistics` its non-trainable ones (restored
    after the unrolled passes), `searcher.weight_optimizer` a `TorchSGD`."""
    optimizer = searcher.weight_optimizer
    xi = tf.cast(optimizer.learning_rate, tf.float32)
    saved = [tf.identity(w) for w in weights]

    with tf.GradientTape() as tape:
        loss, _ = loss_at(train, arch_inputs)
    saved_statistics = [tf.identity(s) for s in statistics]
    # The training gradient is not clipped here, as in the DARTS code.
    grads = optimizers_lib.global_gradients(searcher.gradients(tape, loss, weights), weights)
    unrolled = []
    for w, g, value in zip(weights, grads, saved):
        momentum = optimizer.momentums[optimizer._get_variable_index(w)]
        step = value * optimizer.l2 + g
        unrolled.append(value - xi * (optimizer.momentum * momentum + step))

    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch([arch_inputs, unrolled])
        with weights_at(weights, unrolled):
            loss, logits = loss_at(val, arch_inputs)
    arch_grads, vector = searcher.gradients(tape, loss, (arch_inputs, unrolled))
    vector = optimizers_lib.global_gradients(vector, weights)
    radius = 0.01 / tf.linalg.global_norm(vector)

    def train_arch_gradient(sign):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(arch_inputs)
            with weights_at(weights, [w + sign * radius * v
                                      for w, v in zip(saved, vector)]):
                loss, _ = loss_at(train, arch_inputs)
        return searcher.gradients(tape, loss, arch_inputs)

    plus = train_arch_gradient(1.0)
    with tf.control_dependencies(plus):
        # Nothing else orders the two passes: run side by side they keep
        # both passes' activations alive at once (the paper-size darts7
        # step then needed over 24 GB).
        minus = train_arch_gradient(-1.0)
    for statistic, value in zip(statistics, saved_statistics):
        statistic.assign(value)
    return [g - xi * (p - m) / (2.0 * radius)
            for g, p, m in zip(arch_grads, plus, minus)], logits


def weights_at(variables, values):
    """A context in which the network reads `values` in place of `variables`
    (Keras's `StatelessScope`): DARTS's unrolled passes run at other weights
    without assigning them, which works on every replica of a strategy
    alike."""
    return keras.StatelessScope(state_mapping=list(zip(variables, values)))
