import numpy as np
import pytest
import tensorflow as tf

from nasp_tf import counting, proximal
from nasp_tf.cnn import ops
from nasp_tf.cnn import search_model


def trainable(layer):
    return counting.parameter_count(layer)


@pytest.mark.parametrize("space,count", [("darts7", 1930618), ("nasp12", 4151354)])
def test_search_network_parameter_count_and_layout(space, count):
    # REFERENCE.md §2: C=16, 8 cells, 10 classes, architecture excluded.
    net = search_model.SearchNetwork(space, 10, 16, 8, 4, (32, 32, 3))
    assert trainable(net) == count
    assert net.reduction_cells == (2, 5)
    assert [c.reduction for c in net.cells] == [False, False, True, False, False, True, False,
                                                False]
    reduce_cell = net.cells[2]
    assert [e.stride for e in reduce_cell.edges] == [2, 2, 2, 2, 1, 2, 2, 1, 1, 2, 2, 1, 1, 1]
    assert reduce_cell.edges[0].op_names[1] == "avg_pool_3x3"
    assert isinstance(net.cells[3].preprocess0, ops.FactorizedReduce)
    assert len(net.cells[0].edges) == 14


@pytest.fixture
def counting_op(monkeypatch):
    """An op kind that counts its executions (and would be costly to run)."""
    calls = tf.Variable(0)

    def apply(spec, x, params, training):
        calls.assign_add(1)
        return x

    monkeypatch.setitem(ops._APPLY, "counting", apply)
    return calls


def make_edge(op_names, counting_column=None):
    edge = search_model.MixedOp(op_names, 4, 1)
    edge.build((None, 6, 6, 4))
    if counting_column is not None:
        specs = list(edge.specs)
        specs[counting_column] = ("counting",)
        edge.specs = tuple(specs)
    return edge


def test_discrete_path_runs_only_the_selected_op(counting_op):
    edge = make_edge(["sep_conv_3x3", "max_pool_3x3", "skip_connect"], counting_column=1)
    x = tf.random.normal((2, 6, 6, 4))
    weights = tf.constant([1.0, 0.0, 0.0])

    @tf.function
    def run(index):
        return edge(x, weights, index, mode="discrete", training=True)

    run(tf.constant(0))
    run(tf.constant(2))
    assert int(counting_op.numpy()) == 0
    run(tf.constant(1))
    assert int(counting_op.numpy()) == 1
    # A pruned edge (index = number of ops) runs nothing and returns zeros.
    out = run(tf.constant(3))
    assert int(counting_op.numpy()) == 1
    assert not np.any(out.numpy())


def test_unselected_ops_get_zero_gradients():
    edge = make_edge(["sep_conv_3x3", "dil_conv_3x3", "skip_connect"])
    x = tf.random.normal((2, 6, 6, 4))
    with tf.GradientTape() as tape:
        y = edge(x, tf.constant([0.0, 1.0, 0.0]), tf.constant(1), mode="discrete",
                 training=True)
        loss = tf.reduce_sum(y ** 2)
    sep, dil = edge.candidates[0], edge.candidates[1]
    grads = tape.gradient(loss, sep.trainable_weights + dil.trainable_weights)
    n = len(sep.trainable_weights)
    for g in grads[:n]:  # zeros, not None: the branch that did not run
        assert g is not None and not np.any(g.numpy())
    assert all(np.any(g.numpy()) for g in grads[n:])


def random_arch(net, seed, keep_value):
    rng = np.random.default_rng(seed)
    arch = {}
    for kind in ("normal", "reduce"):
        a = rng.uniform(size=(net.num_edges, len(net.space.ops(kind)))).astype(np.float32)
        arch[kind] = proximal.prox_c1(a, net.node_sizes, 2, keep_value)
    return arch


