"""An exported language model served by TensorFlow alone in a fresh process."""

import os

import numpy as np
import tensorflow as tf

from nasp_tf import export
from nasp_tf import genotype as genotype_lib
from nasp_tf.rnn import model as model_lib

VOCAB, UNITS = 30, 8


def test_saved_model_round_trip_in_a_fresh_process(tmp_path, root, run_script):
    lm = model_lib.language_model(genotype_lib.RNN_PUBLISHED["DARTS_V1"], VOCAB, UNITS, seed=4)
    lm(np.zeros((1, 1), np.int32), lm.zero_state(1))
    # Non-trivial weights: the decoder bias is zero at initialisation.
    lm.decoder_bias.assign(np.random.default_rng(0).normal(size=VOCAB).astype(np.float32))
    path = export.export_language_model(lm, str(tmp_path / "saved_model"))
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, VOCAB, (3, 9)).astype(np.int32)
    state = rng.normal(size=(3, UNITS)).astype(np.float32)
    logits, last, _, _ = lm(tokens, state, training=False)
    expected = tf.nn.log_softmax(logits).numpy()
    inputs, outputs = str(tmp_path / "in.npz"), str(tmp_path / "out.npz")
    np.savez(inputs, tokens=tokens, state=state, splits=np.array([4]))
    run_script(os.path.join(root, "tests", "e2e", "saved_lm_worker.py"), path, inputs, outputs,
               timeout=300)
    got = np.load(outputs)
    np.testing.assert_allclose(got["log_probs"], expected, atol=1e-5)
    np.testing.assert_allclose(got["state"], last.numpy(), atol=1e-5)
    assert np.allclose(np.exp(got["log_probs"]).sum(-1), 1.0, atol=1e-4)
