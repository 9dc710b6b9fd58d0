"""CNN genotypes: the two discrete cells an image search returns.

A genotype is validated JSON, never Python source:
`{"kind": "cnn", "space": ..., "normal": [[op, input], ...], "normal_concat": [...],
"reduce": [...], "reduce_concat": [...]}`. Node i of a cell (numbered from 2;
0 and 1 are the cell inputs c_{k-2} and c_{k-1}) is described by entries 2i-4
and 2i-3, and its inputs are smaller than i. Also here: deriving a genotype
from the architecture matrices, and the published genotypes.
"""

import dataclasses

import numpy as np

from nasp_tf import spaces
from nasp_tf.errors import GenotypeError
from nasp_tf.genotype import files


@dataclasses.dataclass(frozen=True)
class CNNGenotype:
    """A CNN genotype: per cell kind, (op, input) pairs two per node, and a concat.

    Args:
      space: name of the search space the ops come from.
      normal: ((op, input), ...) of the normal cell.
      normal_concat: states concatenated into the normal cell's output.
      reduce: ((op, input), ...) of the reduction cell.
      reduce_concat: states concatenated into the reduction cell's output.
    Reference: Liu et al., "DARTS", ICLR 2019, genotypes.py.
    """
    space: str
    normal: tuple
    normal_concat: tuple
    reduce: tuple
    reduce_concat: tuple
    kind: str = "cnn"

    def to_json(self):
        return {"kind": "cnn", "space": self.space,
                "normal": [[op, int(i)] for op, i in self.normal],
                "normal_concat": [int(i) for i in self.normal_concat],
                "reduce": [[op, int(i)] for op, i in self.reduce],
                "reduce_concat": [int(i) for i in self.reduce_concat]}

    def cell(self, cell_kind):
        if cell_kind == "normal":
            return self.normal, self.normal_concat
        return self.reduce, self.reduce_concat


def _check_cell(where, pairs, concat, allowed_ops):
    if not isinstance(pairs, list) or not pairs or len(pairs) % 2:
        raise GenotypeError(f"{where}: expected a non-empty list of [op, input] pairs, "
                            f"two per node. Received: {pairs!r}")
    num_nodes = len(pairs) // 2
    checked = []
    for p, pair in enumerate(pairs):
        if (not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str)
                or isinstance(pair[1], bool) or not isinstance(pair[1], int)):
            raise GenotypeError(f"{where}[{p}]: expected [op name, input index]. Received: {pair!r}")
        op, inp = pair
        if op not in allowed_ops:
            raise GenotypeError(f"{where}[{p}]: op {op!r} is not in the space "
                                f"(allowed: {', '.join(allowed_ops)})")
        node = 2 + p // 2
        if not 0 <= inp < node:
            raise GenotypeError(f"{where}[{p}]: node {node} cannot take input {inp} "
                                f"(inputs must be in 0..{node - 1})")
        checked.append((op, inp))
    if (not isinstance(concat, list) or not concat
            or any(isinstance(c, bool) or not isinstance(c, int) for c in concat)
            or len(set(concat)) != len(concat)
            or any(not 0 <= c < num_nodes + 2 for c in concat)):
        raise GenotypeError(f"{where}_concat: expected distinct state indices in "
                            f"0..{num_nodes + 1}. Received: {concat!r}")
    return tuple(checked), tuple(concat)


def cnn_genotype_from_json(data, source="genotype"):
    """Validates a decoded JSON value and returns a `CNNGenotype`."""
    if not isinstance(data, dict):
        raise GenotypeError(f"{source}: expected a JSON object. Received: {type(data).__name__}")
    kind = data.get("kind")
    if kind != "cnn":
        raise GenotypeError(f"{source}: this is a {kind!r} genotype; an image network needs "
                            "kind 'cnn'")
    expected = {"kind", "space", "normal", "normal_concat", "reduce", "reduce_concat"}
    missing, extra = expected - set(data), set(data) - expected
    if missing or extra:
        raise GenotypeError(f"{source}: missing keys {sorted(missing)}, unknown keys "
                            f"{sorted(extra)}")
    space_name = data["space"]
    if space_name not in spaces.CNN_SPACES:
        raise GenotypeError(f"{source}: unknown space {space_name!r} "
                            f"(known: {', '.join(sorted(spaces.CNN_SPACES))})")
    space = spaces.CNN_SPACES[space_name]
    normal, normal_concat = _check_cell(f"{source}: normal", data["normal"],
                                        data["normal_concat"], space.normal)
    reduce, reduce_concat = _check_cell(f"{source}: reduce", data["reduce"],
                                        data["reduce_concat"], space.reduce)
    return CNNGenotype(space_name, normal, normal_concat, reduce, reduce_concat)


def _published(space, normal, reduce):
    return CNNGenotype(space, tuple(normal), (2, 3, 4, 5), tuple(reduce), (2, 3, 4, 5))


