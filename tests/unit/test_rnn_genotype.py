import json

import numpy as np
import pytest

from nasp_tf import spaces
from nasp_tf import genotype as genotype_lib
from nasp_tf import proximal
from nasp_tf.rnn import search_model


def test_published_recurrent_genotypes_round_trip_through_json(tmp_path):
    for name in ("DARTS_V1", "DARTS_V2", "ENAS"):
        genotype = genotype_lib.RNN_PUBLISHED[name]
        path = str(tmp_path / f"{name}.json")
        genotype_lib.write_json(genotype, path)
        with open(path) as f:
            assert json.load(f)["kind"] == "rnn"
        assert genotype_lib.load_rnn_genotype(path) == genotype
    v2 = genotype_lib.load_rnn_genotype("DARTS_V2")
    assert v2.recurrent[0] == ("sigmoid", 0) and v2.recurrent[-1] == ("relu", 5)
    assert v2.concat == tuple(range(1, 9))
    assert genotype_lib.load_rnn_genotype("DARTS") is v2


@pytest.mark.parametrize("data,message", [
    ({"kind": "cnn"}, "needs kind 'rnn'"),
    ({"kind": "rnn", "recurrent": [["tanh", 0]]}, "missing keys ['concat']"),
    ({"kind": "rnn", "recurrent": [["gelu", 0]], "concat": [1]}, "'gelu' is not one of"),
    ({"kind": "rnn", "recurrent": [["tanh", 0], ["relu", 2]], "concat": [1, 2]},
     "node 2 cannot take state 2"),
    ({"kind": "rnn", "recurrent": [["tanh", 0]], "concat": [2]}, "concat"),
    ({"kind": "rnn", "recurrent": [["tanh", True]], "concat": [1]}, "recurrent[0]"),
    ([1, 2], "expected a JSON object"),
])
def test_bad_recurrent_genotypes_are_one_line_errors(data, message):
    with pytest.raises(genotype_lib.GenotypeError) as info:
        genotype_lib.rnn_genotype_from_json(data, "g.json")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_name_and_bad_file(tmp_path):
    with pytest.raises(genotype_lib.GenotypeError, match="DARTS_V1"):
        genotype_lib.load_rnn_genotype("NASP_RNN")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(genotype_lib.GenotypeError, match="not valid JSON"):
        genotype_lib.load_rnn_genotype(str(bad))


def test_derive_complete_reads_the_kept_rows_of_abar():
    rng = np.random.default_rng(0)
    matrix = rng.uniform(size=(36, 4)).astype(np.float32)
    abar, index = proximal.prox_c1(matrix, search_model.rows_per_node(8), keep_edges=1)
    genotype = genotype_lib.derive_rnn_genotype(spaces.RECURRENT_ACTIVATIONS, matrix,
                                                abar.numpy())
    for i, (act, pred) in enumerate(genotype.recurrent):
        offset = i * (i + 1) // 2
        block = matrix[offset:offset + i + 1]
        assert pred == int(np.argmax(block.max(axis=1)))
        assert act == spaces.RECURRENT_ACTIVATIONS[int(np.argmax(block[pred]))]
    assert genotype.concat == tuple(range(1, 9))


def test_derive_softmax_skips_none():
    matrix = np.zeros((3, 5), np.float32)  # 2 nodes, DARTS columns with `none` first
    matrix[0] = [9.0, 1.0, 0.0, 0.0, 0.0]  # `none` is largest: tanh is picked
    matrix[1] = [0.0, 0.0, 0.0, 0.0, 0.0]
    matrix[2] = [0.0, 0.0, 0.0, 3.0, 0.0]  # node 2: row 2 (s1) beats the uniform row 1
    genotype = genotype_lib.derive_rnn_genotype(spaces.RECURRENT_ACTIVATIONS_WITH_NONE, matrix,
                                                method="softmax", steps=2)
    assert genotype.recurrent == (("tanh", 0), ("sigmoid", 1))


def test_cell_picture_files(tmp_path):
    written = genotype_lib.write_rnn_cell_pictures(genotype_lib.RNN_PUBLISHED["DARTS_V2"],
                                                   str(tmp_path))
    dot = open(written[0]).read()
    assert '"5" -> "6" [label="sigmoid"]' in dot
    with open(written[1], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
