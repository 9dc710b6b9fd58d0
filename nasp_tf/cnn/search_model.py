"""The CNN supernet of DARTS/NASP: MixedOp, search cell and search network.

The supernet knows its cells and candidate ops; it owns no search logic. The
architecture comes in as tensors, one pair per cell kind: `weights` (float
[edges, ops], the mixing coefficients) and `index` (int32 [edges], the
selected op of every edge, `ops` for a pruned edge). Three ways to run it:

- "discrete": every edge runs only its selected op through `tf.switch_case`
  (a pruned edge runs nothing), forward and backward. NASP's weight step and
  validation.
- "arch": the forward value of the discrete network, arranged so that the
  gradient with respect to `weights` is exactly that of the dense mixture
  sum_k w_k op_k(x) at a one-hot `weights`, while backpropagation runs through
  the selected ops only (every other op is evaluated forward, never
  differentiated). NASP's architecture step.
- "dense": the plain mixture sum_k w_k op_k(x), differentiable everywhere
  (DARTS, and the reference the "arch" gradient is tested against).
"""

import keras
import tensorflow as tf

from nasp_tf.cnn import ops as ops_lib
from nasp_tf import counting, spaces

MODES = ("discrete", "arch", "dense")


def _selected_op(x, index, params, specs, stride, training):
    branches = [lambda spec=spec, p=p: ops_lib.apply_op(spec, x, p, training)
                for spec, p in zip(specs, params)]
    # A pruned edge (index == number of ops) computes nothing.
    height, width = (x.shape[1] - 1) // stride + 1, (x.shape[2] - 1) // stride + 1
    branches.append(lambda: tf.zeros(
        tf.stack([tf.shape(x)[0], height, width, x.shape[3]]), x.dtype))
    return tf.switch_case(index, branches)


def _all_ops(x, params, specs, training):
    return tf.stack([ops_lib.apply_op(spec, x, p, training) for spec, p in zip(specs, params)])


class EdgeFunctions:
    """The traced edge computations one supernet shares between its edges.

    One trace per (op set, input shape, stride), called on every edge of that
    kind with the edge's own weights: a search graph of ~100 edges compiles in
    about a minute instead of ten (measured while the supernet was built). With
    `_noinline` each call stays a function call, so graph optimisation sees
    each op body once, not once per edge. The functions belong to one
    supernet (not to the module) because a trace keeps weak references to
    the variables it first saw.
    """

    def __init__(self):
        options = dict(autograph=False, experimental_attributes={"_noinline": True})
        self.selected_op = tf.function(_selected_op, **options)
        self.all_ops = tf.function(_all_ops, **options)


class EdgeParams:
    """One edge's weights for `MixedOp.call`, per op as `apply_op` takes them.

    A plain object, so that Keras's `Layer.__call__` hands it over untouched:
    it would read the statistics' variables into tensors (which cannot be
    assigned) and cast everything to a mixed-precision compute dtype.
    """

    def __init__(self, values):
        self.values = values


class StackedWeights:
    """The kernels of a cell's candidate ops, stacked over its edges.

    One variable [rows, *shape] per (op column, kernel) holds that kernel for
    every edge whose op has it (a stride-2 `skip_connect` has kernels, a
    stride-1 one has none); each op's layer reads its own row
    (`bind_kernel`). The weight step then clips, decays and updates a few
    dozen tensors per network instead of one per (cell, edge, op, kernel),
    about 900 in the small supernet: the per-weight ops were most of its
    graph, which is what tracing and building a step cost. The arithmetic is
    the same: an edge's gradient lands in its own row, zero where its op was
    not selected; decay and momentum act row by row. (Stacking the batch-norm
    statistics as well removed 1,100 captured variables per step graph but
    did not make the first step faster: measured, README "Benchmarks".)

    Args:
      owner: the layer that creates and owns the variables (in its `build`).
      edges: the `MixedOp`s whose candidates share them, not yet built.
    """

    def __init__(self, owner, edges):
        groups = {}
        for e, edge in enumerate(edges):
            for k, op in enumerate(edge.candidates):
                for name, shape, fan_in in op.kernel_specs():
                    key = f"{ops_lib.layer_name(edge.op_names[k])}_{name}"
                    groups.setdefault(key, []).append((e, k, name, tuple(shape), fan_in))
        self.kernels = {}
        # For each edge, for each op: its kernels' (variable name, row).
        self.layout = [[[] for _ in edge.candidates] for edge in edges]
        for key, group in groups.items():
            shapes = {m[3] for m in group}
            if len(shapes) != 1:
                raise ValueError(f"The edges' {key} kernels differ in shape and cannot be "
                                 f"stacked. Received: shapes={sorted(shapes)}")
            self.kernels[key] = owner.add_weight(
                name=key, shape=(len(group),) + group[0][3],
                initializer=ops_lib.torch_uniform(group[0][4]))
            for row, (e, k, name, _, _) in enumerate(group):
                edges[e].candidates[k].bind_kernel(name, self.kernels[key], row)
                self.layout[e][k].append((key, row))
        self.edges = list(edges)

    def edge_params(self):
        """Each edge's `EdgeParams`. Every kernel variable is read and split
        once, so backpropagation stacks its gradient in one op."""
        split = {key: tf.unstack(var.value) for key, var in self.kernels.items()}
        return [EdgeParams(ops_lib.local_variables(tuple(
                    op.params(tuple(split[key][row] for key, row in kernel_rows))
                    for op, kernel_rows in zip(edge.candidates, layout))))
                for edge, layout in zip(self.edges, self.layout)]


