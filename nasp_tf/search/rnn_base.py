"""What every recurrent-cell searcher shares: the search language model, the
architecture variable, the hidden states carried across BPTT chunks, the
weight step of DARTS's rnn/train_search.py and the validation step."""

import keras
import tensorflow as tf

from nasp_tf import genotype as genotype_lib
from nasp_tf import spaces
from nasp_tf import optimizers as optimizers_lib
from nasp_tf.rnn import model as model_lib
from nasp_tf.rnn.losses import Perplexity, step_gradients, token_losses, training_loss
from nasp_tf.search import base


class RNNSearcher(base.TwoOptimizerModel):
    """Base searcher over an `RNNModel` with an `RNNSearchCell`.

    Subclasses set `op_names` (the columns of A) and define
    `discrete_arch()` ({"recurrent": (Ā, index)}, the discrete cell validated
    and written as the genotype, one row per node), `update_arch(train
    chunk, search chunk)` and `update_weights(inputs, targets)`, which
    `train_step` (`base.TwoOptimizerModel`'s) runs in that order.

    `train_step` takes ((train inputs, train targets), (search inputs, search
    targets)) chunks, [batch, time] each. Three hidden states are carried from
    chunk to chunk: the weight step's, the architecture step's and the
    validation's; `reset_states` zeroes the first two (every epoch, as the
    reference), `evaluate` the last.

    The weight step is DARTS's: NLL + TAR (+ AR), the gradient clipped to
    `grad_clip` by global norm, then the coupled weight decay, then the step
    scaled by seq_len / bptt (the reference scales the learning rate).

    Args:
      model: the search `RNNModel`.
      batch_size, search_batch_size, eval_batch_size: global batch sizes of
        the three streams (split across replicas).
      bptt: base sequence length (the learning-rate scale's denominator).
      grad_clip: global-norm clip of the weight gradient.
      weight_decay: coupled L2 of the weights.
      tar_beta: temporal activation regularisation β (on raw outputs).
      ar_alpha: activation regularisation α (on dropped outputs).
      derive: genotype rule, "complete" or "softmax".
    Reference: Liu et al., "DARTS", ICLR 2019, rnn/train_search.py.
    """

    arch_initializer = "zeros"
    arch_constraint = None
    op_names = spaces.RECURRENT_ACTIVATIONS
    # The search cell's normalisation (RNNSearchCell's batch_norm).
    cell_batch_norm = None

    @classmethod
    def settings(cls, config):
        """The keyword arguments a `nasp_tf.config.SearchConfig` gives this searcher."""
        return {"batch_size": config.batch_size, "search_batch_size": config.batch_size,
                "eval_batch_size": config.eval_batch_size, "bptt": config.bptt,
                "grad_clip": config.grad_clip, "weight_decay": config.weight_decay,
                "tar_beta": config.tar_beta, "ar_alpha": config.ar_alpha}

    def __init__(self, model, batch_size, search_batch_size, eval_batch_size, bptt=35,
                 grad_clip=0.25, weight_decay=5e-7, tar_beta=1e-3, ar_alpha=0.0,
                 derive="complete", **kwargs):
        super().__init__(**kwargs)
        if derive not in ("complete", "softmax"):
            raise ValueError(f"derive must be 'complete' or 'softmax'. Received: {derive!r}")
        if tuple(model.cell.op_names) != tuple(self.op_names):
            raise ValueError(f"{type(self).__name__} searches the activations {self.op_names}. "
                             f"Received: a cell with op_names={model.cell.op_names}")
        self.model = model
        self.cell = model.cell
        self.bptt = int(bptt)
        self.grad_clip = float(grad_clip)
        self.weight_decay = float(weight_decay)
        self.tar_beta = float(tar_beta)
        self.ar_alpha = float(ar_alpha)
        self.derive = derive
        self.arch_vars = {"recurrent": self.add_weight(
            name="arch_matrix_recurrent", shape=(self.cell.num_rows, len(self.op_names)),
            initializer=self.arch_initializer, trainable=False,
            constraint=self.arch_constraint, aggregation="only_first_replica",
            autocast=False)}
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for name, batch in (("batch_size", batch_size), ("search_batch_size", search_batch_size),
                            ("eval_batch_size", eval_batch_size)):
            if batch % replicas:
                raise ValueError(f"{name} must be a multiple of the {replicas} replicas. "
                                 f"Received: {name}={batch}")
        units = model.units
        self.train_hidden = model_lib.replica_state(batch_size // replicas, units, "train_hidden")
        self.search_hidden = model_lib.replica_state(search_batch_size // replicas, units, "search_hidden")
        self.eval_hidden = model_lib.replica_state(eval_batch_size // replicas, units, "eval_hidden")
        self.train_loss = keras.metrics.Mean(name="loss")
        self.train_ppl = Perplexity(name="ppl")
        self.arch_loss = keras.metrics.Mean(name="arch_loss")
        self.arch_ppl = Perplexity(name="arch_ppl")
        # Entries of Ā an architecture step changes: falls to 0 as the search settles.
        self.abar_changes = keras.metrics.Mean(name="abar_changes")
        self.built = True

    @property
    def arch_var(self):
        """A, the one architecture matrix of a recurrent cell."""
        return self.arch_vars["recurrent"]

    def network_weights(self):
        return self.model.trainable_weights

    @property
    def metrics(self):
        return [self.train_loss, self.train_ppl, self.arch_loss, self.arch_ppl,
                self.abar_changes]

    def reset_states(self):
        for state in self.carried_states().values():
            state.assign(tf.zeros(state.shape))

    def carried_states(self):
        """The hidden states carried from one training or architecture chunk
        to the next (checkpointed)."""
        return {"train_hidden": self.train_hidden, "search_hidden": self.search_hidden}

    def evaluate(self, *args, **kwargs):
        self.eval_hidden.assign(tf.zeros(self.eval_hidden.shape))
        return super().evaluate(*args, **kwargs)

    def call(self, tokens, training=False):
        weights, index = self.discrete_arch()["recurrent"]
        logits, _, _, _ = self.model(tokens, self.model.zero_state(tf.shape(tokens)[0]),
                                     weights=weights, index=index, mode="discrete",
                                     training=training)
        return logits

    @staticmethod
    def replica_mean(values):
        # A mean over this replica's tokens, divided by the replica count: the
        # per-replica gradients then sum to the gradient of the global mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return tf.reduce_mean(values) / replicas

    def apply_arch_gradient(self, grad, last, losses):
        """Steps A with this replica's gradient (summed over replicas), carries
        the architecture batches' hidden state on, and logs their loss."""
        self.apply_if_finite(self.arch_optimizer, optimizers_lib.all_reduce_sum([grad]),
                             [self.arch_var])
        self.search_hidden.assign(tf.stop_gradient(last))
        self.arch_loss.update_state(losses)
        self.arch_ppl.update_state(losses)

    def weight_step(self, inputs, targets, weights, index, mode):
        """One SGD step on the network weights under the architecture."""
        variables = self.model.trainable_weights
        with tf.GradientTape() as tape:
            logits, last, raw, dropped = self.model(inputs, self.train_hidden, weights=weights,
                                                    index=index, mode=mode, training=True)
            losses, loss = training_loss(targets, logits, raw, dropped, self.ar_alpha,
                                         self.tar_beta)
        grads = step_gradients(self.gradients(tape, loss, variables), variables,
                               self.grad_clip, self.weight_decay, tf.shape(inputs)[1], self.bptt)
        self.apply_if_finite(self.weight_optimizer, grads, variables)
        self.train_hidden.assign(tf.stop_gradient(last))
        self.train_loss.update_state(losses)
        self.train_ppl.update_state(losses)

    def test_step(self, data):
        inputs, targets = data
        weights, index = self.discrete_arch()["recurrent"]
        logits, last, _, _ = self.model(inputs, self.eval_hidden, weights=weights, index=index,
                                        mode="discrete", training=False)
        self.eval_hidden.assign(last)
        losses = token_losses(targets, logits)
        self.train_loss.update_state(losses)
        self.train_ppl.update_state(losses)
        return {"loss": self.train_loss.result(), "ppl": self.train_ppl.result()}

    def genotype(self):
        matrix, pattern = self.selection_numpy()["recurrent"]
        return genotype_lib.derive_rnn_genotype(self.op_names, matrix, pattern, self.derive,
                                                self.cell.steps)

    def arch_labels(self):
        """{"recurrent": (row labels, column labels)} of A: the edges "j←i",
        numbered as in the genotype JSON (0 is s0), and the activations."""
        return {"recurrent": (genotype_lib.rnn_edge_labels(self.cell.steps),
                              list(self.op_names))}

