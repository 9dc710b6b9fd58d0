"""Choice, InputChoice and SpaceSearcher against numpy: the three modes of a
decision, one full NASP step, DARTS's mixture, the random baseline, the
penalty, and the result (choices JSON, the exported plain model)."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from nasp_tf import choice as choice_lib
from nasp_tf.search import space as space_lib


def _dense(units, name, seed):
    return keras.layers.Dense(units, name=name,
                              kernel_initializer=keras.initializers.RandomNormal(seed=seed),
                              bias_initializer=keras.initializers.RandomNormal(seed=seed + 1))


def _affine(layer, x):
    kernel, bias = (w.numpy() for w in layer.weights)
    return x @ kernel + bias


def _two_dense_model(width=3):
    inputs = keras.Input((4,))
    choice = choice_lib.Choice({"a": _dense(width, "a", 1), "b": _dense(width, "b", 3),
                                "c": _dense(width, "c", 5)}, name="head")
    return keras.Model(inputs, choice(inputs)), choice


def _set(decision, mode, weights, index=None, runs=None):
    decision.setting.mode = mode
    decision.setting.weights = tf.constant(weights, tf.float32)
    decision.setting.index = None if index is None else tf.constant(index, tf.int32)
    decision.setting.runs = runs


def _reset(decision):
    decision.setting.mode = decision.setting.weights = decision.setting.index = None
    decision.setting.runs = None


def test_outside_a_search_a_choice_runs_its_fixed_candidate():
    model, choice = _two_dense_model()
    x = np.random.RandomState(0).randn(5, 4).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy(), _affine(choice.candidates[0], x), rtol=1e-5)
    fixed = choice_lib.Choice([_dense(3, "p", 7), _dense(3, "q", 9)], fixed="q", name="f")
    out = fixed(x)
    np.testing.assert_allclose(out.numpy(), _affine(fixed.candidates[1], x), rtol=1e-5)


@pytest.mark.parametrize("shared", [False, True], ids=["own", "shared"])
@pytest.mark.parametrize("selected", [0, 2])
def test_the_three_modes_against_numpy(selected, shared):
    """In its own graph and in a shared trace (`SharedRuns`)."""
    model, choice = _two_dense_model()
    rng = np.random.RandomState(1)
    x = rng.randn(6, 4).astype(np.float32)
    upstream = rng.randn(6, 3).astype(np.float32)
    outs = np.stack([_affine(c, x) for c in choice.candidates])
    row = np.eye(3, dtype=np.float32)[selected][None]
    mix = np.array([[0.2, 0.5, 0.3]], np.float32)
    for mode, weights in (("discrete", row), ("arch", row), ("dense", mix)):
        _set(choice, mode, weights, [selected], choice_lib.SharedRuns() if shared else None)
        xt = tf.constant(x)
        w = tf.constant(weights)
        choice.setting.weights = w
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([xt, w])
            y = model(xt)
            loss = tf.reduce_sum(y * upstream)
        _reset(choice)
        expected = np.tensordot(weights[0], outs, 1)
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-6)
        # Into the input: sum_k w_k W_k g (only the selected kernel at a one-hot row).
        kernels = [c.weights[0].numpy() for c in choice.candidates]
        dx = sum(weights[0][k] * upstream @ kernels[k].T for k in range(3))
        np.testing.assert_allclose(tape.gradient(loss, xt).numpy(), dx, rtol=1e-4, atol=1e-5)
        grad_w = tape.gradient(loss, w)
        if mode == "discrete":
            # The row only scales the selected candidate.
            expected_w = np.zeros(3, np.float32)
            expected_w[selected] = np.sum(outs[selected] * upstream)
        else:
            # The mixture's gradient: <g, f_k(x)> for every candidate.
            expected_w = np.array([np.sum(outs[k] * upstream) for k in range(3)])
        np.testing.assert_allclose(grad_w.numpy()[0], expected_w, rtol=1e-4, atol=1e-5)
        # Weights: only the selected candidate's outside the dense mixture.
        grads = tape.gradient(loss, [c.weights[0] for c in choice.candidates])
        for k, g in enumerate(grads):
            norm = 0.0 if g is None else float(tf.reduce_sum(tf.abs(g)))
            assert (norm > 0) == (mode == "dense" or k == selected), (mode, k)


def test_input_choice_sums_the_kept_inputs_and_its_rows_get_the_inner_products():
    a, b, c = (keras.Input((3,)) for _ in range(3))
    pick = choice_lib.InputChoice(n_chosen=2, name="skip")
    model = keras.Model([a, b, c], pick([a, b, c]))
    rng = np.random.RandomState(2)
    xs = [rng.randn(4, 3).astype(np.float32) for _ in range(3)]
    np.testing.assert_allclose(model(xs).numpy(), xs[0] + xs[1], rtol=1e-6)
    upstream = rng.randn(4, 3).astype(np.float32)
    rows = tf.constant([[1.0], [0.0], [1.0]])
    pick.setting.mode, pick.setting.weights = "arch", rows
    with tf.GradientTape() as tape:
        tape.watch(rows)
        loss = tf.reduce_sum(model(xs) * upstream)
    _reset(pick)
    np.testing.assert_allclose(tape.gradient(loss, rows).numpy()[:, 0],
                               [np.sum(x * upstream) for x in xs], rtol=1e-5)


def test_bad_spaces_are_refused_in_one_line():
    with pytest.raises(ValueError, match=r"Choice 'w'.*differ in shape.*'wide'"):
        choice_lib.Choice({"narrow": keras.layers.Dense(2), "wide": keras.layers.Dense(5)},
                          name="w")(keras.Input((3,)))
    with pytest.raises(ValueError, match="distinct"):
        choice_lib.Choice([keras.layers.Dense(2, name="d"), keras.layers.Dense(2, name="d")])
    with pytest.raises(ValueError, match="inputs differ in shape"):
        choice_lib.InputChoice(name="i")([keras.Input((3,)), keras.Input((4,))])
    with pytest.raises(ValueError, match="fixed names no candidate"):
        choice_lib.Choice({"a": keras.layers.Dense(2)}, fixed="b")
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no Choice or InputChoice"):
        space_lib.SpaceSearcher(plain)


def _pairs(n=32, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, 4).astype(np.float32)
    y = (x @ rng.randn(4, 3)).astype(np.float32)
    return x, y


def _sgd_searcher(searcher, eta=0.0, width=3):
    model, choice = _two_dense_model(width)
    found = space_lib.SpaceSearcher(model, searcher=searcher, eta=eta, grad_clip=0.0)
    found.compile(weight_optimizer=keras.optimizers.SGD(0.1),
                  arch_optimizer=keras.optimizers.SGD(0.3), loss="mse")
    return found, choice


def test_one_nasp_step_against_numpy():
    """Ā = prox_C1(A); A <- clip(A - lr_a * dL_val/dĀ); Ā again; w of the
    selected candidate only <- w - lr_w * dL_train/dw under the new Ā."""
    searcher, choice = _sgd_searcher("nasp", eta=0.7)
    start = np.array([[0.5, 0.62, 0.58]], np.float32)
    searcher.arch_vars["head"].assign(start)
    (xt, yt), (xv, yv) = _pairs(8, 1), _pairs(8, 2)
    kernels = [[w.numpy() for w in c.weights] for c in choice.candidates]
    outs_v = np.stack([xv @ k + b for k, b in kernels])
    # Step 1 at Ā = one-hot(argmax A) = column 1.
    resid = outs_v[1] - yv
    grad = np.array([np.mean(2 * resid * outs_v[k]) for k in range(3)])
    costs = np.array([4 * 3 + 3] * 3, np.float64)
    grad += 0.7 * 2 * np.eye(3)[1] * costs / costs.sum()
    a_new = np.clip(start[0] - 0.3 * grad, 0.0, 1.0)
    searcher.train_step(((tf.constant(xt), tf.constant(yt)), (tf.constant(xv), tf.constant(yv))))
    np.testing.assert_allclose(searcher.arch_vars["head"].numpy()[0], a_new, rtol=1e-5,
                               atol=1e-6)
    # Step 2 under the new Ā.
    chosen = int(np.argmax(a_new))
    k, b = kernels[chosen]
    resid = xt @ k + b - yt
    scale = 2.0 / resid.size
    np.testing.assert_allclose(choice.candidates[chosen].weights[0].numpy(),
                               k - 0.1 * scale * xt.T @ resid, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(choice.candidates[chosen].weights[1].numpy(),
                               b - 0.1 * scale * resid.sum(0), rtol=1e-4, atol=1e-6)
    for other in set(range(3)) - {chosen}:
        np.testing.assert_array_equal(choice.candidates[other].weights[0].numpy(),
                                      kernels[other][0])


def test_one_darts_step_differentiates_the_softmax_mixture():
    searcher, choice = _sgd_searcher("darts1")
    start = np.array([[0.1, -0.2, 0.3]], np.float32)
    searcher.arch_vars["head"].assign(start)
    (xt, yt), (xv, yv) = _pairs(8, 3), _pairs(8, 4)
    outs = np.stack([_affine(c, xv) for c in choice.candidates])
    p = np.exp(start[0]) / np.exp(start[0]).sum()
    resid = np.tensordot(p, outs, 1) - yv
    dp = np.array([np.mean(2 * resid * outs[k]) for k in range(3)])
    grad = p * (dp - np.dot(p, dp))  # through the softmax
    searcher.train_step(((tf.constant(xt), tf.constant(yt)), (tf.constant(xv), tf.constant(yv))))
    np.testing.assert_allclose(searcher.arch_vars["head"].numpy()[0], start[0] - 0.3 * grad,
                               rtol=1e-4, atol=1e-6)


def test_a_large_eta_chooses_the_small_candidate():
    """One seeded step from the same weights: without the penalty the big
    candidate stays selected; with eta = 10 its pull (2 eta p_big / sum p,
    about 20) clips the big candidate's entry to 0 and the small one is chosen."""

    def one_step(eta):
        keras.utils.set_random_seed(1)
        inputs = keras.Input((4,))
        big = keras.Sequential([keras.layers.Dense(64), keras.layers.Dense(3)], name="big")
        small = keras.layers.Dense(3, name="small")
        model = keras.Model(inputs, choice_lib.Choice([big, small], name="head")(inputs))
        searcher = space_lib.SpaceSearcher(model, eta=eta)
        assert searcher.op_costs["head"] == [4 * 64 + 64 + 64 * 3 + 3, 4 * 3 + 3]
        searcher.compile(weight_optimizer=keras.optimizers.SGD(0.01),
                         arch_optimizer=keras.optimizers.SGD(0.05), loss="mse")
        (xt, yt), (xv, yv) = _pairs(64, 5), _pairs(64, 6)
        data = tf.data.Dataset.from_tensor_slices(((xt, yt), (xv, yv))).batch(16).repeat()
        assert searcher.choices() == {"head": "big"}  # A starts at 0.5: the first candidate
        searcher.fit(data, epochs=1, steps_per_epoch=1, verbose=0)
        return searcher.choices()

    assert one_step(0.0) == {"head": "big"}
    assert one_step(10.0) == {"head": "small"}


