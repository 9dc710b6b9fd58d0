"""NASP: search with proximal iterations (Yao et al., AAAI 2020, Alg. 2)."""

import keras
import tensorflow as tf

from nasp_tf import optimizers as optimizers_lib
from nasp_tf import proximal
from nasp_tf.search import base


class NASPSearcher(base.CNNSearcher):
    """NASP's alternating proximal search over a CNN supernet.

    One `train_step` on a (train batch, validation batch) pair:
      1. Ā = prox_c1(A); the gradient of L_val(w, Ā) + eta * R(Ā) with respect
         to Ā, w fixed and no second-order term; an Adam step on A; A =
         prox_c2(A) (the variables' constraint).
      2. Ā = prox_c1(A); an SGD step on w through the selected ops only.
    The architecture gradient is exact at Ā but backpropagates through the
    selected ops only (the supernet's "arch" mode).

    Args:
      supernet: the `SearchNetwork`.
      eta: weight of the complexity penalty R (NASP eq. 8).
      penalize: "normal" (the reference code: R on the normal cell's matrix
        only) or "all" (the paper: both matrices).
      keep_value: prox_c1 keeps the selected entry's value (the paper) instead
        of setting it to 1 (the code).
      keep_edges: incoming edges kept per node by prox_c1.
      **kwargs: `CNNSearcher` arguments (grad_clip, derive).
    Reference: Yao, Xu, Tu, Zhu, "Efficient Neural Architecture Search via
      Proximal Iterations", AAAI 2020.
    """

    arch_initializer = keras.initializers.Constant(0.5)  # as the reference

    def __init__(self, supernet, eta=0.0, penalize="normal", keep_value=False, keep_edges=2,
                 **kwargs):
        if eta < 0:
            raise ValueError(f"eta must be >= 0. Received: eta={eta}")
        if penalize not in ("normal", "all"):
            raise ValueError(f"penalize must be 'normal' or 'all'. Received: {penalize!r}")
        super().__init__(supernet, **kwargs)
        self.eta = float(eta)
        self.penalize = penalize
        self.keep_value = bool(keep_value)
        self.keep_edges = int(keep_edges)
        kinds = base.CELL_KINDS if penalize == "all" else ("normal",)
        self.op_costs = {kind: supernet.op_costs(kind) for kind in kinds}

    def arch_constraint(self, arch_matrix):
        return proximal.prox_c2(arch_matrix)

    def project(self, arch_matrix):
        """Ā = prox_c1(A) with this searcher's settings: (Ā, selected index)."""
        return proximal.prox_c1(arch_matrix, self.supernet.node_sizes, self.keep_edges,
                                self.keep_value)

    @classmethod
    def settings(cls, config):
        return {**super().settings(config), "eta": config.eta, "penalize": config.penalize,
                "keep_value": config.prox_value == "keep"}

    def discrete_arch(self):
        """Ā = prox_c1(A) for both cell kinds: {kind: (Ā, selected index)}."""
        return {kind: self.project(var) for kind, var in self.arch_vars.items()}

    def complexity_penalty(self, abars):
        return tf.add_n([proximal.complexity_penalty(abars[kind], costs)
                         for kind, costs in self.op_costs.items()])

    def update_arch(self, train, val):
        self.arch_step(*val)

    def update_weights(self, images, labels):
        self.weight_step(images, labels, self.discrete_arch(), mode="discrete")

    def arch_step(self, images, labels):
        """Steps A along the gradient of the validation objective taken at Ā."""
        arch = self.discrete_arch()
        abars = {kind: arch[kind][0] for kind in base.CELL_KINDS}
        # Only Ā is watched: no weight gradient is ever formed here.
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(list(abars.values()))
            logits = self.supernet(
                images, {k: (abars[k], arch[k][1]) for k in base.CELL_KINDS},
                mode="arch", training=True)
            loss = self.mean_loss(labels, logits)
            if self.eta > 0:
                # R is the same on every replica: count it once in the sum.
                replicas = tf.distribute.get_strategy().num_replicas_in_sync
                loss += self.eta * self.complexity_penalty(abars) / replicas
        grads = self.gradients(tape, loss, [abars[k] for k in base.CELL_KINDS])
        grads = optimizers_lib.all_reduce_sum(grads)
        self.apply_if_finite(self.arch_optimizer, grads,
                             [self.arch_vars[k] for k in base.CELL_KINDS])
        self.arch_loss.update_state(base.per_example_loss(labels, logits))
        self.arch_accuracy.update_state(labels, logits)

