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
    with pytest.raises(g.GenotypeError, match="unknown genotype 'ENAS'"):
        g.load_cnn_genotype("ENAS")


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
    assert '"c_{k-2}" -> "0" [label="conv_3x1_1x3"]' in dot
    assert dot.count("->") == 8 + 4
