"""The recurrent search cell of DARTS/NASP (docs/reference.md §6.2, §6.7).

The cell takes the architecture as tensors: `weights` (float [36, ops], the
mixing coefficients of every (predecessor, activation) pair, rows node by
node) and `index` (int32 [36], the selected activation of every row, `ops`
for a pruned row). Three ways to run it, as the CNN supernet:

- "discrete": each node runs only its selected predecessor and activation,
  the activation through `tf.switch_case` (NASP's weight step, validation).
  Exactly one row per node may be kept (prox_c1 with keep_edges=1).
- "arch": the forward value of the discrete cell, arranged so that the
  gradient with respect to `weights` is exactly that of the dense mixture,
  while backpropagation runs through the selected pair only (every pair is
  evaluated forward, never differentiated). NASP's architecture step.
- "dense": s_i = sum_{j,k} w_jk (s_j + c_j (act_k(g_j) - s_j)), differentiable
  everywhere (DARTS, and the reference "arch" is tested against).
"""

import tensorflow as tf

from nasp_tf import spaces
from nasp_tf.rnn import model as model_lib

MODES = ("discrete", "arch", "dense")
ACTIVATIONS = model_lib.ACTIVATIONS
BN_MOMENTUM = 0.1  # PyTorch convention: new = (1 - m) * old + m * batch
BN_EPSILON = 1e-5


def rows_per_node(steps):
    """Node i (0-based) has i + 1 incoming rows: 1, 2, ..., steps (36 for 8)."""
    return [i + 1 for i in range(steps)]


