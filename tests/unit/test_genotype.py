import itertools
import json

import numpy as np
import pytest

from nasp_tf import genotype as g
from nasp_tf import spaces


def write(tmp_path, data, name="geno.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


@pytest.mark.parametrize("name", ["NASP", "DARTS_V1", "DARTS_V2"])
def test_published_genotypes_round_trip(tmp_path, name):
    genotype = g.PUBLISHED[name]
    path = str(tmp_path / "x.json")
    g.write_json(genotype, path)
    assert g.load_cnn_genotype(path) == genotype
    assert g.load_cnn_genotype(name) == genotype


def test_nasp_genotype_as_published():
    nasp = g.PUBLISHED["NASP"]
    assert nasp.normal[0] == ("conv_3x1_1x3", 0)
    assert nasp.reduce[-1] == ("skip_connect", 1)
    assert nasp.normal_concat == (2, 3, 4, 5)


GOOD = g.PUBLISHED["DARTS_V2"].to_json()


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.pop("reduce"), "missing keys"),
    (lambda d: d.update(extra=1), "unknown keys"),
    (lambda d: d.update(kind="rnn"), "'rnn' genotype"),
    (lambda d: d.update(space="darts99"), "unknown space"),
    (lambda d: d["normal"].__setitem__(0, ["conv_9x9", 0]), "not in the space"),
    (lambda d: d["normal"].__setitem__(0, ["sep_conv_3x3", 2]), "cannot take input 2"),
    (lambda d: d["normal"].__setitem__(1, ["sep_conv_3x3"]), "expected \\[op name"),
    (lambda d: d["normal"].__setitem__(1, ["sep_conv_3x3", True]), "expected \\[op name"),
    (lambda d: d["normal"].pop(), "two per node"),
    (lambda d: d.update(normal_concat=[2, 2]), "distinct state indices"),
    (lambda d: d.update(reduce_concat=[9]), "distinct state indices"),
])
def test_malformed_genotypes_are_rejected(tmp_path, mutate, message):
    data = json.loads(json.dumps(GOOD))
    mutate(data)
    with pytest.raises(g.GenotypeError, match=message):
        g.load_cnn_genotype(write(tmp_path, data))


def test_nasp12_ops_are_checked_per_cell(tmp_path):
    data = g.PUBLISHED["NASP"].to_json()
    data["reduce"][0] = ["conv 3x3", 0]  # a normal-cell op in the reduction cell
    with pytest.raises(g.GenotypeError, match="not in the space"):
        g.load_cnn_genotype(write(tmp_path, data))


