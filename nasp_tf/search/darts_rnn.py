"""DARTS on the recurrent cell (first and second order), for comparison with NASP."""

import tensorflow as tf

from nasp_tf import optimizers as optimizers_lib
from nasp_tf import proximal
from nasp_tf import spaces
from nasp_tf.rnn import losses as losses_lib
from nasp_tf.search import base, rnn_base


class DARTSRNNSearcher(rnn_base.RNNSearcher):
    """DARTS over a recurrent search cell.

    α is 36 x 5 over (none, tanh, relu, sigmoid, identity), initialised
    1e-3 * N(0, 1); the cell runs the dense mixture softmax(α) in both steps
    (`none` takes softmax mass but adds nothing); validation runs the
    discrete cell its genotype describes, as for every searcher. One `train_step`: an Adam
    step on α along the search chunk's NLL gradient, then the SGD step on w.
    First order takes that gradient at the current w; second order
    (`unrolled_gradient`) at DARTS's one unrolled weight step, with the
    finite-difference Hessian-vector product. The genotype is DARTS's
    parser on softmax(α) (docs/reference.md §6.2, §6.4).

    Args:
      model: the search `RNNModel`; its cell's op_names must include `none`.
      order: 1 or 2.
      **kwargs: `RNNSearcher` arguments.
    Reference: Liu, Simonyan, Yang, "DARTS: Differentiable Architecture
      Search", ICLR 2019, rnn/model_search.py and rnn/architect.py.
    """

    # 1e-3 * N(0, 1), as DARTS. A config, not an instance: each searcher gets a
    # new initializer, whose seed comes from the run's --seed (an instance made
    # at import draws its seed before the seed is set, so A differed between
    # processes).
    arch_initializer = {"class_name": "RandomNormal", "config": {"stddev": 1e-3}}
    arch_is_logits = True
    op_names = spaces.RECURRENT_ACTIVATIONS_WITH_NONE
    # DARTS's shared batch norm: its softmax mixture keeps relative weights
    # after normalisation. Inference normalises with the batch's statistics.
    cell_batch_norm = "batch"

    @classmethod
    def settings(cls, config):
        return {**super().settings(config), "name": "darts_rnn"}

    def __init__(self, model, order=1, **kwargs):
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2. Received: order={order}")
        kwargs["derive"] = "softmax"
        super().__init__(model, **kwargs)
        self.order = int(order)

    def mixture(self):
        """softmax(A): the weights of the dense mixture DARTS trains."""
        return tf.nn.softmax(tf.convert_to_tensor(self.arch_var), axis=-1)

    def discrete_arch(self):
        """DARTS's parser as a discrete cell: per node the row with the largest
        non-`none` probability, its most probable non-`none` activation, weight 1."""
        probs = self.mixture()
        usable = tf.concat([tf.zeros_like(probs[:, :1]), probs[:, 1:]], axis=1)
        return {"recurrent": proximal.prox_c1(usable, self.cell.node_sizes, keep_edges=1)}

    def mixture_loss(self, inputs, targets, hidden, alpha):
        """The mean NLL of a chunk under the mixture softmax(alpha), in training
        mode (DARTS's `_loss`: no TAR); (loss, last hidden state, token losses)."""
        logits, last, _, _ = self.model(inputs, hidden, weights=tf.nn.softmax(alpha, axis=-1),
                                        mode="dense", training=True)
        losses = losses_lib.token_losses(targets, logits)
        return self.replica_mean(losses), last, losses

    def arch_step(self, inputs, targets):
        alpha = tf.convert_to_tensor(self.arch_var)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(alpha)
            loss, last, losses = self.mixture_loss(inputs, targets, self.search_hidden, alpha)
        self.apply_arch_gradient(self.gradients(tape, loss, alpha), last, losses)

    def unrolled_gradient(self, train, search):
        """DARTS's second-order gradient of the search chunk's loss in α, as
        its rnn/architect.py (docs/reference.md §6.4).

        With η the weight learning rate scaled by the training chunk's
        seq_len / bptt, g the training gradient at w clipped as DARTS's
        `_clip` (coefficient c = clip / (‖g‖ + 1e-6), applied when below 1):
        w' = w − η (g + decay·w); v = ∇_w' L_search(w', α), clipped the same
        way; the gradient is ∇_α L_search(w', α) − η c (g⁺ − g⁻) / 2R with
        g± = ∇_α L_train(w ± R v, α), R = 0.01 / ‖v‖. The training passes run
        from the weight step's hidden state, the search pass from the
        architecture step's (its new state is carried on). The passes after the
        first run at substituted weights (`base.weights_at`), never assigned.
        On several replicas g and v are summed over the replicas before
        their clip, so w', c and R are the single-device ones, and this
        replica's share of the gradient is returned (the caller sums them).

        Returns:
          (the gradient, the search pass's last hidden state, its token losses).
        """
        (inputs, targets), (search_inputs, search_targets) = train, search
        weights = self.model.trainable_weights
        alpha = tf.convert_to_tensor(self.arch_var)
        eta = (tf.cast(self.weight_optimizer.learning_rate, tf.float32)
               * tf.cast(tf.shape(inputs)[1], tf.float32) / self.bptt)
        saved = [tf.identity(w) for w in weights]

        with tf.GradientTape() as tape:
            loss, _, _ = self.mixture_loss(inputs, targets, self.train_hidden, alpha)
        grads, coefficient = _darts_clip(self.gradients(tape, loss, weights), weights,
                                          self.grad_clip)
        unrolled = [w - eta * (g + self.weight_decay * w) for w, g in zip(saved, grads)]

        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([alpha, unrolled])
            with base.weights_at(weights, unrolled):
                loss, last, losses = self.mixture_loss(search_inputs, search_targets,
                                                    self.search_hidden, alpha)
        first, vector = self.gradients(tape, loss, (alpha, unrolled))
        vector, _ = _darts_clip(vector, weights, self.grad_clip)
        radius = 0.01 / tf.linalg.global_norm(vector)

        def train_gradient(sign):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(alpha)
                with base.weights_at(weights, [w + sign * radius * v
                                               for w, v in zip(saved, vector)]):
                    loss, _, _ = self.mixture_loss(inputs, targets, self.train_hidden, alpha)
            return self.gradients(tape, loss, alpha)

        plus = train_gradient(1.0)
        with tf.control_dependencies([plus]):  # one pass's activations alive at a time
            minus = train_gradient(-1.0)
        return first - eta * coefficient * (plus - minus) / (2.0 * radius), last, losses

    def update_arch(self, train, search):
        if self.order == 2:
            self.apply_arch_gradient(*self.unrolled_gradient(train, search))
        else:
            self.arch_step(*search)

    def update_weights(self, inputs, targets):
        index = tf.zeros([self.cell.num_rows], tf.int32)
        self.weight_step(inputs, targets, tf.stop_gradient(self.mixture()), index, "dense")


def _darts_clip(grads, variables, max_norm):
    """DARTS's `_clip`: the gradients (None as zeros) summed over the replicas
    and scaled by c = max_norm / (‖grads‖ + 1e-6) when c < 1, and c itself,
    whatever its value (its architect scales the Hessian term by it even
    when c > 1)."""
    grads = optimizers_lib.global_gradients(grads, variables)
    if max_norm <= 0:  # no clipping
        return grads, tf.constant(1.0)
    coefficient = max_norm / (tf.linalg.global_norm(grads) + 1e-6)
    scale = tf.minimum(coefficient, 1.0)
    return [g * scale for g in grads], coefficient

