import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT
from nasp_tf import spaces
from nasp_tf import genotype as genotype_lib
from nasp_tf import optimizers
from nasp_tf import proximal
from nasp_tf.data import text
from nasp_tf import callbacks as callbacks_lib
from nasp_tf.rnn import search_model
from nasp_tf.search import darts_rnn, nasp_rnn, rnn_base

VOCAB, UNITS, BATCH = 30, 8, 4


def make_searcher(kind="nasp", lr=20.0, dropouts=0.0, **kw):
    op_names = (spaces.RECURRENT_ACTIVATIONS_WITH_NONE if kind == "darts"
                else spaces.RECURRENT_ACTIVATIONS)
    lm = search_model.search_language_model(VOCAB, UNITS, op_names, dropout=dropouts,
                                            dropouth=dropouts, dropoutx=dropouts, seed=1)
    cls = darts_rnn.DARTSRNNSearcher if kind == "darts" else nasp_rnn.NASPRNNSearcher
    searcher = cls(lm, batch_size=BATCH, search_batch_size=BATCH, eval_batch_size=BATCH,
                   bptt=5, **kw)
    searcher.compile(optimizers.TorchSGD(lr, 0.0, 0.0),
                     optimizers.TorchAdam(3e-3, beta_1=0.9, l2=1e-3))
    return searcher


def batch(seed, length=5):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCAB, (BATCH, length + 1)).astype(np.int32)
    return tf.constant(tokens[:, :-1]), tf.constant(tokens[:, 1:])


def test_weight_step_is_clipped_decayed_and_scaled_by_length():
    searcher = make_searcher(grad_clip=0.25, weight_decay=0.01, tar_beta=1e-3)
    lm = searcher.model
    abar, index = searcher.discrete_arch()["recurrent"]
    x, y = batch(0, length=3)  # 3 of bptt 5: the step is scaled by 0.6
    h0 = np.random.default_rng(1).normal(size=(BATCH, UNITS)).astype(np.float32)
    searcher.train_hidden.assign(h0)
    variables = lm.trainable_weights
    before = [v.numpy().copy() for v in variables]
    with tf.GradientTape() as tape:
        logits, last, raw, _ = lm(x, h0, weights=abar, index=index, mode="dense",
                                  training=True)
        loss = tf.reduce_mean(rnn_base.token_losses(y, logits)) + 1e-3 * tf.reduce_mean(
            tf.square(raw[:, 1:] - raw[:, :-1]))
    grads = [g.numpy() for g in tape.gradient(loss, variables)]
    norm = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    expected = [w - 20.0 * 0.6 * (g * min(1.0, 0.25 / norm) + 0.01 * w)
                for w, g in zip(before, grads)]
    searcher.weight_step(x, y, abar, index, "discrete")
    for v, e in zip(variables, expected):
        np.testing.assert_allclose(v.numpy(), e, rtol=1e-4, atol=1e-6)
    # The hidden state is carried to the next chunk.
    np.testing.assert_allclose(searcher.train_hidden.numpy(), last.numpy(), atol=1e-6)


def test_nasp_arch_step_uses_the_gradient_at_abar_and_stays_in_the_box():
    searcher = make_searcher()
    x, y = batch(2)
    abar, index = searcher.discrete_arch()["recurrent"]
    h = np.zeros((BATCH, UNITS), np.float32)
    with tf.GradientTape() as tape:
        w = tf.constant(abar)
        tape.watch(w)
        logits, _, _, _ = searcher.model(x, h, weights=w, index=index, mode="dense",
                                         training=True)
        loss = tf.reduce_mean(rnn_base.token_losses(y, logits))
    grad = tape.gradient(loss, w).numpy()
    a0 = searcher.arch_var.numpy().copy()
    searcher.arch_step(x, y)
    # Keras's first Adam step on g' = g + l2 A: A - lr g' / (|g'| + eps / sqrt(1 - b2)),
    # then the clip to [0, 1].
    g = grad + 1e-3 * a0
    expected = np.clip(a0 - 3e-3 * g / (np.abs(g) + 1e-8 / np.sqrt(1e-3)), 0.0, 1.0)
    np.testing.assert_allclose(searcher.arch_var.numpy(), expected, atol=1e-6)
    assert np.all(searcher.arch_var.numpy() >= 0) and np.all(searcher.arch_var.numpy() <= 1)


