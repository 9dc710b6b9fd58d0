import json
import os

import numpy as np
import pytest
import tensorflow as tf

from nasp_tf import genotype as genotype_lib
from nasp_tf import optimizers
from nasp_tf import callbacks as callbacks_lib
from nasp_tf.rnn import losses as losses_lib
from nasp_tf.rnn import model as model_lib
from nasp_tf.rnn import trainer as trainer_lib

VOCAB, UNITS, BATCH = 30, 8, 4


def make_trainer(lr=1.0):
    lm = model_lib.language_model(genotype_lib.RNN_PUBLISHED["DARTS_V2"], VOCAB, UNITS, seed=2)
    trainer = trainer_lib.LMTrainer(lm, BATCH, BATCH, bptt=5)
    trainer.compile(optimizers.TorchSGD(lr, 0.0, 0.0))
    return trainer


def chunk(seed, length=5):
    tokens = np.random.default_rng(seed).integers(0, VOCAB, (BATCH, length + 1))
    return tf.constant(tokens[:, :-1], tf.int32), tf.constant(tokens[:, 1:], tf.int32)


def test_averaged_sgd_keeps_the_mean_of_the_iterates_after_the_switch():
    trainer = make_trainer()
    weights = trainer.model.trainable_weights
    trainer.train_step(chunk(0))  # before the switch: not averaged
    trainer.start_averaging()
    iterates = []
    for seed in range(1, 5):
        trainer.train_step(chunk(seed))
        iterates.append([w.numpy().copy() for w in weights])
    for k, average in enumerate(trainer.averages):
        np.testing.assert_allclose(average.numpy(), np.mean([it[k] for it in iterates], 0),
                                   rtol=1e-5, atol=1e-7)
    # Swapping twice is the identity; once, the model holds the averages.
    current = [w.numpy().copy() for w in weights]
    trainer.swap_averages()
    np.testing.assert_allclose(weights[0].numpy(), np.mean([it[0] for it in iterates], 0),
                               rtol=1e-5, atol=1e-7)
    trainer.swap_averages()
    for w, c in zip(weights, current):
        np.testing.assert_array_equal(w.numpy(), c)


def test_asgd_switch_follows_the_nonmonotone_rule_and_keeps_the_best(tmp_path):
    trainer = make_trainer()
    best = tf.train.Checkpoint(weights={"w0": trainer.model.cell.w0})
    switch = callbacks_lib.ASGDSwitch(trainer, best, str(tmp_path), nonmono=2)
    # Switch when the loss is worse than the best of all but the last 2 recorded.
    losses = [5.0, 4.0, 3.9, 3.95, 3.8, 4.1]
    switched = []
    for epoch, loss in enumerate(losses):
        switch.on_epoch_end(epoch, {"val_loss": loss})
        switched.append(trainer.is_averaging)
    # Epoch 4 (3.95): only 3 recorded, min(first 1) = 5.0, no; epoch 6 (4.1) > min(5, 4, 3.9).
    assert switched == [False, False, False, False, False, True]
    state = json.load(open(tmp_path / "history.json"))
    assert state["best_loss"] == 3.8 and state["switched_at"] == 6
    assert os.path.exists(tmp_path / "best" / "weights.index")


def test_lstm_baseline_carries_h_and_c():
    lm = model_lib.lstm_language_model(VOCAB, UNITS, seed=0)
    tokens = np.random.default_rng(0).integers(0, VOCAB, (2, 7))
    whole, state, _, _ = lm(tokens, lm.zero_state(2), training=False)
    assert state.shape == (2, 2 * UNITS)
    first, s, _, _ = lm(tokens[:, :3], lm.zero_state(2), training=False)
    second, s2, _, _ = lm(tokens[:, 3:], s, training=False)
    np.testing.assert_allclose(np.concatenate([first, second], 1), whole.numpy(), atol=1e-5)
    np.testing.assert_allclose(s2.numpy(), state.numpy(), atol=1e-5)


def test_compare_table_lines_up_runs(tmp_path):
    from nasp_tf.tools import compare

    for name, ppl in (("a", 120.5), ("b", 98.25)):
        os.makedirs(tmp_path / name)
        json.dump({"genotype": f"runs/{name}/genotype.json", "parameters": 1234567,
                   "valid_ppl": ppl + 1, "test_ppl": ppl}, open(tmp_path / name / "results.json", "w"))
    lines = compare.table([str(tmp_path / "a"), str(tmp_path / "b")])
    assert len(lines) == 3 and lines[0].split()[:2] == ["run", "genotype"]
    assert lines[1].split()[1] == "a"  # a searched genotype is named by its run
    assert lines[2].split()[-3:] == ["1,234,567", "99.25", "98.25"]
    with pytest.raises(compare.CompareError, match="does not exist"):
        compare.table([str(tmp_path / "missing")])


def test_the_weight_gradient_repeated_on_one_chunk_gives_the_same_bits():
    # The retraining's gradient (clipped, decayed, with TAR) of one 35-token
    # chunk, a hundred times in one graph: the same bits each time. With tf.scan's
    # default of 10 loop iterations in flight the logits and the gradients of
    # the embedding and the cell's kernels changed in their last bits from one
    # call to the next, and two identical PTB retrainings ended 0.2 % apart in
    # perplexity after one epoch.
    lm = model_lib.language_model(genotype_lib.RNN_PUBLISHED["DARTS_V2"], 1000, UNITS, seed=3)
    tokens = np.random.default_rng(0).integers(0, 1000, (2, BATCH, 35))
    inputs, targets = (tf.constant(t, tf.int32) for t in tokens)
    variables = lm.trainable_weights

    @tf.function
    def gradients():
        with tf.GradientTape() as tape:
            logits, _, raw, dropped = lm(inputs, tf.zeros([BATCH, UNITS]), training=True)
            _, loss = losses_lib.training_loss(targets, logits, raw, dropped, 0.0, 1e-3)
        grads = losses_lib.step_gradients(tape.gradient(loss, variables), variables, 0.25,
                                          8e-7, 35, 35)
        return [tf.convert_to_tensor(g) for g in grads] + [loss, logits]

    first = [t.numpy() for t in gradients()]
    assert all(np.any(g != 0) for g in first[:len(variables)])
    for _ in range(100):
        for name, expected, found in zip([v.path for v in variables] + ["loss", "logits"],
                                         first, gradients()):
            np.testing.assert_array_equal(found.numpy(), expected, err_msg=name)
