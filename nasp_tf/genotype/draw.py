"""Pictures: cells of CNN and recurrent genotypes (Graphviz DOT text and
matplotlib PNGs) and labelled heat maps of architecture matrices.

Nodes carry the genotype JSON's numbers. A CNN cell's inputs c_{k-2} and
c_{k-1} are states 0 and 1 and its intermediate nodes 2, 3, ...: node i is
described by entries 2i-4 and 2i-3. A recurrent cell's s0 (the gated mix of
x_t and h_{t-1}) is state 0 and entry i defines node i + 1.
"""

import dataclasses
import math
import os

import numpy as np

from nasp_tf import atomic

# A picture's scale: inches per data unit (the axes fill the figure at equal
# aspect, so label sizes in data units are known before drawing).
_INCHES_PER_UNIT = 1.1
_LABEL_POINTS = 7
_NODE_POINTS = 10
# Where along its curve an edge's label may sit, in order of preference.
_LABEL_POSITIONS = (0.5, 0.38, 0.62, 0.28, 0.72, 0.2, 0.8)


def cnn_edge_labels(num_nodes):
    """The rows of a CNN architecture matrix: "j←i" for the edge from state i
    into node j, node by node (nodes 2, 3, ..., as in the genotype JSON)."""
    return [f"{j}←{i}" for j in range(2, num_nodes + 2) for i in range(j)]


def rnn_edge_labels(steps):
    """The rows of a recurrent architecture matrix: "j←i" for node j (1..steps)
    fed by state i (0 is s0), node by node."""
    return [f"{j}←{i}" for j in range(1, steps + 1) for i in range(j)]


def _cnn_state(i):
    return {0: "c_{k-2}", 1: "c_{k-1}"}.get(i, str(i))


def _rnn_state(i):
    return "s0" if i == 0 else str(i)


@dataclasses.dataclass(frozen=True)
class Edge:
    """One labelled edge of a cell picture: a quadratic curve from `source` to
    `target` (matplotlib's arc3 with `bend`), its label centred at `label_at`."""
    source: str
    target: str
    label: str
    bend: float
    label_at: tuple

    def label_box(self):
        """(x0, y0, x1, y1) of the drawn label, approximately, in data units."""
        w, h = _text_size(self.label, _LABEL_POINTS)
        x, y = self.label_at
        return (x - w / 2, y - h / 2, x + w / 2, y + h / 2)


@dataclasses.dataclass(frozen=True)
class CellLayout:
    """Everything a cell picture shows, in data units, before it is drawn.

    Args:
      nodes: {name: (x, y)} of every box.
      colours: {name: fill colour}.
      edges: the labelled edges.
      plain_edges: (source, target, colour) of unlabelled straight arrows.
      bounds: (x_min, x_max, y_min, y_max) of the picture.
    """
    nodes: dict
    colours: dict
    edges: tuple
    plain_edges: tuple
    bounds: tuple


def _text_size(text, points):
    """Approximate (width, height) of a text box in data units."""
    inches = points / 72.0
    return (0.62 * inches * len(text) + 0.06) / _INCHES_PER_UNIT, 1.5 * inches / _INCHES_PER_UNIT


def _curve_point(start, end, bend, t):
    """The point at t of matplotlib's arc3 curve (a quadratic Bezier whose
    control point is the midpoint moved by bend times the rotated chord)."""
    (x1, y1), (x2, y2) = start, end
    cx, cy = (x1 + x2) / 2 + bend * (y2 - y1), (y1 + y2) / 2 - bend * (x2 - x1)
    a, b, c = (1 - t) ** 2, 2 * t * (1 - t), t ** 2
    return (a * x1 + b * cx + c * x2, a * y1 + b * cy + c * y2)


def _gap(a, b):
    """How far apart two boxes (x, y, half width, half height) are: positive
    when they are disjoint, negative by how much they overlap."""
    return max(abs(a[0] - b[0]) - a[2] - b[2], abs(a[1] - b[1]) - a[3] - b[3])


def _place_labels(nodes, node_names, edges):
    """Label positions along the edges, none on another label or on a box.

    Each label takes the first position along its curve (middle first) where
    its box clears every box and label placed so far; where none does, the
    one with the most room.
    """
    margin = 0.04
    taken = []
    for name in node_names:
        w, h = _text_size(name, _NODE_POINTS)
        taken.append((*nodes[name], w / 2 + 0.1, h / 2 + 0.08))
    placed = []
    for source, target, label, bend in edges:
        w, h = _text_size(label, _LABEL_POINTS)
        best, best_gap = None, -math.inf
        for t in _LABEL_POSITIONS:
            x, y = _curve_point(nodes[source], nodes[target], bend, t)
            box = (x, y, w / 2 + margin, h / 2 + margin)
            gap = min((_gap(box, other) for other in taken), default=math.inf)
            if gap > 0:
                best = box
                break
            if gap > best_gap:
                best, best_gap = box, gap
        taken.append(best)
        placed.append(Edge(source, target, label, bend, (best[0], best[1])))
    return tuple(placed)