def reference_forward(net, images, arch, dense=False):
    """The network composed eagerly from the op layers themselves: the discrete
    network, or with `dense=True` the full mixture sum_k a_k op_k(x)."""
    x = tf.nn.conv2d(images, net.stem_kernel, 1, "SAME")
    s0 = s1 = net.stem_bn(x, training=True)
    for cell in net.cells:
        abar, index = arch["reduce" if cell.reduction else "normal"]
        states = [cell.preprocess0(s0, training=True), cell.preprocess1(s1, training=True)]
        edge = 0
        for _ in range(cell.num_nodes):
            node = 0.0
            for state in list(states):
                k = int(index[edge])
                if dense:
                    node += tf.add_n([abar[edge, j] * op(state, training=True)
                                      for j, op in enumerate(cell.edges[edge].candidates)])
                elif k < len(cell.op_names):
                    node += float(abar[edge, k]) * cell.edges[edge].candidates[k](
                        state, training=True)
                edge += 1
            states.append(node)
        s0, s1 = s1, tf.concat(states[2:], axis=-1)
    return net.classifier(tf.reduce_mean(s1, axis=[1, 2]))


@pytest.mark.parametrize("space,keep_value", [("darts7", False), ("nasp12", True)])
def test_arch_gradient_equals_dense_autodiff_and_an_independent_reference(tiny_supernet, space,
                                                                          keep_value):
    net = tiny_supernet(space)
    images = tf.random.normal((4, 8, 8, 3), seed=1)
    labels = tf.constant([0, 1, 2, 3])
    arch = random_arch(net, 3, keep_value)

    def loss_of(logits):
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))

    @tf.function
    def grads(mode):
        abars = [arch[k][0] for k in ("normal", "reduce")]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(abars)
            logits = net(images, {k: (a, arch[k][1]) for k, a in zip(("normal", "reduce"),
                                                                       abars)},
                         mode=mode, training=True)
            loss = loss_of(logits)
        return logits, tape.gradient(loss, abars)

    dense_logits, dense = grads("dense")
    arch_logits, fast = grads("arch")
    discrete_logits, _ = grads("discrete")
    np.testing.assert_allclose(arch_logits.numpy(), dense_logits.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(discrete_logits.numpy(), dense_logits.numpy(), rtol=1e-4,
                               atol=1e-5)
    for g_fast, g_dense in zip(fast, dense):
        assert np.any(g_dense.numpy())
        np.testing.assert_allclose(g_fast.numpy(), g_dense.numpy(), rtol=1e-3, atol=1e-6)
    # Every entry gets a gradient, pruned edges and unselected ops included.
    assert np.count_nonzero(fast[0].numpy()) > 0.9 * fast[0].numpy().size
    # The same gradient from the mixture composed eagerly from the op layers
    # themselves, not through the supernet's shared traces.
    abars = [arch["normal"][0], arch["reduce"][0]]
    with tf.GradientTape() as tape:
        tape.watch(abars)
        loss = loss_of(reference_forward(
            net, images, {"normal": (abars[0], arch["normal"][1]),
                          "reduce": (abars[1], arch["reduce"][1])}, dense=True))
    for g_fast, g_want in zip(fast, tape.gradient(loss, abars)):
        np.testing.assert_allclose(g_fast.numpy(), g_want.numpy(), rtol=1e-3, atol=1e-6)


def test_shared_traces_use_each_edges_own_weights(tiny_supernet):
    net = tiny_supernet("nasp12")
    arch = random_arch(net, 11, keep_value=True)
    images = tf.random.normal((4, 8, 8, 3), seed=2)
    labels = tf.constant([0, 1, 2, 3])
    weights = net.trainable_weights

    @tf.function
    def discrete():
        with tf.GradientTape() as tape:
            logits = net(images, arch, mode="discrete", training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels, logits))
        return logits, tape.gradient(loss, weights)

    logits, grads = discrete()
    want = reference_forward(net, images, {k: (a.numpy(), i.numpy())
                                           for k, (a, i) in arch.items()})
    np.testing.assert_allclose(logits.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)
    grad_of = {id(w): g for w, g in zip(weights, grads)}
    # Every selected op with weights, on every kept edge of every cell, learns.
    for cell in net.cells:
        index = arch["reduce" if cell.reduction else "normal"][1].numpy()
        for edge, k in zip(cell.edges, index):
            if k < len(cell.op_names):
                for w in edge.candidates[k].trainable_weights:
                    g = grad_of[id(w)]
                    assert g is not None and np.any(g.numpy()), (cell.name, edge.name, w.name)


