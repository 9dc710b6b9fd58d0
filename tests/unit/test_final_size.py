"""The size budget (--max_params): the parameter count of a cell's final
network from its table against the networks themselves, the fit of a cell to
a budget, and NASP's multiplier against its dual-ascent formula."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from nasp_tf import spaces
from nasp_tf.cnn import final_size
from nasp_tf.cnn import model as model_lib
from nasp_tf.genotype import cnn as cnn_genotype

NODES = 4


def random_genotype(space, rng):
    """A valid genotype of `space`: each node two distinct inputs, random ops."""
    cells = {}
    for kind in ("normal", "reduce"):
        ops = space.ops(kind)
        pairs = []
        for node in range(NODES):
            for source in rng.choice(node + 2, 2, replace=False):
                pairs.append((ops[rng.integers(len(ops))], int(source)))
        cells[kind] = tuple(pairs)
    concat = tuple(range(2, 2 + NODES))
    return cnn_genotype.CNNGenotype(space.name, cells["normal"], concat, cells["reduce"],
                                    concat)


def built_count(genotype, imagenet=False, channels=4, layers=5, image_shape=(8, 8, 3)):
    build = model_lib.network_imagenet if imagenet else model_lib.network_cifar
    return build(genotype, num_classes=7, channels=channels, layers=layers, auxiliary=False,
                 image_shape=image_shape).count_params_without_auxiliary()


@pytest.mark.parametrize("space_name", ["darts7", "nasp12"])
def test_the_table_counts_what_the_built_network_has(space_name):
    space = spaces.get_cnn_space(space_name)
    table = final_size.size_table(space, NODES, 7, 4, 5, (8, 8, 3))
    rng = np.random.default_rng(0)
    genotypes = [random_genotype(space, rng) for _ in range(6)]
    for genotype in genotypes:
        assert table.parameters(genotype) == built_count(genotype)
    # The selection form (what the searcher sums in its step) agrees.
    genotype = genotypes[0]
    selection = {}
    for kind in ("normal", "reduce"):
        matrix = np.zeros(table.costs[kind].shape)
        pairs = genotype.normal if kind == "normal" else genotype.reduce
        for i, (op, source) in enumerate(pairs):
            matrix[sum(spaces.edges_per_node(NODES)[:i // 2]) + source,
                   table.ops[kind].index(op)] = 1
        selection[kind] = matrix
    assert table.parameters_of_selection(selection) == built_count(genotype)


def test_the_imagenet_table_counts_the_imagenet_network():
    space = spaces.get_cnn_space("darts7")
    table = final_size.size_table(space, NODES, 7, 4, 3, (64, 64, 3), imagenet=True)
    genotype = random_genotype(space, np.random.default_rng(1))
    assert table.parameters(genotype) == built_count(genotype, True, 4, 3, (64, 64, 3))


def _cheapest_genotype(table, space):
    """By enumeration: per node, the pair of distinct inputs and their ops
    with the fewest parameters."""
    cells = {}
    for kind in ("normal", "reduce"):
        pairs, row = [], 0
        for node in range(NODES):
            options = [(table.costs[kind][row + s, k], s, k)
                       for s in range(node + 2) for k in range(len(table.ops[kind]))]
            best = min(((a[0] + b[0], a, b) for a, b in itertools.combinations(options, 2)
                        if a[1] != b[1]), key=lambda t: t[0])
            pairs += [(table.ops[kind][best[1][2]], best[1][1]),
                      (table.ops[kind][best[2][2]], best[2][1])]
            row += node + 2
        cells[kind] = tuple(pairs)
    concat = tuple(range(2, 2 + NODES))
    return cnn_genotype.CNNGenotype(space.name, cells["normal"], concat, cells["reduce"],
                                    concat)


def test_the_minimum_is_the_cheapest_cell_and_a_budget_below_it_is_refused():
    space = spaces.get_cnn_space("darts7")
    table = final_size.size_table(space, NODES, 7, 4, 5, (8, 8, 3))
    cheapest = _cheapest_genotype(table, space)
    assert table.minimum() == built_count(cheapest)
    rng = np.random.default_rng(2)
    assert all(table.parameters(random_genotype(space, rng)) >= table.minimum()
               for _ in range(10))
    from nasp_tf.errors import UserError

    with pytest.raises(UserError, match="below the smallest final network"):
        final_size.check_budget(table, table.minimum() - 1)
    final_size.check_budget(table, table.minimum())


def test_fit_meets_the_budget_with_cheaper_choices_that_a_prefers():
    space = spaces.get_cnn_space("darts7")
    table = final_size.size_table(space, NODES, 7, 4, 5, (8, 8, 3))
    rng = np.random.default_rng(3)
    heavy = cnn_genotype.CNNGenotype(
        "darts7", tuple(("sep_conv_5x5", s) for n in range(NODES) for s in (0, 1)),
        tuple(range(2, 6)), tuple(("sep_conv_5x5", s) for n in range(NODES) for s in (0, 1)),
        tuple(range(2, 6)))
    # A as a search would leave it for this cell: the kept op the strongest.
    arch = {kind: rng.uniform(0, 0.5, table.costs[kind].shape) for kind in ("normal", "reduce")}
    for kind in arch:
        arch[kind][:, table.ops[kind].index("sep_conv_5x5")] = 0.6
    size = table.parameters(heavy)
    assert table.fit(heavy, arch, size) == (heavy, [])  # within the budget: unchanged
    for fraction in (0.9, 0.6, 0.0):
        budget = int(table.minimum() + fraction * (size - table.minimum()))
        fitted, changes = table.fit(heavy, arch, budget)
        assert built_count(fitted) <= budget and changes
        for kind in ("normal", "reduce"):
            pairs = fitted.normal if kind == "normal" else fitted.reduce
            for node in range(NODES):  # still two distinct inputs per node
                assert pairs[2 * node][1] != pairs[2 * node + 1][1]
    # Where A strongly prefers one cheaper op on an edge, the fit takes it.
    arch["normal"][0, table.ops["normal"].index("dil_conv_3x3")] = 0.6
    fitted, changes = table.fit(heavy, arch, size - 1)
    assert fitted.normal[0] == ("dil_conv_3x3", 0) and len(changes) == 1


@pytest.mark.slow
def test_nasp_multiplier_follows_dual_ascent_and_shrinks_the_cell():
    from nasp_tf import api, optimizers
    from nasp_tf.search.nasp import NASPSearcher

    space = spaces.get_cnn_space("darts7")
    table = final_size.size_table(space, NODES, 3, 4, 5, (8, 8, 3))
    searcher = api.build_searcher("nasp", "darts7", (8, 8, 3), 3, channels=4, cells=3,
                                  nodes=NODES, eta=0.5, max_params=table.minimum() + 1000,
                                  size_table=table)
    assert searcher.penalize == "all"
    searcher.compile(weight_optimizer=optimizers.TorchSGD(0.05, 0.9, 3e-4),
                     arch_optimizer=optimizers.TorchAdam(0.05))
    # Start from the costliest cell (every edge sep_conv_5x5), far over the budget.
    for kind, var in searcher.arch_vars.items():
        start = np.full(var.shape, 0.5, np.float32)
        start[:, table.ops[kind].index("sep_conv_5x5")] = 0.9
        var.assign(start)
    rng = np.random.default_rng(4)

    def batch():
        return (tf.constant(rng.random((8, 8, 8, 3), dtype=np.float32)),
                tf.constant(rng.integers(0, 3, 8)))

    step = tf.function(searcher.train_step)
    eta, etas, sizes = 0.5, [], []
    for _ in range(12):
        logs = step((batch(), batch()))
        selection = {k: s for k, (_, s) in searcher.selection_numpy().items()}
        size = table.parameters_of_selection(selection)
        eta = min(max(eta + NASPSearcher.BUDGET_RATE * (size / searcher.max_params - 1), 0.0),
                  NASPSearcher.ETA_MAX)
        assert float(searcher.eta_variable.numpy()) == pytest.approx(eta, rel=1e-5, abs=1e-6)
        etas.append(eta)
        sizes.append(size)
    # The logs hold the means since the metrics were last reset (an epoch's).
    assert float(logs["eta"]) == pytest.approx(np.mean(etas), rel=1e-5)
    assert float(logs["final_parameters"]) == pytest.approx(np.mean(sizes), rel=1e-5)
    assert sizes[0] > searcher.max_params  # the budget was binding: eta had work to do
    assert etas[0] > 0.5 and max(etas) > etas[0]
