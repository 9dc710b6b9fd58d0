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
      max_params: a size budget (0: none): after every architecture step,
        eta <- clip(eta + BUDGET_RATE * (P / max_params - 1), 0, ETA_MAX),
        where P is the parameter count of the final network of the cell Ā
        selects (`size_table`): dual ascent on the constraint P <= max_params,
        eta its Lagrange multiplier, starting at `eta`. Both cells are
        penalised. The epoch's mean eta and P are the metrics `eta` and
        `final_parameters`.
      size_table: the `nasp_tf.cnn.final_size.SizeTable` that counts P.
      **kwargs: `CNNSearcher` arguments (grad_clip, derive).
    Reference: Yao, Xu, Tu, Zhu, "Efficient Neural Architecture Search via
      Proximal Iterations", AAAI 2020.
    """

    arch_initializer = keras.initializers.Constant(0.5)  # as the reference
    # The size budget's multiplier: its change per architecture step at P = 2 x
    # budget (a fraction of the eta that already turns convolutions into pools
    # on digits), and its ceiling.
    BUDGET_RATE = 0.05
    ETA_MAX = 100.0

    def __init__(self, supernet, eta=0.0, penalize="normal", keep_value=False, keep_edges=2,
                 max_params=0, size_table=None, **kwargs):
        if eta < 0:
            raise ValueError(f"eta must be >= 0. Received: eta={eta}")
        if penalize not in ("normal", "all"):
            raise ValueError(f"penalize must be 'normal' or 'all'. Received: {penalize!r}")
        if max_params and size_table is None:
            raise ValueError("max_params needs the size_table that counts the final "
                             f"network. Received: max_params={max_params}, size_table=None")
        super().__init__(supernet, **kwargs)
        self.eta = float(eta)
        self.max_params = int(max_params)
        # A budget must be able to shrink the reduction cell too.
        self.penalize = "all" if self.max_params else penalize
        self.keep_value = bool(keep_value)
        self.keep_edges = int(keep_edges)
        kinds = base.CELL_KINDS if self.penalize == "all" else ("normal",)
        self.op_costs = {kind: supernet.op_costs(kind) for kind in kinds}
        if self.max_params:
            self.size_base = float(size_table.base)
            self.size_costs = {kind: tf.constant(size_table.costs[kind], tf.float32)
                               for kind in base.CELL_KINDS}
            # Checkpointed with the searcher's weights: a resumed run goes on
            # from the multiplier it had.
            self.eta_variable = self.add_weight(
                name="eta", shape=(), initializer=keras.initializers.Constant(self.eta),
                trainable=False, aggregation="only_first_replica", autocast=False)
            self.eta_metric = keras.metrics.Mean(name="eta")
            self.size_metric = keras.metrics.Mean(name="final_parameters")

    def arch_constraint(self, arch_matrix):
        return proximal.prox_c2(arch_matrix)

    def project(self, arch_matrix):
        """Ā = prox_c1(A) with this searcher's settings: (Ā, selected index)."""
        return proximal.prox_c1(arch_matrix, self.supernet.node_sizes, self.keep_edges,
                                self.keep_value)

    @classmethod
    def settings(cls, config):
        return {**super().settings(config), "eta": config.eta, "penalize": config.penalize,
                "keep_value": config.prox_value == "keep", "max_params": config.max_params}

    @property
    def metrics(self):
        extra = [self.eta_metric, self.size_metric] if self.max_params else []
        return super().metrics + extra

    def final_parameters(self, selected):
        """P: the final network's parameters with the cells `selected`
        ({kind: selected op of every row}, `selected_indices()`) gives."""
        total = tf.constant(self.size_base, tf.float32)
        for kind in base.CELL_KINDS:
            chosen = tf.one_hot(selected[kind], self.size_costs[kind].shape[1])
            total += tf.reduce_sum(chosen * self.size_costs[kind])
        return total

    def selection_updated(self, selected):
        """With a size budget: one dual-ascent step of its multiplier at the
        new Ā's selection."""
        if not self.max_params:
            return
        size = self.final_parameters(selected)
        eta = tf.clip_by_value(
            self.eta_variable + self.BUDGET_RATE * (size / self.max_params - 1.0),
            0.0, self.ETA_MAX)
        self.eta_variable.assign(eta)
        self.eta_metric.update_state(eta)
        self.size_metric.update_state(size)

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
            eta = self.eta_variable if self.max_params else self.eta
            if self.max_params or self.eta > 0:
                # R is the same on every replica: count it once in the sum.
                replicas = tf.distribute.get_strategy().num_replicas_in_sync
                loss += eta * self.complexity_penalty(abars) / replicas
        grads = self.gradients(tape, loss, [abars[k] for k in base.CELL_KINDS])
        grads = optimizers_lib.all_reduce_sum(grads)
        self.apply_if_finite(self.arch_optimizer, grads,
                             [self.arch_vars[k] for k in base.CELL_KINDS])
        self.arch_loss.update_state(base.per_example_loss(labels, logits))
        self.arch_accuracy.update_state(labels, logits)

