"""Saved .keras networks reload in a fresh process after a plain `import nasp_tf`."""

import json
import os

import numpy as np

from nasp_tf import export
from nasp_tf import genotype as genotype_lib
from nasp_tf.cnn import model as cnn_model
from nasp_tf.rnn import model as rnn_model


def test_keras_files_load_after_a_plain_import(tmp_path, root, run_script):
    rng = np.random.default_rng(0)
    network = cnn_model.network_cifar(genotype_lib.PUBLISHED["DARTS_V2"], num_classes=3,
                                      channels=4, layers=3, auxiliary=False,
                                      image_shape=(8, 8, 3), name="network")
    lm = rnn_model.language_model(genotype_lib.RNN_PUBLISHED["DARTS_V1"], 30, 8, seed=4)
    # Non-trivial weights: the decoder bias is zero at initialisation.
    lm.decoder_bias.assign(rng.normal(size=30).astype(np.float32))
    images = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    tokens = rng.integers(0, 30, (3, 5)).astype(np.int32)
    state = rng.normal(size=(3, 8)).astype(np.float32)
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, images=images, tokens=tokens, state=state,
             logits=network(images, training=False).numpy(),
             lm_logits=lm(tokens, state, training=False)[0].numpy())
    export.save_keras(network, str(tmp_path / "network.keras"))
    export.save_keras(lm, str(tmp_path / "lm.keras"))
    out = run_script(os.path.join(root, "tests", "e2e", "keras_load_worker.py"),
                     tmp_path / "network.keras", tmp_path / "lm.keras", inputs, timeout=300)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["tf_at_import"] is False  # `import nasp_tf` stays light
    assert report["classes"] == ["FinalNetwork", "RNNModel"]
    assert report["network_diff"] < 1e-5 and report["lm_diff"] < 1e-5