def cell_layout(pairs, concat):
    """The picture of one CNN cell: inputs left, nodes 2, 3, ... alternating
    above and below, the output c_{k} right.

    Args:
      pairs: the cell's (op, input state) pairs, two per node.
      concat: the states concatenated into the output.
    """
    num_nodes = len(pairs) // 2
    nodes = {_cnn_state(0): (0.0, 1.0), _cnn_state(1): (0.0, -1.0)}
    for j in range(2, num_nodes + 2):
        nodes[str(j)] = (1.6 * (j - 1), 1.2 if j % 2 == 0 else -1.2)
    nodes["c_{k}"] = (1.6 * (num_nodes + 1), 0.0)
    colours = {name: "#add8e6" for name in nodes}
    colours.update({_cnn_state(0): "#b4eeb4", _cnn_state(1): "#b4eeb4", "c_{k}": "#eee8aa"})
    # The two edges of a node bend opposite ways.
    edges = [(_cnn_state(inp), str(2 + p // 2), op, 0.2 if p % 2 else -0.2)
             for p, (op, inp) in enumerate(pairs)]
    plain = tuple((_cnn_state(c), "c_{k}", "gray") for c in concat)
    return CellLayout(nodes, colours, _place_labels(nodes, list(nodes), edges), plain,
                      (-0.8, nodes["c_{k}"][0] + 0.8, -2.0, 2.0))


def rnn_cell_layout(genotype):
    """The picture of a recurrent cell: x_t and h_{t-1} left, s0 and the nodes
    1, 2, ... in a row (longer edges arc above it), h_t right."""
    steps = len(genotype.recurrent)
    nodes = {"$x_{t}$": (0.0, 0.8), "$h_{t-1}$": (0.0, -0.8)}
    for i in range(steps + 1):
        nodes[_rnn_state(i)] = (1.4 * (i + 1), 0.0)
    out = "$h_{t}$ (mean)"
    nodes[out] = (1.4 * (steps + 2), -1.6)
    colours = {name: "#add8e6" for name in nodes}
    colours.update({"$x_{t}$": "#b4eeb4", "$h_{t-1}$": "#b4eeb4", out: "#eee8aa"})
    edges = []
    for i, (act, pred) in enumerate(genotype.recurrent):
        span = nodes[str(i + 1)][0] - nodes[_rnn_state(pred)][0]
        edges.append((_rnn_state(pred), str(i + 1), act, -0.35 if span > 1.5 else 0.0))
    plain = (("$x_{t}$", "s0", "black"), ("$h_{t-1}$", "s0", "black"),
             *((_rnn_state(c), out, "gray") for c in genotype.concat))
    placed = _place_labels(nodes, list(nodes), edges)
    top = max([1.6] + [edge.label_at[1] + 0.5 for edge in placed])
    return CellLayout(nodes, colours, placed, plain, (-0.8, nodes[out][0] + 0.9, -2.2, top))


def draw_layout(layout, title, path):
    """Draws a `CellLayout` to a PNG with matplotlib (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x0, x1, y0, y1 = layout.bounds
    title_inches = 0.4
    width, height = (x1 - x0) * _INCHES_PER_UNIT, (y1 - y0) * _INCHES_PER_UNIT
    fig = Figure(figsize=(width, height + title_inches))
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, height / (height + title_inches)))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.axis("off")
    # Each edge and its label share a colour, so crossing edges stay apart.
    palette = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
               "#17becf", "#bcbd22")
    for i, edge in enumerate(layout.edges):
        colour = palette[i % len(palette)]
        ax.annotate("", xy=layout.nodes[edge.target], xytext=layout.nodes[edge.source],
                    zorder=1, arrowprops=dict(arrowstyle="-|>", color=colour, shrinkA=14,
                                              shrinkB=14,
                                              connectionstyle=f"arc3,rad={edge.bend}"))
        ax.text(*edge.label_at, edge.label, ha="center", va="center", fontsize=_LABEL_POINTS,
                zorder=2, color=colour, bbox=dict(fc="white", ec="none", alpha=0.85, pad=0.5))
    for source, target, colour in layout.plain_edges:
        ax.annotate("", xy=layout.nodes[target], xytext=layout.nodes[source], zorder=1,
                    arrowprops=dict(arrowstyle="-|>", color=colour, shrinkA=14, shrinkB=14))
    for name, xy in layout.nodes.items():
        ax.text(*xy, name, ha="center", va="center", fontsize=_NODE_POINTS, zorder=3,
                bbox=dict(boxstyle="round,pad=0.4", fc=layout.colours[name], ec="black"))
    fig.suptitle(title, y=1.0 - 0.5 * title_inches / (height + title_inches), va="center")
    with atomic.writing(path) as tmp:
        canvas.print_png(tmp)


def cell_to_dot(pairs, concat, title):
    """Graphviz DOT text of one CNN cell (render it with `dot -Tpng`)."""
    lines = [f'digraph "{title}" {{', "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
             '  "c_{k-2}" [fillcolor=darkseagreen2];', '  "c_{k-1}" [fillcolor=darkseagreen2];']
    for j in range(2, len(pairs) // 2 + 2):
        lines.append(f'  "{j}" [fillcolor=lightblue];')
    lines.append('  "c_{k}" [fillcolor=palegoldenrod];')
    for p, (op, inp) in enumerate(pairs):
        lines.append(f'  "{_cnn_state(inp)}" -> "{2 + p // 2}" [label="{op}"];')
    for c in concat:
        lines.append(f'  "{_cnn_state(c)}" -> "c_{{k}}" [color=gray];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_cell_png(pairs, concat, title, path):
    """Draws one CNN cell as a PNG (see `cell_layout`)."""
    draw_layout(cell_layout(pairs, concat), title, path)


def write_cell_pictures(genotype, directory):
    """Writes cell_<kind>.dot and cell_<kind>.png for both cells of a CNN genotype."""
    written = []
    for kind in ("normal", "reduce"):
        pairs, concat = genotype.cell(kind)
        title = f"{kind} cell ({genotype.space})"
        dot_path = os.path.join(directory, f"cell_{kind}.dot")
        atomic.write_text(dot_path, cell_to_dot(pairs, concat, title))
        png_path = os.path.join(directory, f"cell_{kind}.png")
        draw_cell_png(pairs, concat, title, png_path)
        written += [dot_path, png_path]
    return written


def rnn_cell_to_dot(genotype, title="recurrent cell"):
    """Graphviz DOT text of a recurrent cell."""
    lines = [f'digraph "{title}" {{', "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
             '  "x_{t}" [fillcolor=darkseagreen2];', '  "h_{t-1}" [fillcolor=darkseagreen2];',
             '  "s0" [fillcolor=lightblue];', '  "h_{t}" [fillcolor=palegoldenrod];',
             '  "x_{t}" -> "s0" [label="gate, tanh"];', '  "h_{t-1}" -> "s0";']
    for i, (act, pred) in enumerate(genotype.recurrent):
        lines.append(f'  "{i + 1}" [fillcolor=lightblue];')
        lines.append(f'  "{_rnn_state(pred)}" -> "{i + 1}" [label="{act}"];')
    for c in genotype.concat:
        lines.append(f'  "{_rnn_state(c)}" -> "h_{{t}}" [color=gray];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_rnn_cell_png(genotype, path, title="recurrent cell"):
    """Draws a recurrent cell as a PNG (see `rnn_cell_layout`)."""
    draw_layout(rnn_cell_layout(genotype), title, path)


def write_rnn_cell_pictures(genotype, directory):
    """Writes cell_recurrent.dot and cell_recurrent.png."""
    dot_path = os.path.join(directory, "cell_recurrent.dot")
    atomic.write_text(dot_path, rnn_cell_to_dot(genotype))
    png_path = os.path.join(directory, "cell_recurrent.png")
    draw_rnn_cell_png(genotype, png_path)
    return [dot_path, png_path]


def arch_heatmap(matrix, row_labels, col_labels, title):
    """A labelled heat map of an architecture matrix with values in [0, 1]:
    a matplotlib `Figure` with one row per edge (`cnn_edge_labels`,
    `rnn_edge_labels`), one column per op, and every value written in its
    cell.

    Args:
      matrix: [edges, ops] array (clipped to [0, 1] for the colours).
      row_labels: one label per row.
      col_labels: one op name per column.
      title: the figure's title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = np.asarray(matrix, np.float64)
    if values.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"matrix shape must be (rows, columns) = ({len(row_labels)}, "
                         f"{len(col_labels)}). Received: {values.shape}")
    rows, cols = values.shape
    fig = Figure(figsize=(1.6 + 0.62 * cols, 1.5 + 0.22 * rows), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    shown = np.clip(values, 0.0, 1.0)
    ax.imshow(shown, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(cols), list(col_labels), rotation=40, ha="right", fontsize=7)
    ax.set_yticks(range(rows), list(row_labels), fontsize=7)
    ax.set_xlabel("op", fontsize=8)
    ax.set_ylabel("edge (node←input)", fontsize=8)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                color="white" if shown[i, j] < 0.6 else "black")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def figure_pixels(fig):
    """The RGB pixels of a matplotlib `Figure`, uint8 [height, width, 3]."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
