import numpy as np
import pytest
import tensorflow as tf

from small_spaces import SMALL4 as SPACE

from nasp_tf import optimizers, proximal
from nasp_tf.search import nasp

pytestmark = pytest.mark.slow

SEP3 = 2  # sep_conv_3x3's column in SMALL4


@pytest.fixture
def make_searcher(tiny_searcher):
    def make(eta=0.0, weight_decay=3e-4, momentum=0.9, arch_lr=3e-4, space=SPACE, **kwargs):
        return tiny_searcher(nasp.NASPSearcher, space=space, weight_decay=weight_decay,
                             momentum=momentum, arch_lr=arch_lr, eta=eta, **kwargs)
    return make


@pytest.fixture
def one_step(image_batch):
    """One traced train_step, as `fit` runs it, on a fixed (train, val) pair."""
    def step(searcher):
        return tf.function(searcher.train_step)((image_batch(0), image_batch(1)))
    return step


class RecordingOptimizer:
    """Stands in for the architecture optimizer: keeps the gradients it is given."""

    def apply(self, grads, variables):
        self.grads = [g.numpy() for g in grads]


def applied_arch_gradient(searcher, train, val):
    """{cell kind: the gradient one eager update_arch hands its optimizer}."""
    real, searcher.arch_optimizer = searcher.arch_optimizer, RecordingOptimizer()
    try:
        searcher.update_arch(train, val)
        return dict(zip(("normal", "reduce"), searcher.arch_optimizer.grads))
    finally:
        searcher.arch_optimizer = real


def test_arch_matrices_start_at_one_half(make_searcher):
    searcher = make_searcher(space="darts7")
    for var in searcher.arch_vars.values():
        np.testing.assert_array_equal(var.numpy(), 0.5)
    assert searcher.arch_vars["normal"].shape == (5, 7)
    assert not searcher.arch_vars["normal"].trainable
    assert all("arch_matrix" not in w.name for w in searcher.supernet.trainable_weights)


def test_one_step_moves_a_inside_the_unit_box(make_searcher, one_step):
    searcher = make_searcher(arch_lr=0.3)
    searcher.arch_vars["normal"].assign(np.full((5, 4), 0.999, np.float32))
    searcher.arch_vars["reduce"].assign(np.full((5, 4), 0.001, np.float32))
    before = {k: i.numpy() for k, i in searcher.selected_indices().items()}
    logs = one_step(searcher)
    for kind in ("normal", "reduce"):
        a = searcher.arch_vars[kind].numpy()
        assert a.min() >= 0.0 and a.max() <= 1.0
        assert not np.allclose(a, 0.999 if kind == "normal" else 0.001)
    assert int(searcher.arch_optimizer.iterations.numpy()) == 1
    assert int(searcher.weight_optimizer.iterations.numpy()) == 1
    assert set(logs) == {"loss", "accuracy", "arch_loss", "arch_accuracy", "abar_changes"}
    assert np.isfinite(float(logs["loss"]))
    # abar_changes: the entries of Ā's 0/1 pattern the architecture step changed.
    after = {k: i.numpy() for k, i in searcher.selected_indices().items()}

    def pattern(index):  # one-hot rows, a pruned row (index = ops) all zero
        return np.eye(5, 4)[index]

    expected = sum(int((pattern(before[k]) != pattern(after[k])).sum()) for k in before)
    assert float(logs["abar_changes"]) == expected


def test_weight_step_trains_the_selected_ops_and_decays_every_weight(make_searcher,
                                                                     image_batch):
    # REFERENCE.md §9: the reference's SGD decays every weight, selected or
    # not; the gradient reaches the selected ops only. Without momentum an
    # op with no gradient is exactly w * (1 - lr * decay) after one step.
    searcher = make_searcher(weight_decay=0.1, momentum=0.0, arch_lr=0.0)
    a = np.full((5, 4), 0.5, np.float32)
    a[:, SEP3] = 0.9  # sep_conv_3x3 on the kept edges of every normal cell
    searcher.arch_vars["normal"].assign(a)
    cell = searcher.supernet.cells[0]
    kept_edge, pruned_edge = cell.edges[0], cell.edges[4]  # node 1 keeps rows 2, 3
    ops = [op for e in (kept_edge, pruned_edge) for op in e.candidates if op.kernel_names]
    # An op's kernels are its rows of the cell's stacked variables.
    before = {id(op): [k.numpy().copy() for k in op.kernels()] for op in ops}
    # Eagerly: test_one_step_moves_a_inside_the_unit_box and bin/search.py's
    # tests run the compiled step.
    searcher.train_step((image_batch(0), image_batch(1)))

    def decayed_only(op):
        return all(np.allclose(k.numpy(), old * (1 - 0.05 * 0.1), rtol=1e-6, atol=0)
                   for k, old in zip(op.kernels(), before[id(op)]))

    selected = kept_edge.candidates[SEP3]
    assert not decayed_only(selected)
    unselected = [op for op in ops if op is not selected]
    assert len(unselected) == 3  # dil3 on the kept edge; both convolutions on the pruned
    assert all(decayed_only(op) for op in unselected)


