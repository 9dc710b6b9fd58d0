"""NASP on the recurrent cell: proximal iterations over DARTS's RNN search space."""

import tensorflow as tf

from nasp_tf import proximal
from nasp_tf.rnn import losses as losses_lib
from nasp_tf.search import rnn_base


class NASPRNNSearcher(rnn_base.RNNSearcher):
    """NASP's alternating proximal search over a recurrent search cell.

    The mapping of docs/reference.md §6.7: A is 36 x 4 (tanh, relu, sigmoid,
    identity; no `none`), starts at 0.5 plus uniform noise of 1e-3 drawn from
    the seed (no reference code fixes it; the noise breaks the ties) and
    stays in [0, 1] (prox_c2);
    prox_c1 keeps one activation per row and one incoming row per node. One
    `train_step` on a (train chunk, search chunk) pair:
      1. Ā = prox_c1(A); the gradient of the search chunk's NLL + eta * R(Ā)
         with respect to Ā, w fixed, no second-order term, exact but backpropagated
         through the selected (predecessor, activation) pairs only (the
         cell's "arch" mode); an Adam step on A; A = prox_c2(A).
      2. Ā = prox_c1(A); an SGD step on w running only the selected pairs
         ("discrete" mode).

    The search cell has no batch norm (see `RNNSearchCell`): the loss sees
    the scale of every selected entry, so the selected entries get their
    gradient, and a node with ā = 1 is the eval cell's node.

    R (NASP eq. 8) weighs each column by its op's share of the parameters.
    Every activation of a node uses the same W_i, so the shares are equal and
    R(Ā) = ||Ā||² / ops: with the code's value-one projection it is the
    number of kept rows over ops, and its gradient 2 eta Ā / ops lowers the
    selected entries alike, an extra push to try other pairs (it does not
    make a cell smaller: every recurrent cell has the same size).

    Args:
      model: the search `RNNModel` (its cell's op_names are the columns of A).
      keep_value: prox_c1 keeps the selected entry's value (the paper)
        instead of setting it to 1 (the code).
      eta: weight of the complexity penalty R.
      **kwargs: `RNNSearcher` arguments.
    Reference: Yao, Xu, Tu, Zhu, "Efficient Neural Architecture Search via
      Proximal Iterations", AAAI 2020.
    """

    # 0.5 plus seeded noise: at A = 0.5 exactly every row ties and prox_c1
    # returns the first predecessor and activation of every node, a fixed
    # cell that a search could hand back unchanged. The noise (1e-3, a third
    # of one Adam step at the default rate) only breaks the ties: the initial
    # cell is random from --seed, and the gradient decides from the first
    # step on. A config, not an instance, so the seed is the run's (DARTS's
    # initializer, `search/darts.py`).
    arch_initializer = {"class_name": "RandomUniform",
                        "config": {"minval": 0.5 - 1e-3, "maxval": 0.5 + 1e-3}}
    arch_constraint = staticmethod(proximal.prox_c2)

    def __init__(self, model, keep_value=False, eta=0.0, **kwargs):
        if eta < 0:
            raise ValueError(f"eta must be >= 0. Received: eta={eta}")
        super().__init__(model, **kwargs)
        self.keep_value = bool(keep_value)
        self.eta = float(eta)
        self.op_costs = [1.0] * len(self.op_names)  # one shared W_i per node

    @classmethod
    def settings(cls, config):
        return {**super().settings(config), "keep_value": config.prox_value == "keep",
                "eta": config.eta, "derive": config.derive, "name": "nasp_rnn"}

    def discrete_arch(self):
        """{"recurrent": (Ā, selected index)}, Ā = prox_c1(A) with one row kept
        per node."""
        return {"recurrent": proximal.prox_c1(self.arch_var, self.cell.node_sizes,
                                              keep_edges=1, keep_value=self.keep_value)}

    def arch_step(self, inputs, targets, arch=None):
        """The architecture step at Ā = `arch` ((Ā, index); prox_c1(A) if None)."""
        abar, index = arch if arch is not None else self.discrete_arch()["recurrent"]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(abar)
            logits, last, _, _ = self.model(inputs, self.search_hidden, weights=abar,
                                            index=index, mode="arch", training=True)
            losses = losses_lib.token_losses(targets, logits)
            loss = self.replica_mean(losses)
            if self.eta > 0:
                # R is the same on every replica: count it once in the sum.
                replicas = tf.distribute.get_strategy().num_replicas_in_sync
                loss += self.eta * proximal.complexity_penalty(abar, self.op_costs) / replicas
        self.apply_arch_gradient(self.gradients(tape, loss, abar), last, losses)

    def update_arch(self, train, search):
        self.arch_step(*search)

    def update_weights(self, inputs, targets):
        abar, index = self.discrete_arch()["recurrent"]  # refined by the architecture step
        self.weight_step(inputs, targets, abar, index, "discrete")
