"""First-order DARTS on the recurrent cell, for comparison with NASP."""

import keras
import tensorflow as tf

from nasp_tf.search import rnn_base


class DARTSRNNSearcher(rnn_base.RNNSearcher):
    """DARTS (first order) over a recurrent search cell.

    α is 36 x 5 over (none, tanh, relu, sigmoid, identity), initialised
    1e-3 * N(0, 1); the cell runs the dense mixture softmax(α) everywhere
    (`none` takes softmax mass but adds nothing). One `train_step`: an Adam
    step on α along the search chunk's NLL gradient at the current w, then
    the SGD step on w. The genotype is DARTS's parser on softmax(α)
    (REFERENCE.md §6.2, §6.4).

    Args:
      model: the search `RNNModel`; its cell's op_names must include `none`.
      **kwargs: `RNNSearcher` arguments.
    Reference: Liu, Simonyan, Yang, "DARTS: Differentiable Architecture
      Search", ICLR 2019, rnn/model_search.py and rnn/architect.py.
    """

    arch_initializer = keras.initializers.RandomNormal(stddev=1e-3)

    def __init__(self, model, **kwargs):
        if "none" not in model.cell.op_names:
            raise ValueError("DARTS's recurrent space has `none` as its first op. "
                             f"Received: op_names={model.cell.op_names}")
        kwargs["derive"] = "softmax"
        super().__init__(model, **kwargs)

    def inference_arch(self):
        weights = tf.nn.softmax(tf.convert_to_tensor(self.arch_var), axis=-1)
        return weights, tf.zeros([self.cell.num_rows], tf.int32), "dense"

    def arch_step(self, inputs, targets):
        alpha = tf.convert_to_tensor(self.arch_var)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(alpha)
            weights = tf.nn.softmax(alpha, axis=-1)
            logits, last, _, _ = self.model(inputs, self.search_hidden, weights=weights,
                                            mode="dense", training=True)
            losses = rnn_base.token_losses(targets, logits)
            loss = self.replica_mean(losses)
        self.apply_arch_gradient(tape.gradient(loss, alpha), last, losses)

    def train_step(self, data):
        (inputs, targets), (search_inputs, search_targets) = data
        self.arch_step(search_inputs, search_targets)
        weights, index, mode = self.inference_arch()
        self.weight_step(inputs, targets, tf.stop_gradient(weights), index, mode)
        return {m.name: m.result() for m in self.metrics}
