"""The DARTS search network written as a space of your own: every edge of a
cell a `nasp_tf.Choice` among the space's ops, shared by all cells of its
kind (decisions "normal_E" and "reduce_E", E the edge's row of the cell's A),
and every node an `InputChoice` of two of its edges ranked by them
(decisions "normal_node_N", "reduce_node_N").

It is `search_model.SearchNetwork` built from the public building blocks,
layer for layer: the same stem, cell preprocessing, ops (each candidate the
op's own layer with its own kernels instead of a row of the cell's stacked
ones), node sums and classifier. `SpaceSearcher` on it runs the algorithm
of the built-in searchers (tests/unit/test_choice_network.py compares one
NASP step with the built-in one), and `bin/bench.py` times the two side by
side.
"""

import keras

from nasp_tf import choice as choice_lib
from nasp_tf import spaces
from nasp_tf.cnn import ops as ops_lib
from nasp_tf.cnn import search_model


class SingleOp(keras.layers.Layer):
    """One candidate op of a search cell's edge, as a layer of its own.

    Args:
      op_name: a key of `nasp_tf.cnn.ops.OPS`.
      channels: channels in and out.
      stride: 1, or 2 on the input edges of a reduction cell.
      **kwargs: `keras.layers.Layer` arguments.
    """

    def __init__(self, op_name, channels, stride=1, **kwargs):
        super().__init__(**kwargs)
        self.op_name, self.channels, self.stride = op_name, channels, stride
        # What `StackedWeights` reads of an edge: its ops and their names.
        self.op_names = (op_name,)
        self.candidates = [ops_lib.build_op(op_name, channels, stride, affine=False,
                                            search=True)]

    @property
    def op(self):
        return self.candidates[0]

    def build(self, input_shape):
        # The op's kernels, one row each, owned here (as an unbound MixedOp's).
        self.stacked = search_model.StackedWeights(self, [self])
        self.op.build(input_shape)

    def compute_output_shape(self, input_shape):
        return self.op.compute_output_shape(input_shape)

    def call(self, x, training=None):
        return ops_lib.apply_op(self.op.spec, x, ops_lib.local_variables(self.op.params()),
                                bool(training))

    def get_config(self):
        config = super().get_config()
        config.update(op_name=self.op_name, channels=self.channels, stride=self.stride)
        return config


class Stem(keras.layers.Layer):
    """The search network's stem: a 3x3 convolution without bias and a batch norm."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.bn = ops_lib.BatchNorm(True, name="stem_bn")

    def build(self, input_shape):
        in_channels = input_shape[-1]
        self.kernel = self.add_weight(name="stem_kernel",
                                      shape=(3, 3, in_channels, self.channels),
                                      initializer=ops_lib.torch_uniform(9 * in_channels))
        self.bn.build(tuple(input_shape[:3]) + (self.channels,))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:3]) + (self.channels,)

    def call(self, images, training=None):
        import tensorflow as tf

        return self.bn(tf.nn.conv2d(images, self.kernel, 1, "SAME"), training=training)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels)
        return config


def _cell(s0, s1, index, kind, op_names, channels, prev_prev, prev, reduction,
          reduction_prev, num_nodes):
    pre0, pre1 = ops_lib.cell_preprocess(channels, prev_prev, prev, reduction_prev,
                                         affine=False)
    pre0.name, pre1.name = f"cell_{index}_preprocess0", f"cell_{index}_preprocess1"
    states = [pre0(s0), pre1(s1)]
    edge = 0
    for node in range(num_nodes):
        terms, decisions = [], []
        for pred, state in enumerate(states):
            stride = 2 if reduction and pred < 2 else 1
            name = f"cell_{index}_edge_{node}_{pred}"
            decisions.append(f"{kind}_{edge}")
            terms.append(choice_lib.Choice(
                {op: SingleOp(op, channels, stride, name=f"{name}_{ops_lib.layer_name(op)}")
                 for op in op_names}, decision=decisions[-1], name=name)(state))
            edge += 1
        # The node keeps its two strongest edges (prox_C1's C1 of a cell).
        states.append(choice_lib.InputChoice(
            2, decision=f"{kind}_node_{node}", ranked_by=decisions,
            name=f"cell_{index}_node_{node}")(terms))
    return keras.layers.Concatenate(name=f"cell_{index}_output")(states[2:])


def choice_search_network(space="nasp12", num_classes=10, channels=16, num_cells=8,
                          num_nodes=4, image_shape=(32, 32, 3), name="choice_network"):
    """The search network of `space` ("darts7" or "nasp12", or a
    `spaces.CNNSpace`) as a functional Keras model with a `Choice` per edge
    (see the module docstring); the arguments are `SearchNetwork`'s."""
    if isinstance(space, str):
        space = spaces.get_cnn_space(space)
    if num_cells < 3:
        raise ValueError("num_cells must be at least 3 (two reduction cells and a normal "
                         f"one). Received: num_cells={num_cells}")
    images = keras.Input(tuple(image_shape), name="images")
    stem_channels = 3 * channels
    s0 = s1 = Stem(stem_channels, name="stem")(images)
    c_pp, c_p, c_curr = stem_channels, stem_channels, channels
    reductions = (num_cells // 3, 2 * num_cells // 3)
    reduction_prev = False
    for i in range(num_cells):
        reduction = i in reductions
        if reduction:
            c_curr *= 2
        kind = "reduce" if reduction else "normal"
        s0, s1 = s1, _cell(s0, s1, i, kind, space.ops(kind), c_curr, c_pp, c_p, reduction,
                           reduction_prev, num_nodes)
        reduction_prev = reduction
        c_pp, c_p = c_p, num_nodes * c_curr
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(s1)
    logits = keras.layers.Dense(
        num_classes, kernel_initializer=ops_lib.torch_uniform(c_p),
        bias_initializer=ops_lib.torch_uniform(c_p), dtype=ops_lib.LOGITS_DTYPE,
        name="classifier")(pooled)
    return keras.Model(images, logits, name=name)
