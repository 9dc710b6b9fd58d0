"""The parameter count of the final network a cell will be retrained in, as a
function of the cell: what a size budget (`bin/search.py --max_params`)
constrains.

A final network's parameters (the auxiliary head excluded, as bin/train.py
counts them) are a constant part (stem, the cells' preprocessing, the
classifier), which no choice of ops changes, plus one term per selected
(edge, op) of every cell: the op's parameters at that cell's channels and
the edge's stride. `SizeTable` holds the constant and, per cell kind, an
[edges, ops] matrix of those terms summed over the cells of the kind, so
that the count of the cell Ā selects is `base + sum(selection * costs)`,
cheap enough to evaluate after every architecture step.
"""

import dataclasses

import numpy as np

from nasp_tf import counting
from nasp_tf import spaces
from nasp_tf.cnn import model as model_lib
from nasp_tf.cnn import ops as ops_lib
from nasp_tf.errors import UserError
from nasp_tf.genotype import cnn as cnn_genotype

KINDS = ("normal", "reduce")


@dataclasses.dataclass
class SizeTable:
    """Parameters of a final network as `base` + a sum over the selected (edge, op).

    Args:
      base: the parameters no op choice changes.
      costs: {cell kind: float [edges, ops]}, the parameters the op of column
        k adds on the edge of row e, summed over the network's cells of that
        kind (rows in the order of the architecture matrices).
      ops: {cell kind: the op names of the columns}.
      num_nodes: intermediate nodes per cell.
    """
    base: int
    costs: dict
    ops: dict
    num_nodes: int

    def _row(self, node, source):
        return sum(spaces.edges_per_node(self.num_nodes)[:node]) + source

    def _pairs(self, genotype, kind):
        return genotype.normal if kind == "normal" else genotype.reduce

    def parameters(self, genotype):
        """The final network's parameters with `genotype`'s cells."""
        total = self.base
        for kind in KINDS:
            for i, (op, source) in enumerate(self._pairs(genotype, kind)):
                total += self.costs[kind][self._row(i // 2, source), self.ops[kind].index(op)]
        return int(round(total))

    def parameters_of_selection(self, selection):
        """The same for {kind: 0/1 [edges, ops]}, 1 at each kept (edge, op)."""
        return int(round(self.base + sum(float(np.sum(selection[kind] * self.costs[kind]))
                                          for kind in KINDS)))

    def minimum(self):
        """The fewest parameters any cell of the space gives: each node's two
        cheapest inputs, each with its cheapest op."""
        total = self.base
        sizes = spaces.edges_per_node(self.num_nodes)
        for kind in KINDS:
            cheapest = self.costs[kind].min(axis=1)
            start = 0
            for size in sizes:
                total += np.sort(cheapest[start:start + size])[:2].sum()
                start += size
        return int(round(total))

    def fit(self, genotype, arch, budget):
        """`genotype` changed as little as A says until its network has at most
        `budget` parameters: a greedy projection onto the budget.

        Each change replaces one selected (input, op) of a node by a cheaper
        one of the same node (another op, or another input the node does not
        take yet): the one that gives up the least A (A[kept] - A[new], at
        least 1e-6) among those that bring the count within the budget, else
        the one that saves the most parameters per unit of A given up, until
        the count is within the budget. Returns (the genotype, the changes
        made as text).

        Args:
          genotype: a `CNNGenotype` of this table's space.
          arch: {kind: A}, the continuous matrices the search ended with.
          budget: the most parameters allowed (at least `minimum()`).
        """
        pairs = {kind: [list(p) for p in self._pairs(genotype, kind)] for kind in KINDS}
        changes = []
        size = self.parameters(genotype)
        while size > budget:
            best = closing = None
            for kind in KINDS:
                matrix, costs, names = arch[kind], self.costs[kind], self.ops[kind]
                for i, (op, source) in enumerate(pairs[kind]):
                    node, row = i // 2, self._row(i // 2, source)
                    column = names.index(op)
                    taken = pairs[kind][i ^ 1][1]  # the node's other input
                    for new_source in range(node + 2):
                        if new_source == taken:
                            continue
                        new_row = self._row(node, new_source)
                        for new_column, new_op in enumerate(names):
                            saved = costs[row, column] - costs[new_row, new_column]
                            if saved <= 0:
                                continue
                            lost = max(matrix[row, column] - matrix[new_row, new_column], 1e-6)
                            change = (kind, i, new_op, new_source, saved)
                            if best is None or saved / lost > best[0]:
                                best = (saved / lost, *change)
                            # One change that fits: the least A given up, not
                            # the most parameters saved (no needless shrinking).
                            if size - saved <= budget and (closing is None or
                                                           lost < closing[0]):
                                closing = (lost, *change)
            if best is None:
                raise ValueError(f"budget {budget} is below the smallest network of this "
                                 f"space, {self.minimum()} parameters")
            _, kind, i, new_op, new_source, saved = closing or best
            old = tuple(pairs[kind][i])
            pairs[kind][i] = [new_op, new_source]
            size -= saved
            changes.append(f"{kind} node {i // 2 + 2}: {old[0]}<-{old[1]} -> "
                           f"{new_op}<-{new_source}")
        fitted = dataclasses.replace(genotype, normal=tuple(map(tuple, pairs["normal"])),
                                     reduce=tuple(map(tuple, pairs["reduce"])))
        return fitted, changes


def size_table(space, num_nodes, num_classes, channels, layers, image_shape,
               imagenet=False):
    """The `SizeTable` of the final network bin/train.py builds for cells of
    `space` (a `spaces.CNNSpace`) with these settings (its --init_channels,
    --layers; the network of ImageNet with `imagenet`)."""
    ops = {kind: list(space.ops(kind)) for kind in KINDS}
    sizes = spaces.edges_per_node(num_nodes)
    # Any genotype gives the cells' channels and the constant part.
    probe = cnn_genotype.CNNGenotype(
        space.name, tuple((ops["normal"][0], j) for n in range(num_nodes) for j in (0, 1)),
        tuple(range(2, 2 + num_nodes)),
        tuple((ops["reduce"][0], j) for n in range(num_nodes) for j in (0, 1)),
        tuple(range(2, 2 + num_nodes)))
    build = model_lib.network_imagenet if imagenet else model_lib.network_cifar
    network = build(probe, num_classes=num_classes, channels=channels, layers=layers,
                    auxiliary=False, image_shape=tuple(image_shape))
    base = network.count_params_without_auxiliary()
    cache = {}

    def op_parameters(name, cell_channels, stride):
        key = (name, cell_channels, stride)
        if key not in cache:
            layer = ops_lib.build_op(name, cell_channels, stride, affine=True)
            layer.build((None, 16, 16, cell_channels))
            cache[key] = counting.parameter_count(layer)
        return cache[key]

    costs = {kind: np.zeros((sum(sizes), len(ops[kind]))) for kind in KINDS}
    for cell in network.cells:
        kind = "reduce" if cell.reduction else "normal"
        base -= counting.parameter_count(*cell.cell_ops)
        row = 0
        for size in sizes:
            for source in range(size):
                stride = 2 if cell.reduction and source < 2 else 1
                for column, name in enumerate(ops[kind]):
                    costs[kind][row, column] += op_parameters(name, cell.channels, stride)
                row += 1
    return SizeTable(int(base), costs, ops, num_nodes)


def check_budget(table, budget):
    """A `UserError` when no cell of the space fits `budget`."""
    smallest = table.minimum()
    if budget < smallest:
        raise UserError(f"--max_params={budget:,} is below the smallest final network of "
                        f"this space and retraining configuration ({smallest:,} parameters: "
                        "parameter-free ops on every edge); raise --max_params, or retrain "
                        "a smaller network (--train_flagfile with fewer --init_channels or "
                        "--layers)")
