"""Genotypes: the discrete cells a search returns.

A genotype is validated JSON, never Python source:
`{"kind": "cnn", "space": ..., "normal": [[op, input], ...], "normal_concat": [...],
"reduce": [...], "reduce_concat": [...]}`. Node i of a cell (numbered from 2;
0 and 1 are the cell inputs c_{k-2} and c_{k-1}) is described by entries 2i-4
and 2i-3, and its inputs are smaller than i. Also here: deriving a genotype
from architecture matrices, the published genotypes, and drawing a cell.
"""

import dataclasses
import json
import os

import numpy as np

from nasp_tf import spaces


class GenotypeError(ValueError):
    """A genotype file or value that cannot be used; the message says why."""


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


# REFERENCE.md §5.5.
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


def read_json(path):
    """Reads a JSON file, turning every failure into a one-line GenotypeError."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise GenotypeError(f"genotype file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GenotypeError(f"cannot read genotype file {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise GenotypeError(f"genotype file {path} is not valid JSON ({e}); "
                            "regenerate it or fix it by hand") from None


def load_cnn_genotype(path_or_name):
    """A published genotype by name (NASP, DARTS_V1, DARTS_V2) or a JSON file."""
    if path_or_name in PUBLISHED:
        return PUBLISHED[path_or_name]
    if not os.path.exists(path_or_name) and os.sep not in path_or_name \
            and not path_or_name.endswith(".json"):
        raise GenotypeError(f"unknown genotype {path_or_name!r}: give a JSON file or one of "
                            f"{', '.join(sorted(PUBLISHED))}")
    return cnn_genotype_from_json(read_json(path_or_name), source=path_or_name)


def write_json(genotype, path):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(genotype.to_json(), f, indent=1)
        f.write("\n")
    os.replace(tmp, path)  # never leave a half-written genotype behind


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


def _state_label(i):
    return {0: "c_{k-2}", 1: "c_{k-1}"}.get(i, str(i - 2))


def cell_to_dot(pairs, concat, title):
    """Graphviz DOT text of one cell (render it with `dot -Tpng`)."""
    lines = [f'digraph "{title}" {{', "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
             '  "c_{k-2}" [fillcolor=darkseagreen2];', '  "c_{k-1}" [fillcolor=darkseagreen2];']
    num_nodes = len(pairs) // 2
    for i in range(num_nodes):
        lines.append(f'  "{i}" [fillcolor=lightblue];')
    lines.append('  "c_{k}" [fillcolor=palegoldenrod];')
    for p, (op, inp) in enumerate(pairs):
        lines.append(f'  "{_state_label(inp)}" -> "{p // 2}" [label="{op}"];')
    for c in concat:
        lines.append(f'  "{_state_label(c)}" -> "c_{{k}}" [color=gray];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_cell_png(pairs, concat, title, path):
    """Draws one cell as a PNG with matplotlib: inputs left, nodes, output right."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    num_nodes = len(pairs) // 2
    pos = {0: (0.0, 1.0), 1: (0.0, -1.0)}
    for i in range(num_nodes):
        pos[i + 2] = (1.6 * (i + 1), 1.2 if i % 2 == 0 else -1.2)
    out = (1.6 * (num_nodes + 1), 0.0)
    fig, ax = plt.subplots(figsize=(2.2 * (num_nodes + 2), 4.0))
    colours = {0: "#b4eeb4", 1: "#b4eeb4"}

    def box(xy, text, colour):
        ax.text(*xy, text, ha="center", va="center", fontsize=10, zorder=3,
                bbox=dict(boxstyle="round,pad=0.4", fc=colour, ec="black"))

    ax.set_xlim(-0.8, out[0] + 0.8)
    ax.set_ylim(-2.0, 2.0)
    to_display, to_data = ax.transData.transform, ax.transData.inverted().transform
    for p, (op, inp) in enumerate(pairs):
        src, dst = pos[inp], pos[2 + p // 2]
        bend = 0.2 if p % 2 else -0.2
        ax.annotate("", xy=dst, xytext=src, zorder=1, arrowprops=dict(
            arrowstyle="-|>", color="black", shrinkA=14, shrinkB=14,
            connectionstyle=f"arc3,rad={bend}"))
        # The label sits on the curve: the midpoint of matplotlib's arc3
        # quadratic Bezier, computed in display space like the arrow itself.
        (x1, y1), (x2, y2) = to_display(src), to_display(dst)
        mid = to_data(((x1 + x2) / 2 + 0.5 * bend * (y2 - y1),
                       (y1 + y2) / 2 - 0.5 * bend * (x2 - x1)))
        ax.text(*mid, op, ha="center", va="center", fontsize=7, zorder=2, color="darkred",
                bbox=dict(fc="white", ec="none", alpha=0.8, pad=0.5))
    for c in concat:
        ax.annotate("", xy=out, xytext=pos[c], zorder=1, arrowprops=dict(
            arrowstyle="-|>", color="gray", shrinkA=14, shrinkB=14))
    for i, xy in pos.items():
        box(xy, _state_label(i), colours.get(i, "#add8e6"))
    box(out, "c_{k}", "#eee8aa")
    ax.set_title(title)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_cell_pictures(genotype, directory):
    """Writes cell_<kind>.dot and cell_<kind>.png for both cells of a CNN genotype."""
    written = []
    for kind in ("normal", "reduce"):
        pairs, concat = genotype.cell(kind)
        title = f"{kind} cell ({genotype.space})"
        dot_path = os.path.join(directory, f"cell_{kind}.dot")
        with open(dot_path, "w", encoding="utf-8") as f:
            f.write(cell_to_dot(pairs, concat, title))
        png_path = os.path.join(directory, f"cell_{kind}.png")
        draw_cell_png(pairs, concat, title, png_path)
        written += [dot_path, png_path]
    return written


# Recurrent cells (REFERENCE.md §6.6): {"kind": "rnn", "recurrent": [[activation,
# predecessor], ...], "concat": [...]}. Entry i defines node i + 1 from state
# `predecessor` in 0..i (0 is s0, the gated mix of x_t and h_{t-1}); h_t is the
# mean of the `concat` states.

RNN_ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")


@dataclasses.dataclass(frozen=True)
class RNNGenotype:
    """A recurrent cell: one (activation, predecessor) pair per node and the
    states averaged into h_t.

    Args:
      recurrent: ((activation, predecessor), ...).
      concat: states averaged into the output (1..len(recurrent)).
    Reference: Liu et al., "DARTS", ICLR 2019, rnn/genotypes.py.
    """
    recurrent: tuple
    concat: tuple
    kind: str = "rnn"

    def to_json(self):
        return {"kind": "rnn", "recurrent": [[act, int(p)] for act, p in self.recurrent],
                "concat": [int(c) for c in self.concat]}


def rnn_genotype_from_json(data, source="genotype"):
    """Validates a decoded JSON value and returns an `RNNGenotype`."""
    if not isinstance(data, dict):
        raise GenotypeError(f"{source}: expected a JSON object. Received: {type(data).__name__}")
    if data.get("kind") != "rnn":
        raise GenotypeError(f"{source}: this is a {data.get('kind')!r} genotype; a language "
                            "model needs kind 'rnn'")
    expected = {"kind", "recurrent", "concat"}
    missing, extra = expected - set(data), set(data) - expected
    if missing or extra:
        raise GenotypeError(f"{source}: missing keys {sorted(missing)}, unknown keys "
                            f"{sorted(extra)}")
    pairs = data["recurrent"]
    if not isinstance(pairs, list) or not pairs:
        raise GenotypeError(f"{source}: recurrent: expected a non-empty list of [activation, "
                            f"predecessor] pairs. Received: {pairs!r}")
    checked = []
    for i, pair in enumerate(pairs):
        if (not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str)
                or isinstance(pair[1], bool) or not isinstance(pair[1], int)):
            raise GenotypeError(f"{source}: recurrent[{i}]: expected [activation, "
                                f"predecessor]. Received: {pair!r}")
        act, pred = pair
        if act not in RNN_ACTIVATIONS:
            raise GenotypeError(f"{source}: recurrent[{i}]: activation {act!r} is not one of "
                                f"{', '.join(RNN_ACTIVATIONS)}")
        if not 0 <= pred <= i:
            raise GenotypeError(f"{source}: recurrent[{i}]: node {i + 1} cannot take state "
                                f"{pred} (predecessors must be in 0..{i})")
        checked.append((act, pred))
    concat = data["concat"]
    if (not isinstance(concat, list) or not concat
            or any(isinstance(c, bool) or not isinstance(c, int) for c in concat)
            or len(set(concat)) != len(concat)
            or any(not 0 <= c <= len(pairs) for c in concat)):
        raise GenotypeError(f"{source}: concat: expected distinct state indices in "
                            f"0..{len(pairs)}. Received: {concat!r}")
    return RNNGenotype(tuple(checked), tuple(concat))