class MixedOp(keras.layers.Layer):
    """One edge of a search cell: every candidate op of the space, mixed.

    Args:
      op_names: the candidate ops, in architecture-column order.
      channels: channels in and out.
      stride: 1 or 2 (2 on the input edges of a reduction cell).
      affine: learnable batch-norm parameters in the ops (False in search).
    Reference: Liu et al., "DARTS", ICLR 2019; Yao et al., "NASP", AAAI 2020.
    """

    def __init__(self, op_names, channels, stride=1, affine=False, edge_functions=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.op_names = tuple(op_names)
        self.edge_functions = edge_functions or EdgeFunctions()
        self.channels = channels
        self.stride = stride
        self.affine = affine
        self.candidates = [
            ops_lib.build_op(name, channels, stride, affine, search=True)
            for name in self.op_names]
        self.specs = tuple(op.spec for op in self.candidates)

    def build(self, input_shape):
        # Every op's weights exist before any traced step: a switch_case branch
        # must never create variables.
        if not any(getattr(op, "kernel_rows", None) for op in self.candidates):
            # Not bound by a cell: the edge owns its stacked kernels, one row each.
            StackedWeights(self, [self])
        for op in self.candidates:
            op.build(input_shape)

    def compute_output_shape(self, input_shape):
        return self.candidates[0].compute_output_shape(input_shape)

    def params(self):
        """Each op's `apply_op` weights, read by the ops themselves (each
        slicing its own kernel rows)."""
        return ops_lib.local_variables(tuple(op.params() for op in self.candidates))

    def call(self, x, weights, index, mode="discrete", training=None, params=None):
        """The edge's output; `params` is this edge's `EdgeParams` from its
        cell's `StackedWeights.edge_params()` (default: read here)."""
        training = bool(training)
        params = self.params() if params is None else params.values
        if mode == "dense":
            outs = self.edge_functions.all_ops(x, params, self.specs, training)
            return tf.einsum("k,kbhwc->bhwc", weights, outs)
        # The coefficient of the selected op (0 for a pruned edge).
        scale = tf.reduce_sum(weights * tf.one_hot(index, len(self.candidates),
                                                   dtype=weights.dtype))
        if mode not in ("discrete", "arch"):
            raise ValueError(f"mode must be one of {MODES}. Received: mode={mode!r}")
        # In "arch" mode every op, the selected one included, has already updated
        # its batch-norm statistics in the stack below: one update per step.
        selected_training = ops_lib.FROZEN_STATISTICS if mode == "arch" and training \
            else training
        selected = self.edge_functions.selected_op(x, index, params, self.specs,
                                                   self.stride, selected_training)
        if mode == "discrete":
            return scale * selected
        # d/dw_k = <dL/dout, op_k(x)> comes from the stopped stack; dL/dx comes
        # through the selected op alone, the only one with a non-zero w_k.
        outs = tf.stop_gradient(
            self.edge_functions.all_ops(x, params, self.specs, training))
        mixed = tf.einsum("k,kbhwc->bhwc", weights, outs)
        return mixed + tf.stop_gradient(scale) * (selected - tf.stop_gradient(selected))

    def get_config(self):
        config = super().get_config()
        config.update(op_names=list(self.op_names), channels=self.channels,
                      stride=self.stride, affine=self.affine)
        return config


class SearchCell(keras.layers.Layer):
    """A search cell: two preprocessed inputs, `num_nodes` nodes, a MixedOp per edge.

    Node i sums one MixedOp edge from each of the 2 + i earlier states; the
    output concatenates the nodes. Rows of the architecture matrix follow the
    edges node by node (docs/reference.md §2). The cell owns its edges' op
    kernels, stacked (`StackedWeights`); each edge's ops keep their own batch
    norms.

    Args:
      op_names: candidate ops of this cell kind.
      channels: channels C of the cell's nodes.
      prev_prev_channels: channels of the cell input k-2.
      prev_channels: channels of the cell input k-1.
      reduction: a reduction cell (stride 2 on the input edges, 2x channels).
      reduction_prev: the previous cell was a reduction cell, so input k-2 is
        twice as large as input k-1 and is factor-reduced.
      num_nodes: intermediate nodes.
    """

    def __init__(self, op_names, channels, prev_prev_channels, prev_channels,
                 reduction, reduction_prev, num_nodes=4, edge_functions=None, **kwargs):
        super().__init__(**kwargs)
        edge_functions = edge_functions or EdgeFunctions()
        self.op_names = tuple(op_names)
        self.channels = channels
        self.prev_prev_channels = prev_prev_channels
        self.prev_channels = prev_channels
        self.reduction = reduction
        self.reduction_prev = reduction_prev
        self.num_nodes = num_nodes
        self.preprocess0, self.preprocess1 = ops_lib.cell_preprocess(
            channels, prev_prev_channels, prev_channels, reduction_prev, affine=False)
        self.edges = []
        for node in range(num_nodes):
            for pred in range(2 + node):
                stride = 2 if reduction and pred < 2 else 1
                self.edges.append(MixedOp(self.op_names, channels, stride,
                                          edge_functions=edge_functions,
                                          name=f"edge_{node}_{pred}"))

    @property
    def node_sizes(self):
        return spaces.edges_per_node(self.num_nodes)

    def build(self, s0_shape, s1_shape):
        self.preprocess0.build(s0_shape)
        self.preprocess1.build(s1_shape)
        state_shape = self.preprocess1.compute_output_shape(s1_shape)
        reduced_shape = self.edges[0].compute_output_shape(state_shape)
        self.stacked = StackedWeights(self, self.edges)
        edge = 0
        for node in range(self.num_nodes):
            for pred in range(2 + node):
                self.edges[edge].build(state_shape if pred < 2 else reduced_shape)
                edge += 1

    def compute_output_shape(self, s0_shape, s1_shape):
        state = self.edges[0].compute_output_shape(
            self.preprocess1.compute_output_shape(s1_shape))
        return state[:3] + (self.num_nodes * self.channels,)

    def call(self, s0, s1, weights, index, mode="discrete", training=None):
        states = [self.preprocess0(s0, training=training),
                  self.preprocess1(s1, training=training)]
        params = self.stacked.edge_params()
        edge = 0
        for _ in range(self.num_nodes):
            terms = []
            for state in states:
                terms.append(self.edges[edge](state, weights[edge], index[edge], mode=mode,
                                              training=training, params=params[edge]))
                edge += 1
            states.append(tf.add_n(terms))
        return tf.concat(states[2:], axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(op_names=list(self.op_names), channels=self.channels,
                      prev_prev_channels=self.prev_prev_channels,
                      prev_channels=self.prev_channels, reduction=self.reduction,
                      reduction_prev=self.reduction_prev, num_nodes=self.num_nodes)
        return config


class SearchNetwork(keras.layers.Layer):
    """The CIFAR search network: stem, `num_cells` search cells, classifier.

    Reductions sit at cells num_cells//3 and 2*num_cells//3 and double the
    channels. Every normal cell shares the "normal" architecture, every
    reduction cell the "reduce" one (docs/reference.md §2). Batch norms inside
    the cells have no affine parameters.

    Args:
      space: a `spaces.CNNSpace` or its name.
      num_classes: classifier outputs.
      channels: initial channels C (the stem has 3C).
      num_cells: cells in the network.
      num_nodes: intermediate nodes per cell.
      image_shape: (H, W, channels) of the input images.
    Reference: Liu et al., "DARTS", ICLR 2019, model_search.py.
    """

    def __init__(self, space="darts7", num_classes=10, channels=16, num_cells=8,
                 num_nodes=4, image_shape=(32, 32, 3), **kwargs):
        super().__init__(**kwargs)
        if isinstance(space, str):
            space = spaces.get_cnn_space(space)
        for arg, value in (("num_classes", num_classes), ("channels", channels),
                           ("num_cells", num_cells), ("num_nodes", num_nodes)):
            if int(value) < 1:
                raise ValueError(f"{arg} must be positive. Received: {arg}={value}")
        if num_cells < 3:
            raise ValueError("num_cells must be at least 3 (two reduction cells and a "
                             f"normal one). Received: num_cells={num_cells}")
        self.space = space
        self.num_classes = num_classes
        self.channels = channels
        self.num_cells = num_cells
        self.num_nodes = num_nodes
        self.image_shape = tuple(image_shape)
        stem_channels = 3 * channels
        self.stem_kernel = None
        self.stem_bn = ops_lib.BatchNorm(True, name="stem_bn")
        self.cells = []
        edge_functions = EdgeFunctions()
        c_pp, c_p, c_curr = stem_channels, stem_channels, channels
        reduction_prev = False
        for i in range(num_cells):
            reduction = i in self.reduction_cells
            if reduction:
                c_curr *= 2
            kind = "reduce" if reduction else "normal"
            self.cells.append(SearchCell(space.ops(kind), c_curr, c_pp, c_p, reduction,
                                         reduction_prev, num_nodes, edge_functions,
                                         name=f"cell_{i}"))
            reduction_prev = reduction
            c_pp, c_p = c_p, num_nodes * c_curr
        self.classifier = keras.layers.Dense(
            num_classes, kernel_initializer=ops_lib.torch_uniform(c_p),
            bias_initializer=ops_lib.torch_uniform(c_p), dtype=ops_lib.LOGITS_DTYPE,
            name="classifier")
        self.build((None,) + self.image_shape)

    @property
    def reduction_cells(self):
        return (self.num_cells // 3, 2 * self.num_cells // 3)

    @property
    def num_edges(self):
        return spaces.num_edges(self.num_nodes)

    @property
    def node_sizes(self):
        return spaces.edges_per_node(self.num_nodes)

    def build(self, input_shape):
        in_channels = input_shape[-1]
        stem_channels = 3 * self.channels
        self.stem_kernel = self.add_weight(
            name="stem_kernel", shape=(3, 3, in_channels, stem_channels),
            initializer=ops_lib.torch_uniform(9 * in_channels))
        shape = tuple(input_shape[:3]) + (stem_channels,)
        self.stem_bn.build(shape)
        s0 = s1 = shape
        for cell in self.cells:
            cell.build(s0, s1)
            s0, s1 = s1, cell.compute_output_shape(s0, s1)
        self.classifier.build((None, s1[-1]))

    def op_costs(self, cell_kind):
        """Mean trainable parameter count of each op over the edges of the first
        cell of `cell_kind`: the p_k of the complexity penalty."""
        want_reduce = cell_kind == "reduce"
        cell = next(c for c in self.cells if c.reduction == want_reduce)
        costs = []
        for k in range(len(cell.op_names)):
            total = counting.parameter_count(*[e.candidates[k] for e in cell.edges])
            costs.append(total / len(cell.edges))
        return costs

    def call(self, images, arch, mode="discrete", training=None):
        """Runs the network on `images` under architecture `arch`.

        Args:
          images: float [batch, H, W, channels].
          arch: {"normal": (weights, index), "reduce": (weights, index)}.
          mode: "discrete", "arch" or "dense" (see the module docstring).
          training: batch-norm mode.
        Returns:
          logits [batch, num_classes].
        """
        x = tf.nn.conv2d(images, self.stem_kernel, 1, "SAME")
        s0 = s1 = self.stem_bn(x, training=training)
        for cell in self.cells:
            weights, index = arch["reduce" if cell.reduction else "normal"]
            s0, s1 = s1, cell(s0, s1, weights, index, mode=mode, training=training)
        return self.classifier(tf.reduce_mean(s1, axis=[1, 2]))

    def get_config(self):
        config = super().get_config()
        config.update(space=self.space.name, num_classes=self.num_classes,
                      channels=self.channels, num_cells=self.num_cells,
                      num_nodes=self.num_nodes, image_shape=list(self.image_shape))
        return config
