"""Search spaces: the candidate ops of CNN cells and of the recurrent cell.

The column order of an architecture matrix is the order of its op list.
"""

import dataclasses

# DARTS's PRIMITIVES without `none` (docs/reference.md §1.4): the paper's
# "7 operations", the same list for normal and reduction cells.
DARTS7 = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
          "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
# DARTS's own 8 ops, with `none` first, for the DARTS searchers.
DARTS8 = ("none",) + DARTS7
# NASP's PRIMITIVES_NORMAL / PRIMITIVES_REDUCE (docs/reference.md §1.3): 12 distinct ops.
NASP12_NORMAL = ("skip_connect", "conv_3x1_1x3", "dil_conv_3x3", "conv 1x1",
                 "conv 3x3", "sep_3x3", "sep_5x5", "sep_7x7")
NASP12_REDUCE = ("skip_connect", "avg_pool_3x3", "max_pool_3x3", "max_pool_5x5",
                 "max_pool_7x7")
# RobustDARTS's S2 (Zela et al., "Understanding and Robustifying Differentiable
# Architecture Search", ICLR 2020): two ops on every edge of both cells, the
# space where DARTS's drift to parameter-free skip connections shows most.
# With DARTS's `none` added (`with_none`) it is their S3. Two candidates per
# edge also make its search network the cheapest of the built-in spaces.
S2 = ("skip_connect", "sep_conv_3x3")


@dataclasses.dataclass(frozen=True)
class CNNSpace:
    """The candidate ops of a CNN search space.

    Args:
      name: the space's name (`darts7`, `darts8`, `nasp12`, `s2`).
      normal: op names of the normal cell, in column order.
      reduce: op names of the reduction cell, in column order.
    """
    name: str
    normal: tuple
    reduce: tuple

    def ops(self, cell_kind):
        if cell_kind not in ("normal", "reduce"):
            raise ValueError(f"cell_kind must be 'normal' or 'reduce'. Received: {cell_kind!r}")
        return self.normal if cell_kind == "normal" else self.reduce


CNN_SPACES = {
    "darts7": CNNSpace("darts7", DARTS7, DARTS7),
    "darts8": CNNSpace("darts8", DARTS8, DARTS8),
    "nasp12": CNNSpace("nasp12", NASP12_NORMAL, NASP12_REDUCE),
    "s2": CNNSpace("s2", S2, S2),
}
# The spaces a user names (--space, `build_searcher`): darts8 is darts7 as the
# DARTS searchers search it, with `none` added.
USER_SPACES = ("darts7", "nasp12", "s2")


def with_none(space):
    """The space with DARTS's `none` op as column 0 of both cells (`darts7` gives
    `darts8`): DARTS searches with it and never returns it."""
    if "none" in space.normal and "none" in space.reduce:
        return space
    if space.name == "darts7":
        return CNN_SPACES["darts8"]
    return CNNSpace(f"{space.name}+none", ("none",) + space.normal, ("none",) + space.reduce)


def get_cnn_space(name):
    if name not in CNN_SPACES:
        raise ValueError(f"Unknown CNN search space. Received: {name!r}; "
                         f"choose one of {sorted(CNN_SPACES)}")
    return CNN_SPACES[name]


def edges_per_node(num_nodes, num_inputs=2):
    """Incoming edge counts of the intermediate nodes: 2, 3, 4, ... for a CNN cell."""
    return [num_inputs + i for i in range(num_nodes)]


def num_edges(num_nodes, num_inputs=2):
    return sum(edges_per_node(num_nodes, num_inputs))


# The recurrent cell's candidate activations (DARTS rnn/genotypes.py): NASP's
# space is these four (the paper's list, no `none`); DARTS adds `none` as
# column 0 and never returns it.
RECURRENT_ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")
RECURRENT_ACTIVATIONS_WITH_NONE = ("none",) + RECURRENT_ACTIVATIONS