def test_short_nasp_search_learns_and_returns_a_valid_genotype(tmp_path):
    corpus = text.synthetic_corpus(VOCAB, (6000, 1200, 1200), seed=0)
    searcher = make_searcher(lr=5.0, grad_clip=0.25)
    train = text.batchify(corpus.train, BATCH)
    valid = text.batchify(corpus.valid, BATCH)
    pairs = text.search_pairs(train, valid, 5, 60, 0, 3, 0)
    before = searcher.evaluate(text.eval_chunks(valid, 5), verbose=0,
                               return_dict=True)
    history = searcher.fit(pairs, epochs=3, steps_per_epoch=60, verbose=0, shuffle=False,
                           callbacks=[callbacks_lib.ResetStates()])
    after = searcher.evaluate(text.eval_chunks(valid, 5), verbose=0,
                              return_dict=True)
    assert np.isfinite(history.history["arch_loss"]).all()
    assert after["ppl"] < 0.9 * before["ppl"]
    matrix, abar = searcher.arch_numpy()["recurrent"]
    assert not np.allclose(matrix, 0.5)  # A moved
    genotype = searcher.genotype()
    path = str(tmp_path / "g.json")
    genotype_lib.write_json(genotype, path)
    assert genotype_lib.load_rnn_genotype(path) == genotype
    expected_abar, _ = proximal.prox_c1(matrix, search_model.rows_per_node(8), keep_edges=1)
    np.testing.assert_array_equal(abar, expected_abar.numpy())


def test_darts_first_order_moves_alpha_through_the_softmax():
    searcher = make_searcher("darts")
    assert searcher.arch_var.shape == (36, 5)
    a0 = searcher.arch_var.numpy().copy()
    searcher.train_step((batch(3), batch(4)))
    moved = np.abs(searcher.arch_var.numpy() - a0)
    assert moved.min() > 0  # every entry, `none` included, gets a gradient
    assert all(act != "none" for act, _ in searcher.genotype().recurrent)
    with pytest.raises(ValueError, match="none"):
        nasp_rnn.NASPRNNSearcher(make_searcher("darts").model, batch_size=4,
                                 search_batch_size=4, eval_batch_size=4)


SEARCH = os.path.join(ROOT, "bin", "search.py")


def run_bin(*args):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, SEARCH, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env)


def test_bin_search_on_text_writes_the_run_directory(tmp_path):
    out = str(tmp_path / "run")
    result = run_bin("--dataset=synthetic_text", "--epochs=2", "--steps_per_epoch=3",
                     "--batch_size=8", "--rnn_units=8", "--verbose=0", "--momentum=0",
                     "--learning_rate=20", "--grad_clip=0.25", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(out, "genotype.json")) as f:
        data = json.load(f)
    assert data["kind"] == "rnn" and len(data["recurrent"]) == 8
    for name in ("genotypes/epoch_001.json", "genotypes/epoch_002.json",
                 "arch/epoch_002.npz", "cell_recurrent.png", "cell_recurrent.dot",
                 "flags.txt"):
        assert os.path.exists(os.path.join(out, name)), name
    assert os.listdir(os.path.join(out, "tensorboard"))
    assert any(n.startswith("ckpt") for n in os.listdir(os.path.join(out, "checkpoints")))
    assert "--rnn_units=8" in open(os.path.join(out, "flags.txt")).read()
    assert "search valid perplexity" in result.stdout
    # Resuming a finished run does no more epochs and gives the same genotype.
    again = run_bin("--dataset=synthetic_text", "--epochs=2", "--steps_per_epoch=3",
                    "--batch_size=8", "--rnn_units=8", "--verbose=0", f"--output_dir={out}")
    assert again.returncode == 0, again.stderr[-3000:]
    with open(os.path.join(out, "genotype.json")) as f:
        assert json.load(f) == data


def test_bin_search_missing_corpus_is_one_line(tmp_path):
    result = run_bin("--dataset=ptb", f"--data_dir={tmp_path}/nope",
                     f"--output_dir={tmp_path}/run")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("search.py: error: corpus directory")


def test_bin_search_on_text_mirrored_over_two_cpu_devices(tmp_path):
    out = str(tmp_path / "run")
    result = run_bin("--dataset=synthetic_text", "--epochs=2", "--steps_per_epoch=2",
                     "--batch_size=8", "--eval_batch_size=4", "--rnn_units=8", "--verbose=0",
                     "--strategy=mirrored", "--cpu_devices=2", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(out, "genotype.json")) as f:
        assert json.load(f)["kind"] == "rnn"
    assert os.path.exists(os.path.join(out, "genotypes", "epoch_002.json"))


def test_bin_search_on_text_with_first_order_darts(tmp_path):
    out = str(tmp_path / "run")
    result = run_bin("--dataset=synthetic_text", "--searcher=darts1", "--epochs=1",
                     "--steps_per_epoch=2", "--batch_size=8", "--rnn_units=8", "--verbose=0",
                     f"--output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    matrix = np.load(os.path.join(out, "arch", "epoch_001.npz"))["A_recurrent"]
    assert matrix.shape == (36, 5)  # `none` first
    with open(os.path.join(out, "genotype.json")) as f:
        assert all(act != "none" for act, _ in json.load(f)["recurrent"])
    unsupported = run_bin("--dataset=synthetic_text", "--searcher=pa",
                          f"--output_dir={tmp_path}/pa")
    lines = [line for line in unsupported.stderr.splitlines() if line.strip()]
    assert unsupported.returncode != 0 and len(lines) == 1, unsupported.stderr[-2000:]
    assert "no recurrent version" in lines[0]