def test_the_random_baseline_is_a_seeded_uniform_draw_that_never_moves():
    drawn = []
    for seed in range(40):
        model, _ = _two_dense_model()
        searcher = space_lib.SpaceSearcher(model, searcher="random", seed=seed)
        drawn.append(searcher.choices()["head"])
    assert set(drawn) == {"a", "b", "c"}
    model, _ = _two_dense_model()
    again = space_lib.SpaceSearcher(model, searcher="random", seed=7)
    assert again.choices()["head"] == drawn[7]
    again.compile(weight_optimizer=keras.optimizers.SGD(0.1),
                  arch_optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = again.arch_vars["head"].numpy().copy()
    (xt, yt), (xv, yv) = _pairs(16, 7), _pairs(16, 8)
    again.fit(tf.data.Dataset.from_tensor_slices(((xt, yt), (xv, yv))).batch(8).repeat(),
              epochs=1, steps_per_epoch=3, verbose=0)
    np.testing.assert_array_equal(again.arch_vars["head"].numpy(), before)


def _space_with_skip():
    inputs = keras.Input((4,))
    hidden = choice_lib.Choice({"relu": keras.layers.Dense(6, activation="relu", name="r"),
                                "tanh": keras.layers.Dense(6, activation="tanh", name="t")},
                               name="act")(inputs)
    proj = keras.layers.Dense(6, name="proj")(inputs)
    merged = choice_lib.InputChoice(1, name="skip")([hidden, proj])
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(merged))