def row_offsets(steps):
    return [i * (i + 1) // 2 for i in range(steps)]


def _activation(name, g):
    return tf.zeros_like(g) if name == "none" else ACTIVATIONS[name](g)


class RNNSearchCell(model_lib.RecurrentCellBase):
    """DARTS's recurrent search cell, with the discrete paths NASP needs.

    s0 as in the eval cell; node i sees all earlier states s_0..s_i through
    the same W_i; the output is the mean of the `steps` nodes. DARTS's cell
    normalises s0 and every node with one shared BatchNorm without affine
    (`batch_norm="moving"` or `"batch"`). NASP's has none (`batch_norm=None`):
    with a one-hot Ā a node is BN(ā·term), and batch norm is invariant to the
    scale ā, so the selected entries would get no gradient at all. Without
    it a node with ā = 1 is exactly the eval cell's node.

    Args:
      units: nhid = ninp.
      op_names: candidate activations, in architecture-column order.
      steps: intermediate nodes (8).
      dropoutx, dropouth: variational dropouts (training only).
      batch_norm: None (no normalisation: NASP), "moving" (DARTS's BN; the
        running averages at inference, as the reference) or "batch" (DARTS's
        BN, the inference batch's own statistics at inference). The one set
        of running averages is shared by nine differently scaled calls per
        time step; on short searches the recurrence through them diverged at
        inference (hidden states of 1e21 after two chunks) while training,
        which normalises with batch statistics, was fine.
    Reference: Liu et al., "DARTS", ICLR 2019, rnn/model_search.py; Yao et al.,
      "NASP", AAAI 2020.
    """

    def __init__(self, units, op_names=spaces.RECURRENT_ACTIVATIONS, steps=8, dropoutx=0.0,
                 dropouth=0.0, seed=None, batch_norm=None, **kwargs):
        super().__init__(units, steps, dropoutx, dropouth, seed, **kwargs)
        if batch_norm not in (None, "batch", "moving"):
            raise ValueError("batch_norm must be None, 'batch' or 'moving'. Received: "
                             f"{batch_norm!r}")
        self.batch_norm_kind = batch_norm
        op_names = tuple(op_names)
        unknown = [n for n in op_names if n != "none" and n not in ACTIVATIONS]
        if unknown or not op_names:
            raise ValueError(f"op_names must be among {('none',) + tuple(ACTIVATIONS)}. "
                             f"Received: {op_names}")
        self.op_names = op_names
        # "mean": replicas update them in replica context (tf.distribute).
        # Never cast to a mixed-precision compute dtype: they are assigned.
        self.moving_mean = self.add_weight(name="bn_moving_mean", shape=(units,),
                                           initializer="zeros", trainable=False,
                                           aggregation="mean", autocast=False)
        self.moving_variance = self.add_weight(name="bn_moving_variance", shape=(units,),
                                               initializer="ones", trainable=False,
                                               aggregation="mean", autocast=False)
        self.built = True

    @property
    def num_rows(self):
        return sum(rows_per_node(self.steps))

    @property
    def node_sizes(self):
        return rows_per_node(self.steps)

    def batch_norm(self, s, training):
        if self.batch_norm_kind is None:
            return s, tf.zeros([2, self.units])
        if s.dtype != tf.float32:
            # Mixed precision: statistics and normalisation in float32.
            normalised, stats = self.batch_norm(tf.cast(s, tf.float32), training)
            return tf.cast(normalised, s.dtype), stats
        if training or self.batch_norm_kind == "batch":
            mean, variance = tf.nn.moments(s, axes=[0])
        else:
            mean = tf.convert_to_tensor(self.moving_mean)
            variance = tf.convert_to_tensor(self.moving_variance)
        return tf.nn.batch_normalization(s, mean, variance, None, None, BN_EPSILON), \
            tf.stack([mean, variance])

    def selection(self, weights, index):
        """Per node: (predecessor, activation, coefficient) of its kept row."""
        num_ops = len(self.op_names)
        preds, acts, scales = [], [], []
        for i, offset in enumerate(row_offsets(self.steps)):
            rows = index[offset:offset + i + 1]
            pred = tf.argmax(tf.cast(rows < num_ops, tf.int32), output_type=tf.int32)
            act = tf.minimum(rows[pred], num_ops - 1)
            scale = tf.where(rows[pred] < num_ops, weights[offset + pred, act], 0.0)
            preds.append(pred)
            acts.append(act)
            scales.append(scale)
        return preds, acts, scales

    def _selected_term(self, states, i, pred, act, h_mask):
        s_prev = tf.gather(tf.stack(states), pred)
        c, g = tf.split(tf.matmul(s_prev * h_mask, self.node_kernels[i]), 2, axis=-1)
        branches = [lambda name=name: _activation(name, g) for name in self.op_names]
        activated = tf.switch_case(act, branches)
        if "none" in self.op_names:
            # `none` is not a highway: its whole term is zero.
            none_index = self.op_names.index("none")
            return tf.where(tf.equal(act, none_index), tf.zeros_like(s_prev),
                            s_prev + tf.sigmoid(c) * (activated - s_prev))
        return s_prev + tf.sigmoid(c) * (activated - s_prev)

    def _all_terms(self, states, i, h_mask):
        stacked = tf.stack(states)  # [i + 1, batch, units]
        ch = tf.einsum("jbu,uv->jbv", stacked * h_mask, self.node_kernels[i])
        c, g = tf.split(ch, 2, axis=-1)
        c = tf.sigmoid(c)
        terms = [tf.zeros_like(stacked) if name == "none"
                 else stacked + c * (ACTIVATIONS[name](g) - stacked) for name in self.op_names]
        return tf.stack(terms, axis=1)  # [i + 1, ops, batch, units]

    def step(self, x, h, weights, index, mode, x_mask, h_mask, training):
        s0, stats0 = self.batch_norm(
            model_lib.initial_state(x, h, x_mask, h_mask, self.w0), training)
        states, stats = [s0], [stats0]
        if mode != "dense":
            preds, acts, scales = self.selection(weights, index)
        for i, offset in enumerate(row_offsets(self.steps)):
            w = weights[offset:offset + i + 1]
            if mode == "dense":
                s = tf.einsum("jk,jkbu->bu", w, self._all_terms(states, i, h_mask))
            else:
                selected = self._selected_term(states, i, preds[i], acts[i], h_mask)
                if mode == "discrete":
                    s = scales[i] * selected
                else:
                    # d/dw_jk = <dL/ds, term_jk> from the stopped terms; dL/d(states,
                    # W_i) through the selected pair alone, the only non-zero w_jk.
                    every = tf.stop_gradient(self._all_terms(states, i, h_mask))
                    s = (tf.einsum("jk,jkbu->bu", w, every)
                         + tf.stop_gradient(scales[i]) * (selected - tf.stop_gradient(selected)))
            s, node_stats = self.batch_norm(s, training)
            states.append(s)
            stats.append(node_stats)
        return tf.add_n(states[1:]) / self.steps, tf.stack(stats)

    def update_statistics(self, stats, batch):
        """Applies the batch norm's running-average updates of a whole sequence at
        once: the same result as PyTorch's update after every call, in order
        (with its unbiased variance), without assignments inside the loop."""
        stats = tf.reshape(stats, [-1, 2, self.units])  # calls in order
        count = tf.shape(stats)[0]
        keep = 1.0 - BN_MOMENTUM
        powers = tf.cast(count - 1 - tf.range(count), tf.float32)
        coeff = BN_MOMENTUM * tf.pow(keep, powers)[:, None]
        n = tf.cast(batch, tf.float32)
        unbiased = stats[:, 1] * n / tf.maximum(n - 1.0, 1.0)
        decay = tf.pow(keep, tf.cast(count, tf.float32))
        self.moving_mean.assign(decay * self.moving_mean
                                + tf.reduce_sum(coeff * stats[:, 0], axis=0))
        self.moving_variance.assign(decay * self.moving_variance
                                    + tf.reduce_sum(coeff * unbiased, axis=0))

    def call(self, inputs, hidden, weights=None, index=None, mode="discrete", training=None):
        """inputs [batch, time, units], hidden [batch, units], the architecture
        (weights [rows, ops], index [rows]) -> (outputs [batch, time, units],
        last hidden)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}. Received: mode={mode!r}")
        training = bool(training)
        weights = tf.cast(tf.convert_to_tensor(weights), self.compute_dtype)
        index = (tf.zeros([self.num_rows], tf.int32) if index is None
                 else tf.convert_to_tensor(index, tf.int32))
        batch = tf.shape(inputs)[0]
        x_mask, h_mask = self.masks(batch, training)
        stats0 = tf.zeros([self.steps + 1, 2, self.units])

        def body(carry, x):
            h, _ = carry
            return self.step(x, h, weights, index, mode, x_mask, h_mask, training)

        outputs, stats = tf.scan(body, tf.transpose(inputs, [1, 0, 2]),
                                 initializer=(hidden, stats0),
                                 parallel_iterations=model_lib.SCAN_ITERATIONS)
        if training and self.batch_norm_kind is not None:
            self.update_statistics(stats, batch)
        return tf.transpose(outputs, [1, 0, 2]), outputs[-1]

    def get_config(self):
        config = super().get_config()
        config.update(op_names=list(self.op_names), batch_norm=self.batch_norm_kind)
        return config


def search_language_model(vocab_size, units, op_names=spaces.RECURRENT_ACTIVATIONS, steps=8,
                          dropout=0.0, dropouth=0.0, dropoutx=0.0, dropouti=0.0, dropoute=0.0,
                          seed=None, batch_norm=None, name="rnn_search_model"):
    """The search-time language model: `RNNModel` around an `RNNSearchCell`."""
    cell = RNNSearchCell(units, op_names, steps, dropoutx, dropouth, seed, batch_norm,
                         name="search_cell")
    return model_lib.RNNModel(vocab_size, cell, dropout, dropouti, dropoute, seed, name=name)
