import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from nasp_tf import genotype as genotype_lib
from test_cli import one_line_error

TRAIN = os.path.join(ROOT, "bin", "train.py")
TINY = ["--dataset=synthetic", "--epochs=1", "--steps_per_epoch=2", "--batch_size=8",
        "--init_channels=4", "--layers=3", "--max_examples=64", "--verbose=0",
        "--genotype=DARTS_V2", "--cutout=8"]
# NASP's cell claimed for the DARTS space: conv ops it does not have.
WRONG_SPACE = dict(genotype_lib.PUBLISHED["NASP"].to_json(), space="darts7")


def train(*args):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, TRAIN, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env)


@pytest.mark.parametrize("config,genotype,count", [
    ("cifar10_train", "NASP", 7363486), ("imagenet_train", "DARTS_V2", 4718752)])
def test_dry_run_prints_the_parameter_count(config, genotype, count):
    result = train(f"--flagfile=configs/{config}.flags", f"--genotype={genotype}", "--dry_run")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"parameters: {count}" in result.stdout.splitlines()


def genotype_file(tmp_path, text):
    path = tmp_path / "g.json"
    path.write_text(text)
    return f"--genotype={path}"


@pytest.mark.parametrize("make_arg,message", [
    (lambda p: "--genotype=ENAS", "unknown genotype 'ENAS'"),
    (lambda p: genotype_file(p, '{"kind": "cnn", "space": "nasp12", "normal": [['),
     "not valid JSON"),
    (lambda p: genotype_file(p, json.dumps({"kind": "rnn", "recurrent": [], "concat": []})),
     "'rnn' genotype"),
    (lambda p: genotype_file(p, json.dumps(WRONG_SPACE)), "not in the space"),
    (lambda p: f"--genotype={p / 'missing.json'}", "does not exist"),
])
def test_bad_genotypes_exit_2_with_one_line(tmp_path, make_arg, message):
    line = one_line_error(train("--dry_run", make_arg(tmp_path)), prefix="train.py")
    assert message in line


def test_auxiliary_head_needs_room(tmp_path):
    line = one_line_error(train("--dataset=digits", "--genotype=NASP",
                                f"--output_dir={tmp_path}"), code=1, prefix="train.py")
    assert "--noauxiliary" in line


COMPARE = """
import sys, numpy as np, tensorflow as tf, keras
sys.path.insert(0, {root!r})
import nasp_tf.cnn.model  # registers FinalNetwork for keras.saving
images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3)).astype(np.uint8)
loaded = tf.saved_model.load({saved!r})  # keep a reference: it owns the variables
served = loaded.serve(tf.constant(images)).numpy()
network = keras.saving.load_model({keras_file!r})
mean, std = np.array({mean!r}), np.array({std!r})
probs = tf.nn.softmax(network((images / 255.0 - mean) / std, training=False)).numpy()
print(float(np.abs(served - probs).max()), float(np.abs(served.sum(1) - 1).max()))
"""


def test_train_exports_a_servable_model_and_resumes(tmp_path):
    result = train(*TINY, f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test top-1:" in result.stdout
    for name in ("saved_model", "model.keras", "flags.txt", "checkpoints", "tensorboard"):
        assert (tmp_path / name).exists(), name
    # Reload in a fresh process; compare with the .keras model on raw images.
    from nasp_tf.data import images
    source = images.synthetic_source()
    script = COMPARE.format(root=ROOT, saved=str(tmp_path / "saved_model"),
                            keras_file=str(tmp_path / "model.keras"),
                            mean=list(source.mean), std=list(source.std))

    def compare():
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        diff, norm = map(float, out.stdout.split()[-2:])
        assert diff < 1e-5 and norm < 1e-5

    compare()
    # --export_only rebuilds the network from the checkpoint: every weight,
    # batch-norm statistics included, must come back.
    shutil.rmtree(tmp_path / "saved_model")
    result = train(*TINY, "--export_only", f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    compare()
    # Rerunning with more epochs resumes from the checkpoint.
    result = train(*TINY, "--epochs=2", f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from" in result.stderr and "epoch 2 of 2" in result.stderr
