"""Recurrent genotypes (DARTS rnn/genotypes.py).

{"kind": "rnn", "recurrent": [[activation, predecessor], ...], "concat": [...]}.
Entry i defines node i + 1 from state `predecessor` in 0..i (0 is s0, the
gated mix of x_t and h_{t-1}); h_t is the mean of the `concat` states.
"""

import dataclasses

import numpy as np

from nasp_tf import spaces
from nasp_tf.errors import GenotypeError
from nasp_tf.genotype import files


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
        if act not in spaces.RECURRENT_ACTIVATIONS:
            raise GenotypeError(f"{source}: recurrent[{i}]: activation {act!r} is not one of "
                                f"{', '.join(spaces.RECURRENT_ACTIVATIONS)}")
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
    return files.load(path_or_name, RNN_PUBLISHED, rnn_genotype_from_json,
                      "recurrent genotype", elsewhere=[(("NASP",), "an image (CNN) cell")])


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
