"""NASP's proximal operators and complexity penalty (Yao et al., AAAI 2020, §3).

All of them are TF ops, so they run inside the compiled search step: a new
architecture never forces a host round trip or a retrace.
"""

import tensorflow as tf


def prox_c2(arch_matrix):
    """Projection onto C2 = [0, 1]^{m x n}: element-wise clipping."""
    return tf.clip_by_value(arch_matrix, 0.0, 1.0)


def _first_argmax(arch_matrix):
    # tf.argmax does not promise which index wins a tie; the reference
    # (numpy) takes the lowest, and ties are common (A starts at 0.5 and
    # saturates at 1).
    num_ops = tf.shape(arch_matrix)[1]
    is_max = tf.equal(arch_matrix, tf.reduce_max(arch_matrix, axis=1, keepdims=True))
    columns = tf.broadcast_to(tf.range(num_ops), tf.shape(arch_matrix))
    first = tf.reduce_min(tf.where(is_max, columns, num_ops), axis=1)
    # A row with a NaN has no maximum: column 0 keeps every index valid, and
    # the NaN guard stops the run at the end of this step (callbacks.NaNGuard).
    return tf.where(first < num_ops, first, tf.zeros_like(first))


def node_of_rows(node_sizes):
    """The node id of every row of an architecture matrix, e.g. [0,0,1,1,1,...]."""
    ids = []
    for node, size in enumerate(node_sizes):
        ids.extend([node] * size)
    return ids


def prox_c1(arch_matrix, node_sizes, keep_edges=2, keep_value=False):
    """NASP's discrete projection with the reference code's edge pruning.

    Every row (edge) keeps one op, its largest entry (the lowest column on
    ties). Within the incoming rows of each node, only the `keep_edges` rows
    with the largest kept value survive (the lower row on ties); the other
    rows become all zeros. The kept entry is 1 (the code) or, with
    `keep_value=True`, its own value (the paper's Euclidean projection).

    Args:
      arch_matrix: float [edges, ops] tensor, the continuous A.
      node_sizes: the number of incoming rows of each node, in row order
        (2, 3, 4, 5 for a 4-node CNN cell).
      keep_edges: incoming edges kept per node (2 for CNN cells, 1 for RNN).
      keep_value: keep the entry's value instead of setting it to 1.

    Returns:
      (abar, index): the discrete matrix Ā, float [edges, ops], and the int32
      selected op of every row, `ops` for a pruned row.
    """
    arch_matrix = tf.convert_to_tensor(arch_matrix, tf.float32)
    num_rows, num_ops = arch_matrix.shape
    if num_rows != sum(node_sizes):
        raise ValueError(f"node_sizes must add up to the number of rows. Received: "
                         f"node_sizes={list(node_sizes)}, rows={num_rows}")
    op_index = _first_argmax(arch_matrix)
    strength = tf.gather(arch_matrix, op_index, axis=1, batch_dims=1)
    # rank[r] = rows of the same node that beat row r; r survives if rank < keep.
    node = tf.constant(node_of_rows(node_sizes))
    same_node = tf.equal(node[:, None], node[None, :])
    rows = tf.range(num_rows)
    earlier = rows[:, None] < rows[None, :]
    beats = same_node & ((strength[:, None] > strength[None, :])
                         | ((strength[:, None] == strength[None, :]) & earlier))
    rank = tf.reduce_sum(tf.cast(beats, tf.int32), axis=0)
    kept = rank < keep_edges
    value = strength if keep_value else tf.ones_like(strength)
    abar = tf.one_hot(op_index, num_ops) * tf.where(kept, value, 0.0)[:, None]
    index = tf.where(kept, op_index, num_ops)
    return abar, tf.cast(index, tf.int32)


def complexity_penalty(arch_matrix, op_costs):
    """R(A) = sum_k (p_k / p̄) * ||A[:, k]||², with p̄ = sum_k p_k (NASP eq. 8).

    Args:
      arch_matrix: float [edges, ops] tensor (NASP passes Ā).
      op_costs: parameter counts p_k of the ops, one per column.
    """
    costs = tf.constant(op_costs, tf.float32)
    total = tf.reduce_sum(costs)
    burden = tf.math.divide_no_nan(costs, total)
    return tf.reduce_sum(burden * tf.reduce_sum(tf.square(arch_matrix), axis=0))
