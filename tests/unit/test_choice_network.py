"""The DARTS cell space written with Choice layers (`nasp_tf.cnn.choice_network`)
is the built-in supernet: with the same weights and the same A, one step of
`SpaceSearcher` (NASP, DARTS first and second order, PA-standard and PA-lazy
with their second-order gradient) gives the built-in searcher's architecture
gradient, A, Ā and weights, and the same network after it. One algorithm,
not two. The Choice cells run through shared traces (`SharedRuns`), the
searcher's default."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nasp_tf import api, optimizers
from nasp_tf import choice as choice_lib
from nasp_tf.cnn import choice_network
from nasp_tf.search import space as space_lib

pytestmark = pytest.mark.slow

SHAPE, CLASSES, CHANNELS, CELLS, NODES = (8, 8, 3), 5, 4, 3, 2


def _pairs(builtin, model):
    """[(built-in variable, row or None, model variable)]: every weight of the
    model and where the built-in supernet keeps it."""
    net = builtin.supernet
    pairs = [(net.stem_kernel, None, model.get_layer("stem").kernel, None)]
    pairs += [(a, None, b, None) for a, b in zip(net.stem_bn.weights,
                                                 model.get_layer("stem").bn.weights)]
    for i, cell in enumerate(net.cells):
        for pre in ("preprocess0", "preprocess1"):
            ours = model.get_layer(f"cell_{i}_{pre}")
            theirs = getattr(cell, pre)
            assert type(ours) is type(theirs)
            pairs += [(a, None, b, None) for a, b in zip(theirs.weights, ours.weights)]
        edge = 0
        for node in range(NODES):
            for pred in range(2 + node):
                choice = model.get_layer(f"cell_{i}_edge_{node}_{pred}")
                mixed = cell.edges[edge]
                for k, single in enumerate(choice.candidates):
                    assert single.op_name == mixed.op_names[k]
                    for (key, row), (own_key, own_row) in zip(cell.stacked.layout[edge][k],
                                                              single.stacked.layout[0][0]):
                        assert own_row == 0
                        pairs.append((cell.stacked.kernels[key], row,
                                      single.stacked.kernels[own_key], 0))
                    # The ops' batch norms (statistics only: no affine in search).
                    pairs += [(a, None, b, None) for a, b in zip(
                        [w for w in mixed.candidates[k].weights if "moving" in w.path],
                        [w for w in single.op.weights if "moving" in w.path])]
                edge += 1
    classifier = model.get_layer("classifier")
    pairs += [(net.classifier.kernel, None, classifier.kernel, None),
              (net.classifier.bias, None, classifier.bias, None)]
    return pairs


def _value(variable, row=None):
    value = np.asarray(variable.numpy())
    return value if row is None else value[row]


def _copy(pairs):
    for theirs, row, ours, own_row in pairs:
        value = _value(theirs, row)
        assert _value(ours, own_row).shape == value.shape, (theirs.path, ours.path)
        ours.assign(value if own_row is None else value[None])


# {ops: (the Choice network, its shared traces)}: every searcher of a test
# process runs on one network per op set (a searcher owns A, the network only
# weights, which each test sets from its built-in searcher), so the traces of
# its Choices are made once.
_NETWORKS = {}


def _choice_network(space):
    if space.ops("normal") not in _NETWORKS:
        model = choice_network.choice_search_network(space, CLASSES, CHANNELS, CELLS, NODES,
                                                     SHAPE)
        _NETWORKS[space.ops("normal")] = (model, choice_lib.SharedRuns())
    return _NETWORKS[space.ops("normal")]


def _searchers(name="nasp"):
    # The weights from a seed of their own, not from whatever state the tests
    # run before this one left the global generator in.
    keras.utils.set_random_seed(0)
    builtin = api.build_searcher(name, "darts7", SHAPE, CLASSES, CHANNELS, CELLS, NODES)
    # DARTS searches the space with `none` added (as the built-in supernet).
    model, shared_runs = _choice_network(builtin.supernet.space)
    ours = space_lib.SpaceSearcher(model, name, grad_clip=5.0)
    ours.shared_runs = shared_runs
    pairs = _pairs(builtin, model)
    _copy(pairs)
    # A in (0.1, 0.9): no ties for prox_C1, no clipping by prox_C2 after one step.
    rng = np.random.RandomState(3)
    for kind, variable in builtin.arch_vars.items():
        a = rng.uniform(0.1, 0.9, variable.shape).astype(np.float32)
        variable.assign(a)
        for edge in range(a.shape[0]):
            ours.arch_vars[f"{kind}_{edge}"].assign(a[edge:edge + 1])
    for searcher in (builtin, ours):
        # Plain SGD at rate 1 on A: its change is minus the architecture gradient.
        searcher.compile(weight_optimizer=optimizers.TorchSGD(0.05, 0.9, 3e-4),
                         arch_optimizer=optimizers.TorchSGD(1.0, 0.0, 0.0),
                         loss=None if searcher is builtin else
                         tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return builtin, ours, pairs


def _arch(builtin, ours):
    """(built-in A of both kinds, ours stacked in the same rows)."""
    theirs = {k: v.numpy() for k, v in builtin.arch_vars.items()}
    mine = {k: np.concatenate([ours.arch_vars[f"{k}_{e}"].numpy()
                               for e in range(theirs[k].shape[0])]) for k in theirs}
    return theirs, mine


def _batch(seed):
    rng = np.random.default_rng(seed)
    return (tf.constant(rng.normal(size=(6,) + SHAPE).astype(np.float32)),
            tf.constant(rng.integers(0, CLASSES, 6)))


@pytest.mark.parametrize("name", ["nasp", "darts1", "darts2", "pa", "pa_lazy"])
def test_one_step_on_the_choice_cells_is_the_built_in_step(name):
    builtin, ours, pairs = _searchers(name)
    x, _ = _batch(9)
    # The discrete networks (DARTS's is derived without `none`: not compared).
    discrete = name not in ("darts1", "darts2")
    if discrete:
        np.testing.assert_allclose(ours(x).numpy(), builtin(x).numpy(), rtol=1e-5, atol=1e-6)
    before, _ = _arch(builtin, ours)
    start = {id(v): _value(v, r) for _, _, v, r in pairs if v.trainable}
    pair = (_batch(0), _batch(1))
    # Eagerly (a traced step gives the same numbers, and tracing every
    # candidate of every edge takes a minute).
    builtin.train_step(pair)
    ours.train_step(pair)
    theirs, mine = _arch(builtin, ours)
    for kind in theirs:
        gradient = before[kind] - theirs[kind]
        assert np.abs(gradient).max() > 1e-4, kind  # the step moved A
        # atol 1e-5: the second-order gradients' finite differences amplify
        # float32 rounding in entries near 0 (the gradient's scale is ~1).
        np.testing.assert_allclose(before[kind] - mine[kind], gradient, rtol=1e-4, atol=1e-5,
                                   err_msg=kind)
        np.testing.assert_array_equal(mine[kind].argmax(1), theirs[kind].argmax(1))
        # Ā before the step: not one op everywhere.
        assert len(set(before[kind].argmax(1))) > 1, kind
    moved = 0.0
    for theirs_var, row, ours_var, own_row in pairs:
        if not ours_var.trainable:
            continue
        expected = _value(theirs_var, row)
        np.testing.assert_allclose(_value(ours_var, own_row), expected, rtol=1e-4, atol=1e-6,
                                   err_msg=ours_var.path)
        moved = max(moved, float(np.abs(expected - start[id(ours_var)]).max()))
    assert moved > 1e-4
    if discrete:  # batch-norm statistics included: each moved once
        np.testing.assert_allclose(ours(x).numpy(), builtin(x).numpy(), rtol=1e-4, atol=1e-5)