RNN_PUBLISHED = {
    "DARTS_V1": RNNGenotype(
        (("relu", 0), ("relu", 1), ("tanh", 2), ("relu", 3), ("relu", 4), ("identity", 1),
         ("relu", 5), ("relu", 1)), tuple(range(1, 9))),
    "DARTS_V2": RNNGenotype(
        (("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2),
         ("sigmoid", 5), ("tanh", 3), ("relu", 5)), tuple(range(1, 9))),
    "ENAS": RNNGenotype(
        (("tanh", 0), ("tanh", 1), ("relu", 1), ("tanh", 3), ("tanh", 3), ("relu", 3),
         ("relu", 4), ("relu", 7), ("relu", 8), ("relu", 8), ("relu", 8)),
        (2, 5, 6, 9, 10, 11)),
}
RNN_PUBLISHED["DARTS"] = RNN_PUBLISHED["DARTS_V2"]


def load_rnn_genotype(path_or_name):
    """A published recurrent genotype by name (DARTS_V1, DARTS_V2, ENAS) or a JSON file."""
    if path_or_name in RNN_PUBLISHED:
        return RNN_PUBLISHED[path_or_name]
    if not os.path.exists(path_or_name) and os.sep not in path_or_name \
            and not path_or_name.endswith(".json"):
        raise GenotypeError(f"unknown recurrent genotype {path_or_name!r}: give a JSON file "
                            f"or one of {', '.join(sorted(RNN_PUBLISHED))}")
    return rnn_genotype_from_json(read_json(path_or_name), source=path_or_name)


def derive_rnn_genotype(op_names, arch_matrix, abar=None, method="complete", steps=8):
    """A recurrent genotype from the architecture matrix (rows node by node,
    node i with i + 1 rows).

    Args:
      op_names: the activations of the columns (may include `none`).
      arch_matrix: the continuous A (numpy).
      abar: the discrete Ā (for `method="complete"`).
      method: "complete": each node's kept row of Ā (NASP: what the search
        trained); "softmax": DARTS's parser on softmax(A): per node the row
        with the largest non-`none` probability, and its best non-`none` op.
      steps: nodes.
    """
    matrix = np.asarray(arch_matrix, np.float64)
    usable = np.array([name != "none" for name in op_names])
    pairs, offset = [], 0
    for i in range(steps):
        block = slice(offset, offset + i + 1)
        if method == "complete":
            kept = np.asarray(abar)[block]
            rows = np.flatnonzero(np.any(kept != 0, axis=1))
            if len(rows) != 1:
                raise ValueError(f"node {i + 1} must keep exactly one row of Ā. Received: "
                                 f"{len(rows)} rows")
            pred = int(rows[0])
            act = int(np.argmax(kept[pred]))
        elif method == "softmax":
            probs = np.exp(matrix[block] - matrix[block].max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            masked = np.where(usable, probs, -1.0)
            pred = int(np.argmax(masked.max(axis=1)))
            act = int(np.argmax(masked[pred]))
        else:
            raise ValueError(f"method must be 'complete' or 'softmax'. Received: {method!r}")
        pairs.append((op_names[act], pred))
        offset += i + 1
    return RNNGenotype(tuple(pairs), tuple(range(1, steps + 1)))


def _rnn_label(i):
    return "s0" if i == 0 else str(i)


def rnn_cell_to_dot(genotype, title="recurrent cell"):
    """Graphviz DOT text of a recurrent cell."""
    lines = [f'digraph "{title}" {{', "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
             '  "x_{t}" [fillcolor=darkseagreen2];', '  "h_{t-1}" [fillcolor=darkseagreen2];',
             '  "s0" [fillcolor=lightblue];', '  "h_{t}" [fillcolor=palegoldenrod];',
             '  "x_{t}" -> "s0" [label="gate, tanh"];', '  "h_{t-1}" -> "s0";']
    for i, (act, pred) in enumerate(genotype.recurrent):
        lines.append(f'  "{i + 1}" [fillcolor=lightblue];')
        lines.append(f'  "{_rnn_label(pred)}" -> "{i + 1}" [label="{act}"];')
    for c in genotype.concat:
        lines.append(f'  "{_rnn_label(c)}" -> "h_{{t}}" [color=gray];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_rnn_cell_png(genotype, path, title="recurrent cell"):
    """Draws a recurrent cell with matplotlib: inputs left, s0, nodes in order
    (edges arc above the row), h_t right."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    steps = len(genotype.recurrent)
    pos = {0: (1.4, 0.0)}
    for i in range(steps):
        pos[i + 1] = (1.4 * (i + 2), 0.0)
    out = (1.4 * (steps + 2), -1.6)
    inputs = {"x_{t}": (0.0, 0.8), "h_{t-1}": (0.0, -0.8)}
    fig, ax = plt.subplots(figsize=(1.5 * (steps + 3), 4.5))
    ax.set_xlim(-0.8, out[0] + 0.8)
    ax.set_ylim(-2.4, 2.8)

    def box(xy, text, colour):
        ax.text(*xy, text, ha="center", va="center", fontsize=10, zorder=3,
                bbox=dict(boxstyle="round,pad=0.4", fc=colour, ec="black"))

    to_display, to_data = ax.transData.transform, ax.transData.inverted().transform
    arrow = dict(arrowstyle="-|>", color="black", shrinkA=14, shrinkB=14)
    for xy in inputs.values():
        ax.annotate("", xy=pos[0], xytext=xy, zorder=1, arrowprops=arrow)
    for i, (act, pred) in enumerate(genotype.recurrent):
        src, dst = pos[pred], pos[i + 1]
        span = dst[0] - src[0]
        rad = -0.35 if span > 1.5 else 0.0
        ax.annotate("", xy=dst, xytext=src, zorder=1,
                    arrowprops=dict(arrow, connectionstyle=f"arc3,rad={rad}"))
        # The label sits on the curve: the midpoint of matplotlib's arc3
        # quadratic Bezier, computed in display space like the arrow itself.
        (x1, y1), (x2, y2) = to_display(src), to_display(dst)
        mid = to_data(((x1 + x2) / 2 + 0.5 * rad * (y2 - y1),
                       (y1 + y2) / 2 - 0.5 * rad * (x2 - x1)))
        ax.text(*mid, act, ha="center", va="center", fontsize=7, zorder=2, color="darkred",
                bbox=dict(fc="white", ec="none", alpha=0.8, pad=0.5))
    for c in genotype.concat:
        ax.annotate("", xy=out, xytext=pos[c], zorder=1,
                    arrowprops=dict(arrowstyle="-|>", color="gray", shrinkA=14, shrinkB=14))
    for name, xy in inputs.items():
        box(xy, f"${name}$", "#b4eeb4")
    for i, xy in pos.items():
        box(xy, _rnn_label(i), "#add8e6")
    box(out, "$h_{t}$ (mean)", "#eee8aa")
    ax.set_title(title)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_rnn_cell_pictures(genotype, directory):
    """Writes cell_recurrent.dot and cell_recurrent.png."""
    dot_path = os.path.join(directory, "cell_recurrent.dot")
    with open(dot_path, "w", encoding="utf-8") as f:
        f.write(rnn_cell_to_dot(genotype))
    png_path = os.path.join(directory, "cell_recurrent.png")
    draw_rnn_cell_png(genotype, png_path)
    return [dot_path, png_path]