# docs/reference.md §5.5.
PUBLISHED = {
    "NASP": _published(
        "nasp12",
        [("conv_3x1_1x3", 0), ("conv 3x3", 1), ("dil_conv_3x3", 2), ("conv 3x3", 1),
         ("dil_conv_3x3", 2), ("conv 3x3", 0), ("skip_connect", 0), ("dil_conv_3x3", 3)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_5x5", 1),
         ("skip_connect", 2), ("skip_connect", 3), ("skip_connect", 0), ("skip_connect", 1)]),
    "DARTS_V1": _published(
        "darts8",
        [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
         ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
         ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)]),
    "DARTS_V2": _published(
        "darts8",
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
         ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
         ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)]),
}
PUBLISHED["DARTS"] = PUBLISHED["DARTS_V2"]


def load_cnn_genotype(path_or_name):
    """A published genotype by name (NASP, DARTS_V1, DARTS_V2) or a JSON file."""
    return files.load(path_or_name, PUBLISHED, cnn_genotype_from_json, "genotype",
                      elsewhere=[(("ENAS", "LSTM"), "a recurrent (text) cell")])


def _cell_from_discrete(op_names, arch_matrix, abar, node_sizes):
    pairs, row = [], 0
    for size in node_sizes:
        block = range(row, row + size)
        kept = [r for r in block if np.any(abar[r] != 0)]
        op_of = {r: int(np.argmax(abar[r])) for r in kept}
        # Strongest edge first (the continuous value at the kept op), as the
        # reference lists genotypes; ties keep the lower input.
        kept.sort(key=lambda r: (-float(arch_matrix[r, op_of[r]]), r))
        pairs.extend((op_names[op_of[r]], r - row) for r in kept)
        row += size
    return tuple(pairs)


def _cell_from_softmax(op_names, arch_matrix, node_sizes, keep_edges):
    logits = np.asarray(arch_matrix, np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    usable = np.array([name != "none" for name in op_names])
    pairs, row = [], 0
    for size in node_sizes:
        block = list(range(row, row + size))
        strength = {r: probs[r][usable].max() for r in block}
        # Stable sort: equal strengths keep the lower input first.
        kept = sorted(block, key=lambda r: -strength[r])[:keep_edges]
        for r in kept:
            best = int(np.argmax(np.where(usable, probs[r], -1.0)))
            pairs.append((op_names[best], r - row))
        row += size
    return tuple(pairs)


def derive_cnn_genotype(space, arch, num_nodes, method="complete", keep_edges=2):
    """A genotype from the architecture matrices.

    Args:
      space: the `spaces.CNNSpace` searched.
      arch: {"normal": (A, Ā), "reduce": (A, Ā)} as numpy arrays; Ā may be
        None for `method="softmax"`.
      num_nodes: intermediate nodes per cell.
      method: "complete" returns the discrete Ā the search trained (NASP's
        claim: no re-discretisation); "softmax" is DARTS's and the NASP code's
        rule (softmax over each row of A, top `keep_edges` edges per node by
        their largest non-`none` probability, argmax op).
      keep_edges: incoming edges per node.
    """
    node_sizes = spaces.edges_per_node(num_nodes)
    concat = tuple(range(2, 2 + num_nodes))
    cells = {}
    for kind in ("normal", "reduce"):
        matrix, abar = arch[kind]
        if method == "complete":
            cells[kind] = _cell_from_discrete(space.ops(kind), np.asarray(matrix),
                                              np.asarray(abar), node_sizes)
        elif method == "softmax":
            cells[kind] = _cell_from_softmax(space.ops(kind), matrix, node_sizes, keep_edges)
        else:
            raise ValueError(f"method must be 'complete' or 'softmax'. Received: {method!r}")
    return CNNGenotype(space.name, cells["normal"], concat, cells["reduce"], concat)


def arch_matrices_of(genotype, space, num_nodes):
    """{cell kind: A} whose prox_c1 is `genotype`: 1 at each kept (edge, op) of
    `space`'s columns, 0 elsewhere (e.g. to pin a searcher to a known cell).

    Raises:
      GenotypeError: a genotype of another number of nodes, or an op that is
        not a column of `space`.
    """
    sizes = spaces.edges_per_node(num_nodes)
    offsets = np.cumsum([0] + sizes[:-1])
    matrices = {}
    for kind in ("normal", "reduce"):
        pairs = genotype.normal if kind == "normal" else genotype.reduce
        if len(pairs) != 2 * num_nodes:
            raise GenotypeError(f"a {kind} cell of {len(pairs) // 2} nodes cannot pin a "
                                f"supernet of {num_nodes} nodes. Received: {genotype.to_json()}")
        ops = list(space.ops(kind))
        matrix = np.zeros((sum(sizes), len(ops)), np.float32)
        for entry, (op, source) in enumerate(pairs):
            if op not in ops:
                raise GenotypeError(f"{op!r} is not an op of the {kind} cell of {space.name} "
                                    f"({', '.join(ops)})")
            matrix[offsets[entry // 2] + source, ops.index(op)] = 1.0
        matrices[kind] = matrix
    return matrices
