"""First-order DARTS on the recurrent cell, for comparison with NASP."""

import keras
import tensorflow as tf

from nasp_tf import proximal
from nasp_tf import spaces
from nasp_tf.rnn import losses as losses_lib
from nasp_tf.search import rnn_base


class DARTSRNNSearcher(rnn_base.RNNSearcher):
    """DARTS (first order) over a recurrent search cell.

    α is 36 x 5 over (none, tanh, relu, sigmoid, identity), initialised
    1e-3 * N(0, 1); the cell runs the dense mixture softmax(α) in both steps
    (`none` takes softmax mass but adds nothing); validation runs the
    discrete cell its genotype describes, as for every searcher. One `train_step`: an Adam
    step on α along the search chunk's NLL gradient at the current w, then
    the SGD step on w. The genotype is DARTS's parser on softmax(α)
    (docs/reference.md §6.2, §6.4).

    Args:
      model: the search `RNNModel`; its cell's op_names must include `none`.
      **kwargs: `RNNSearcher` arguments.
    Reference: Liu, Simonyan, Yang, "DARTS: Differentiable Architecture
      Search", ICLR 2019, rnn/model_search.py and rnn/architect.py.
    """

    arch_initializer = keras.initializers.RandomNormal(stddev=1e-3)
    arch_is_logits = True
    op_names = spaces.RECURRENT_ACTIVATIONS_WITH_NONE
    # DARTS's shared batch norm: its softmax mixture keeps relative weights
    # after normalisation. Inference normalises with the batch's statistics.
    cell_batch_norm = "batch"

    @classmethod
    def from_flags(cls, model, config, order=1, **kwargs):
        if order != 1:
            raise ValueError(f"recurrent DARTS is first order here. Received: order={order}")
        return super().from_flags(model, config, name="darts_rnn", **kwargs)

    def __init__(self, model, **kwargs):
        kwargs["derive"] = "softmax"
        super().__init__(model, **kwargs)

    def mixture(self):
        """softmax(A): the weights of the dense mixture DARTS trains."""
        return tf.nn.softmax(tf.convert_to_tensor(self.arch_var), axis=-1)

    def discrete_arch(self):
        """DARTS's parser as a discrete cell: per node the row with the largest
        non-`none` probability, its most probable non-`none` activation, weight 1."""
        probs = self.mixture()
        usable = tf.concat([tf.zeros_like(probs[:, :1]), probs[:, 1:]], axis=1)
        return {"recurrent": proximal.prox_c1(usable, self.cell.node_sizes, keep_edges=1)}

    def arch_step(self, inputs, targets):
        alpha = tf.convert_to_tensor(self.arch_var)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(alpha)
            weights = tf.nn.softmax(alpha, axis=-1)
            logits, last, _, _ = self.model(inputs, self.search_hidden, weights=weights,
                                            mode="dense", training=True)
            losses = losses_lib.token_losses(targets, logits)
            loss = self.replica_mean(losses)
        self.apply_arch_gradient(tape.gradient(loss, alpha), last, losses)

    def train_step(self, data):
        (inputs, targets), (search_inputs, search_targets) = data
        before = self.discrete_arch()["recurrent"][1]
        self.arch_step(search_inputs, search_targets)
        self.record_changes(before, self.discrete_arch()["recurrent"][1])
        index = tf.zeros([self.cell.num_rows], tf.int32)
        self.weight_step(inputs, targets, tf.stop_gradient(self.mixture()), index, "dense")
        return {m.name: m.result() for m in self.metrics}
