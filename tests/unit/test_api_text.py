"""The Python API's text search: a recurrent-cell searcher by name and the
(train, validation) chunk pairs of token ids its `fit` takes."""

import numpy as np

import nasp_tf
from nasp_tf import callbacks
from nasp_tf import genotype as genotype_lib


def test_text_pairs_are_the_token_streams_in_bptt_chunks():
    ids = np.arange(4 * 60) % 97
    valid = (np.arange(4 * 30) * 7) % 97
    pairs, steps = nasp_tf.text_search_pairs(ids, valid, batch_size=4, bptt=10, epochs=2,
                                             seed=1)
    assert steps == (60 - 1) // 10
    train_rows, valid_rows = ids.reshape(4, 60), valid.reshape(4, 30)  # numpy's batchify
    count = 0
    for (x, y), (vx, vy) in pairs.as_numpy_iterator():
        count += 1
        # A chunk is a column window of the streams; targets are the next tokens.
        start = next(s for s in range(60) if np.array_equal(train_rows[:, s:s + x.shape[1]], x))
        np.testing.assert_array_equal(y, train_rows[:, start + 1:start + 1 + x.shape[1]])
        vstart = next(s for s in range(30)
                      if np.array_equal(valid_rows[:, s:s + vx.shape[1]], vx))
        np.testing.assert_array_equal(vy, valid_rows[:, vstart + 1:vstart + 1 + vx.shape[1]])
    assert count == 2 * steps


def test_a_text_search_through_the_api_moves_a_and_returns_a_cell():
    rng = np.random.default_rng(0)
    ids, valid = rng.integers(0, 50, 4 * 80), rng.integers(0, 50, 4 * 40)
    searcher = nasp_tf.build_text_searcher("nasp", vocab_size=50, units=8, steps=2,
                                           batch_size=4, bptt=10, eval_batch_size=4, seed=3)
    searcher.compile(weight_optimizer=nasp_tf.TorchSGD(20.0, momentum=0.0),
                     arch_optimizer=nasp_tf.TorchAdam(3e-2))
    before = searcher.arch_numpy()["recurrent"][0].copy()
    pairs, steps = nasp_tf.text_search_pairs(ids, valid, batch_size=4, bptt=10, epochs=1)
    history = searcher.fit(pairs, epochs=1, steps_per_epoch=steps, verbose=0,
                           callbacks=[callbacks.ResetStates()])
    assert np.isfinite(history.history["loss"]).all()
    after = searcher.arch_numpy()["recurrent"][0]
    assert np.abs(after - before).max() > 1e-3 and ((0 <= after) & (after <= 1)).all()
    genotype = searcher.genotype()
    assert len(genotype.recurrent) == 2
    assert genotype_lib.rnn_genotype_from_json(genotype.to_json()) == genotype