@pytest.mark.parametrize("text,message", [
    ('{"kind": "cnn", "normal": [["sep', "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ("\xff\xfe", "not valid JSON|cannot read"),
])
def test_corrupt_files_are_rejected(tmp_path, text, message):
    with pytest.raises(g.GenotypeError, match=message):
        g.load_cnn_genotype(write(tmp_path, text))


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(g.GenotypeError, match="does not exist"):
        g.load_cnn_genotype(str(tmp_path / "none.json"))
    with pytest.raises(g.GenotypeError, match="unknown genotype 'DARTS_V3'"):
        g.load_cnn_genotype("DARTS_V3")
    # A published cell of the other task is named as such.
    with pytest.raises(g.GenotypeError, match="ENAS is a recurrent \\(text\\) cell"):
        g.load_cnn_genotype("ENAS")
    with pytest.raises(g.GenotypeError, match="NASP is an image \\(CNN\\) cell"):
        g.load_rnn_genotype("NASP")


def test_complete_derivation_returns_the_discrete_architecture():
    space = spaces.get_cnn_space("darts7")
    a = np.full((5, 7), 0.1, np.float32)  # 2 nodes: rows 0-1 and 2-4
    abar = np.zeros_like(a)
    a[0, 3], abar[0, 3] = 0.6, 1.0
    a[1, 5], abar[1, 5] = 0.9, 1.0
    a[3, 2], abar[3, 2] = 0.4, 1.0
    a[4, 0], abar[4, 0] = 0.7, 1.0
    geno = g.derive_cnn_genotype(space, {"normal": (a, abar), "reduce": (a, abar)}, 2)
    # Strongest edge first within each node; inputs are predecessor indices.
    assert geno.normal == (("dil_conv_3x3", 1), ("sep_conv_3x3", 0), ("max_pool_3x3", 2),
                           ("skip_connect", 1))
    assert geno.normal_concat == (2, 3)


def test_softmax_derivation_follows_the_reference_rule():
    # REFERENCE.md §3.9: a row of all 1.0 loses to a row [0.6, 0, ...] under softmax.
    space = spaces.get_cnn_space("nasp12")
    a = np.zeros((2, 8), np.float32)
    a[0, :] = 1.0
    a[1, 0] = 0.6
    red = np.zeros((2, 5), np.float32)
    geno = g.derive_cnn_genotype(space, {"normal": (a, None), "reduce": (red, None)}, 1,
                                 method="softmax", keep_edges=1)
    assert geno.normal == (("skip_connect", 1),)


def test_softmax_derivation_never_picks_none():
    space = spaces.get_cnn_space("darts8")
    a = np.zeros((2, 8), np.float32)
    a[:, 0] = 5.0  # `none` dominates every row
    a[0, 4], a[1, 2] = 1.0, 0.5
    geno = g.derive_cnn_genotype(space, {"normal": (a, None), "reduce": (a, None)}, 1,
                                 method="softmax")
    assert geno.normal == (("sep_conv_3x3", 0), ("avg_pool_3x3", 1))


def test_cell_pictures(tmp_path):
    written = g.write_cell_pictures(g.PUBLISHED["NASP"], str(tmp_path))
    assert sorted(p.rsplit("/", 1)[1] for p in written) == [
        "cell_normal.dot", "cell_normal.png", "cell_reduce.dot", "cell_reduce.png"]
    assert (tmp_path / "cell_normal.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dot = (tmp_path / "cell_normal.dot").read_text()
    assert '"c_{k-2}" -> "2" [label="conv_3x1_1x3"]' in dot  # the JSON's node numbers
    assert dot.count("->") == 8 + 4


def _label_boxes(layout):
    return [edge.label_box() for edge in layout.edges]


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("name", sorted(g.PUBLISHED))
def test_cell_picture_numbers_nodes_as_the_json_and_keeps_labels_apart(name):
    for kind in ("normal", "reduce"):
        pairs, concat = g.PUBLISHED[name].cell(kind)
        layout = g.cell_layout(pairs, concat)
        assert list(layout.nodes) == ["c_{k-2}", "c_{k-1}", "2", "3", "4", "5", "c_{k}"]
        inputs = {0: "c_{k-2}", 1: "c_{k-1}"}
        # Entries 2i-4 and 2i-3 of the JSON describe node i.
        assert [(e.source, e.target, e.label) for e in layout.edges] == [
            (inputs.get(inp, str(inp)), str(2 + p // 2), op) for p, (op, inp) in enumerate(pairs)]
        boxes = _label_boxes(layout)
        for i, j in itertools.combinations(range(len(boxes)), 2):
            assert not _overlap(boxes[i], boxes[j]), (kind, layout.edges[i], layout.edges[j])


def test_recurrent_picture_keeps_labels_apart():
    layout = g.rnn_cell_layout(g.RNN_PUBLISHED["DARTS_V2"])
    assert [n for n in layout.nodes if n.isdigit()] == [str(i) for i in range(1, 9)]
    boxes = _label_boxes(layout)
    assert not any(_overlap(a, b) for a, b in itertools.combinations(boxes, 2))


def test_arch_heatmap_labels_edges_as_the_genotype_numbers_them():
    rows = g.cnn_edge_labels(2)
    assert rows == ["2←0", "2←1", "3←0", "3←1", "3←2"]
    assert len(g.cnn_edge_labels(4)) == spaces.num_edges(4)
    assert g.rnn_edge_labels(2) == ["1←0", "2←0", "2←1"] and len(g.rnn_edge_labels(8)) == 36
    # A row labelled "j←i" is the edge the genotype writes as input i of node j.
    space = spaces.get_cnn_space("darts7")
    abar = np.zeros((5, 7))
    for row, op in (("2←1", "sep_conv_3x3"), ("2←0", "max_pool_3x3"), ("3←2", "dil_conv_3x3"),
                    ("3←0", "skip_connect")):
        abar[rows.index(row), space.normal.index(op)] = 1.0
    geno = g.derive_cnn_genotype(space, {"normal": (abar, abar), "reduce": (abar, abar)}, 2)
    assert sorted(geno.normal[:2]) == [("max_pool_3x3", 0), ("sep_conv_3x3", 1)]
    assert sorted(geno.normal[2:]) == [("dil_conv_3x3", 2), ("skip_connect", 0)]
    figure = g.arch_heatmap(abar, rows, space.normal, "Abar normal, epoch 1")
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_yticklabels()] == rows
    assert [t.get_text() for t in axes.get_xticklabels()] == list(space.normal)
    pixels = g.figure_pixels(figure)
    assert pixels.dtype == np.uint8 and pixels.shape[2] == 3 and pixels.shape[1] > 300
    with pytest.raises(ValueError, match="matrix shape"):
        g.arch_heatmap(abar[:4], rows, space.normal, "wrong")


def test_a_collapsed_cell_is_named_in_one_line():
    from nasp_tf.genotype.files import collapse_note

    darts = g.PUBLISHED["DARTS_V2"]  # 1 skip in its normal cell
    assert collapse_note(darts) is None
    skips = g.CNNGenotype(
        "darts7", tuple(("skip_connect" if i < 3 else "sep_conv_3x3", i % 2) for i in range(8)),
        (2, 3, 4, 5), darts.reduce, (2, 3, 4, 5))
    note = collapse_note(skips)
    assert "3 parameter-free ops of 8" in note and "\n" not in note
    shallow = g.RNNGenotype(tuple(("tanh", 0) for _ in range(8)), tuple(range(1, 9)))
    assert "every node of the recurrent cell takes state 0" in collapse_note(shallow)
    assert collapse_note(g.RNN_PUBLISHED["DARTS_V2"]) is None