def test_complexity_penalty_gradient_is_r_at_abar_on_the_normal_cell(make_searcher,
                                                                     image_batch):
    # The architecture gradient with eta = E minus the one with eta = 0, on the
    # same weights and batch, is E * dR/dĀ = E * 2 (p_k / sum p) Ā[e, k]: zero
    # at every unselected entry, where R at A would give 2 (p_k / sum p) A.
    eta = 1e3
    penalised = make_searcher(eta=eta, arch_lr=0.01)
    plain = nasp.NASPSearcher(penalised.supernet, eta=0.0, name="plain")  # the same weights
    plain.compile(optimizers.TorchSGD(0.05), optimizers.TorchAdam(0.01))
    a = np.full((5, 4), 0.5, np.float32)
    a[:, SEP3] = 0.6
    grads = {}
    for name, searcher in (("penalised", penalised), ("plain", plain)):
        searcher.arch_vars["normal"].assign(a)
        grads[name] = applied_arch_gradient(searcher, image_batch(0), image_batch(1))
    abar, _ = proximal.prox_c1(a, penalised.supernet.node_sizes)
    abar = abar.numpy()
    costs = np.array(penalised.op_costs["normal"])
    expected = eta * 2 * (costs / costs.sum()) * abar
    assert np.count_nonzero(expected) == 4  # sep_conv_3x3 on the 4 kept edges
    difference = grads["penalised"]["normal"] - grads["plain"]["normal"]
    np.testing.assert_allclose(difference, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(grads["penalised"]["reduce"], grads["plain"]["reduce"],
                               rtol=0, atol=1e-6)
    assert np.abs(grads["plain"]["normal"]).max() > 1e-4  # the loss gradient is there too
    # The step itself pushes the selected, expensive entries down.
    penalised.update_arch(image_batch(0), image_batch(1))
    after = penalised.arch_vars["normal"].numpy()
    assert np.all(after[abar > 0] < 0.6)
    assert costs[1] == 0 and costs[SEP3] > costs[3] > 0  # skip free; sep3 > dil3


def test_keep_value_projection_feeds_the_values(make_searcher):
    searcher = make_searcher(keep_value=True, space="darts7")
    a = np.random.default_rng(0).uniform(0.2, 0.8, (5, 7)).astype(np.float32)
    searcher.arch_vars["normal"].assign(a)
    abar, index = searcher.discrete_arch()["normal"]
    kept = index.numpy() < 7
    np.testing.assert_allclose(abar.numpy()[kept].max(axis=1), a[kept].max(axis=1))


def test_bad_arguments(tiny_supernet):
    net = tiny_supernet()
    with pytest.raises(ValueError, match="eta"):
        nasp.NASPSearcher(net, eta=-1.0)
    with pytest.raises(ValueError, match="penalize"):
        nasp.NASPSearcher(net, penalize="reduce")


def test_checkpoint_restores_every_weight_and_optimizer_state(tmp_path, make_searcher):
    from nasp_tf import checkpoints

    first, second = make_searcher(arch_lr=0.01, seed=1), make_searcher(arch_lr=0.01, seed=2)
    # Every variable gets its own random value (weights, BN statistics, A,
    # momentum buffers, Adam moments, step counters): a value left out of the
    # checkpoint cannot come back equal by chance.
    rng = np.random.default_rng(0)
    optimizer_variables = first.weight_optimizer.variables + first.arch_optimizer.variables
    for var in first.weights + optimizer_variables:
        value = rng.integers(1, 100, var.shape) if var.dtype == "int64" else rng.normal(
            size=var.shape)
        var.assign(np.asarray(value, var.dtype))
    saved = checkpoints.make_checkpoint(first, weight_optimizer=first.weight_optimizer,
                                        arch_optimizer=first.arch_optimizer)
    saved.epoch.assign(3)
    saved.step.assign(2)
    path = saved.save(str(tmp_path / "ckpt"))
    restored = checkpoints.make_checkpoint(second, weight_optimizer=second.weight_optimizer,
                                           arch_optimizer=second.arch_optimizer)
    restored.restore(path).assert_consumed()
    assert (int(restored.epoch.numpy()), int(restored.step.numpy())) == (3, 2)
    assert len(first.weights) > 100
    for a, b in zip(first.weights, second.weights):  # incl. BN statistics and A
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    for a, b in zip(optimizer_variables,
                    second.weight_optimizer.variables + second.arch_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a.numpy()), np.asarray(b.numpy()), a.path)