def test_choices_are_validated_json_and_the_export_is_the_discrete_model(tmp_path):
    model = _space_with_skip()
    searcher = space_lib.SpaceSearcher(model)
    searcher.arch_vars["act"].assign([[0.2, 0.9]])
    searcher.arch_vars["skip"].assign([[0.1], [0.8]])
    assert searcher.choices() == {"act": "tanh", "skip": [1]}
    path = str(tmp_path / "choices.json")
    searcher.write_choices(path)
    read = choice_lib.read_choices(path)
    assert choice_lib.validate_choices(searcher.decisions, read) == {"act": "tanh", "skip": [1]}
    for bad, phrase in (({"act": "gelu", "skip": [1]}, "names no candidate"),
                        ({"act": "tanh"}, "miss decisions"),
                        ({"act": "tanh", "skip": [1], "x": 1}, "does not have"),
                        ({"act": "tanh", "skip": [2]}, "input indices")):
        with pytest.raises(ValueError, match=phrase):
            choice_lib.validate_choices(searcher.decisions, bad)
    exported = searcher.export_model()
    names = {type(layer).__name__ for layer in exported._flatten_layers(include_self=False)}
    assert not names & {"Choice", "InputChoice"}
    x = np.random.RandomState(9).randn(5, 4).astype(np.float32)
    # The chosen path (skip -> the projection) in numpy.
    layer = {l.name: l for l in model.layers}
    expected = _affine(layer["out"], _affine(layer["proj"], x))
    np.testing.assert_allclose(exported(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(searcher(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    exported.save(str(tmp_path / "m.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "m.keras"))
    np.testing.assert_allclose(loaded(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    fresh = choice_lib.fix_choices(_space_with_skip, {"act": "relu", "skip": [0]})
    assert fresh.count_params() == 4 * 6 + 6 + 6 * 2 + 2
    with open(path, encoding="utf-8") as f:
        assert json.load(f) == {"act": "tanh", "skip": [1]}


def test_search_pairs_keep_float_targets_for_a_regression():
    import nasp_tf

    (xt, yt), (xv, yv) = _pairs(16, 10), _pairs(16, 11)
    (x, y), (x_val, y_val) = next(iter(nasp_tf.search_pairs(xt, yt, xv, yv, batch_size=16)))
    assert y.dtype == tf.float32 and y_val.dtype == tf.float32
    # A pass is a permutation of the rows: the targets sum as the array's.
    np.testing.assert_allclose(y.numpy().sum(0), yt.sum(0), rtol=1e-5)
    labels = next(iter(nasp_tf.search_pairs(xt, np.arange(16) % 3, xv, np.arange(16) % 3, 8)))
    assert labels[0][1].dtype == tf.int64


def _shared_space():
    """Two blocks that share one decision, then a node that keeps two of three
    branches, ranked by the branches' Choices."""
    inputs = keras.Input((4,))
    h = inputs
    for i in range(2):
        h = choice_lib.Choice({"a": keras.layers.Dense(4), "b": keras.layers.Dense(4, "tanh")},
                              decision="block", name=f"block{i}")(h)
    branches = [choice_lib.Choice({"x": keras.layers.Dense(4), "y": keras.layers.Dense(4)},
                                  name=f"branch{i}")(h) for i in range(3)]
    node = choice_lib.InputChoice(2, ranked_by=["branch0", "branch1", "branch2"],
                                  name="node")(branches)
    return keras.Model(inputs, node)


def test_shared_decisions_have_one_row_and_a_ranked_node_drops_its_weakest_branch():
    searcher = space_lib.SpaceSearcher(_shared_space(), "nasp")
    assert sorted(searcher.arch_vars) == ["block", "branch0", "branch1", "branch2"]
    assert len(searcher.decision_layers["block"]) == 2
    a = {"block": [[0.2, 0.7]], "branch0": [[0.6, 0.3]], "branch1": [[0.1, 0.4]],
         "branch2": [[0.9, 0.5]]}
    for name, value in a.items():
        searcher.arch_vars[name].assign(np.array(value, np.float32))
    # numpy: each branch keeps its largest entry; the node keeps the two branches
    # whose kept entries are largest (branch1's 0.4 is the smallest).
    strength = {n: max(a[n][0]) for n in ("branch0", "branch1", "branch2")}
    dropped = min(strength, key=strength.get)
    assert dropped == "branch1"
    arch = searcher.discrete_arch()
    assert arch["node"] == (None, None)
    np.testing.assert_array_equal(arch[dropped][0].numpy(), [[0.0, 0.0]])
    assert int(arch[dropped][1][0]) == 2  # the candidate count: computes nothing
    assert searcher.choices() == {"block": "b", "branch0": "x", "branch1": "y",
                                  "branch2": "x", "node": [0, 2]}
    # The discrete model: both blocks run "b", the node sums branches 0 and 2.
    x = np.random.RandomState(0).standard_normal((3, 4)).astype(np.float32)
    model = searcher.model
    h = x
    for i in range(2):
        h = model.get_layer(f"block{i}").candidates[1](h).numpy()
    expected = sum(model.get_layer(f"branch{i}").candidates[0](h).numpy() for i in (0, 2))
    np.testing.assert_allclose(searcher(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(searcher.export_model()(x).numpy(), expected, rtol=1e-5,
                               atol=1e-6)
    # The shared block's cost is both layers' candidates.
    assert searcher.op_costs["block"] == [2 * 20, 2 * 20]


def test_layers_of_one_decision_must_be_alike():
    inputs = keras.Input((4,))
    h = choice_lib.Choice({"a": keras.layers.Dense(4)}, decision="d", name="one")(inputs)
    h = choice_lib.Choice({"b": keras.layers.Dense(4)}, decision="d", name="two")(h)
    with pytest.raises(ValueError, match="the layers of decision 'd' differ"):
        space_lib.SpaceSearcher(keras.Model(inputs, h), "nasp")


def _normalised_block(units):
    """Dense then batch norm, every initializer unseeded: blocks built alike
    are alike (`nasp_tf.choice.SharedRuns`)."""
    return keras.Sequential([keras.layers.Dense(units), keras.layers.BatchNormalization(
        momentum=0.9, beta_initializer="ones")])


def test_alike_choices_share_one_trace_and_each_runs_its_own_weights_and_statistics():
    """Three Choices of one kind and one of another input shape: one trace
    per kind and run, each Choice computing with its own kernels and moving
    its own batch-norm statistics (numpy's dense layer and batch norm)."""
    inputs = keras.Input((4,))
    h, choices = inputs, []
    for i, units in enumerate((4, 4, 4, 6)):
        choices.append(choice_lib.Choice({"norm": _normalised_block(units),
                                          "relu": keras.layers.Dense(units, "relu")},
                                         name=f"c{i}"))
        h = choices[-1](h)
    searcher = space_lib.SpaceSearcher(keras.Model(inputs, h), searcher="nasp")
    rng = np.random.RandomState(4)
    for choice in choices:  # each its own weights and statistics
        for v in choice.candidates[0].weights:
            v.assign(rng.uniform(0.5, 1.5, v.shape).astype(np.float32))
    x = rng.randn(8, 4).astype(np.float32)
    expected, stats = x, []
    for choice in choices:
        kernel, bias, gamma, beta, mean0, var0 = (w.numpy() for w in
                                                  choice.candidates[0].weights)
        z = expected @ kernel + bias
        mean, var = z.mean(0), z.var(0)
        expected = gamma * (z - mean) / np.sqrt(var + 1e-3) + beta
        stats.append((0.9 * mean0 + 0.1 * mean, 0.9 * var0 + 0.1 * var))
    arch = {c.name: (tf.constant([[1.0, 0.0]]), tf.constant([0])) for c in choices}
    y = searcher._run(tf.constant(x), arch, "discrete", True)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-4)
    for choice, (mean, var) in zip(choices, stats):
        moving = [w.numpy() for w in choice.candidates[0].non_trainable_weights]
        np.testing.assert_allclose(moving[0], mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(moving[1], var, rtol=1e-4, atol=1e-5)
    assert searcher.shared_runs.traces == 2  # the selected run of each kind
    searcher._run(tf.constant(x), arch, "arch", True)
    assert searcher.shared_runs.traces == 4  # and the stacked run of each


class _Borrowing(keras.layers.Layer):
    """Multiplies by another layer's kernel, which it does not list."""

    def __init__(self, other, **kwargs):
        super().__init__(**kwargs)
        self._kernel = lambda: other.kernel

    def call(self, x):
        return x @ self._kernel()

    def get_config(self):
        return {"name": self.name}


@pytest.mark.parametrize("mode", ["discrete", "arch"])
def test_choices_whose_candidates_read_weights_they_do_not_own_trace_their_own_graphs(mode):
    """Two alike Choices whose candidate multiplies by another layer's kernel:
    a shared trace would read the first one's variables in both, so each runs
    in its own graph, and the output is numpy's."""
    inputs = keras.Input((3,))
    owners = [keras.layers.Dense(3, name=f"owner{i}") for i in range(2)]
    owners[1].build((None, 3))
    h = owners[0](inputs)
    for i in range(2):
        h = choice_lib.Choice({"borrow": _Borrowing(owners[i], name=f"b{i}"),
                               "dense": keras.layers.Dense(3, name=f"d{i}")}, name=f"c{i}")(h)
    searcher = space_lib.SpaceSearcher(keras.Model(inputs, h))
    arch = {f"c{i}": (tf.constant([[1.0, 0.0]]), tf.constant([0])) for i in range(2)}
    y = searcher._run(tf.ones((2, 3)), arch, mode, True)
    kernels = [owner.kernel.numpy() for owner in owners]
    hidden = np.ones((2, 3)) @ kernels[0] + owners[0].bias.numpy()
    np.testing.assert_allclose(y.numpy(), hidden @ kernels[0] @ kernels[1], rtol=1e-5)
    assert searcher.shared_runs.unshared == {"c0", "c1"}
