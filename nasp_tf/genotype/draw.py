"""Pictures of cells: Graphviz DOT text and matplotlib PNGs, for CNN and
recurrent genotypes."""

import os

from nasp_tf import atomic


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
    with atomic.writing(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


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


# Recurrent cells (docs/reference.md §6.6): {"kind": "rnn", "recurrent": [[activation,
# predecessor], ...], "concat": [...]}. Entry i defines node i + 1 from state
# `predecessor` in 0..i (0 is s0, the gated mix of x_t and h_{t-1}); h_t is the


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
    with atomic.writing(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def write_rnn_cell_pictures(genotype, directory):
    """Writes cell_recurrent.dot and cell_recurrent.png."""
    dot_path = os.path.join(directory, "cell_recurrent.dot")
    atomic.write_text(dot_path, rnn_cell_to_dot(genotype))
    png_path = os.path.join(directory, "cell_recurrent.png")
    draw_rnn_cell_png(genotype, png_path)
    return [dot_path, png_path]