def test_stacked_kernels_one_variable_per_cell_op_and_kernel(tiny_supernet):
    # darts7's ops with kernels: sep_conv_3x3/5x5 (4 each), dil_conv_3x3/5x5
    # (2 each), and in a reduction cell the stride-2 skip_connect (2, on the
    # 2 + 2 input edges of the 2-node cell). Per cell also its two
    # preprocessing ops: a 1x1 conv (1 kernel) or, after a reduction, a
    # factorized reduce (2). Plus the stem kernel, its BN's gamma and beta,
    # the classifier's kernel and bias.
    net = tiny_supernet("darts7")
    per_cell = {False: 12, True: 14}
    preprocess = [2, 2, 3]  # cell 2 follows a reduction cell
    want = 5 + sum(per_cell[c.reduction] + p for c, p in zip(net.cells, preprocess))
    assert len(net.trainable_weights) == want
    for cell in net.cells:
        for k, name in enumerate(cell.op_names):
            owners = [e for e in cell.edges if e.candidates[k].kernel_names]
            if not owners:
                continue
            for kernel in owners[0].candidates[k].kernel_names:
                stacked = {id(getattr(e.candidates[k], kernel)) for e in owners}
                assert len(stacked) == 1  # one variable for the cell's edges
                var = getattr(owners[0].candidates[k], kernel)
                assert var.shape[0] == len(owners)
                rows = sorted(e.candidates[k].kernel_rows[kernel] for e in owners)
                assert rows == list(range(len(owners)))
    skip = net.cells[1].op_names.index("skip_connect")
    reduce_skip = [e for e in net.cells[1].edges if e.candidates[skip].kernel_names]
    assert len(reduce_skip) == 4 and all(e.stride == 2 for e in reduce_skip)


def test_stacked_kernel_gradients_row_by_row_equal_the_eager_reference(tiny_supernet):
    # Each edge's gradient lands in its own rows of the stacked kernels: equal
    # to the gradient of the network composed eagerly from the op layers (which
    # slice their rows themselves), and exactly zero in the rows of every op
    # an edge did not select (pruned edges: all their rows).
    net = tiny_supernet("nasp12")
    arch = random_arch(net, 5, keep_value=False)
    images = tf.random.normal((4, 8, 8, 3), seed=3)
    labels = tf.constant([0, 1, 2, 3])
    weights = net.trainable_weights

    def loss_of(logits):
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))

    statistics = [s.numpy() for s in net.non_trainable_weights]

    @tf.function
    def compiled():
        with tf.GradientTape() as tape:
            loss = loss_of(net(images, arch, mode="discrete", training=True))
        return tape.gradient(loss, weights)

    got = compiled()
    for s, value in zip(net.non_trainable_weights, statistics):
        s.assign(value)  # the reference sees the same batch-norm state
    with tf.GradientTape() as tape:
        loss = loss_of(reference_forward(net, images, {k: (a.numpy(), i.numpy())
                                                       for k, (a, i) in arch.items()}))
    want = tape.gradient(loss, weights)
    grad_of = {id(w): (g, h) for w, g, h in zip(weights, got, want)}
    checked = 0
    for cell in net.cells:
        index = arch["reduce" if cell.reduction else "normal"][1].numpy()
        for e, edge in enumerate(cell.edges):
            for k, op in enumerate(edge.candidates):
                for kernel in op.kernel_names:
                    g, h = grad_of[id(getattr(op, kernel))]
                    row = op.kernel_rows[kernel]
                    g_row = g.numpy()[row]
                    h_row = np.zeros_like(g_row) if h is None else tf.convert_to_tensor(
                        h).numpy()[row]
                    if k == index[e]:
                        assert np.any(g_row), (cell.name, edge.name, op.name, kernel)
                        checked += 1
                    else:
                        assert not np.any(g_row), (cell.name, edge.name, op.name, kernel)
                    np.testing.assert_allclose(g_row, h_row, rtol=1e-4, atol=1e-6)
    assert checked > 10
