"""bin/train.py on images: parameter counts, genotype errors, a tiny retraining."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from nasp_tf.tools import compare
from nasp_tf import genotype as genotype_lib

TINY = ["--dataset=synthetic", "--epochs=1", "--steps_per_epoch=2", "--batch_size=8",
        "--init_channels=4", "--layers=3", "--max_examples=64", "--verbose=0",
        "--genotype=DARTS_V2", "--cutout=8"]
# NASP's cell claimed for the DARTS space: conv ops it does not have.
WRONG_SPACE = dict(genotype_lib.PUBLISHED["NASP"].to_json(), space="darts7")


# The counts of every genotype and stem are unit tests (tests/unit/test_model.py):
# here each shipped image config through the binary.
@pytest.mark.parametrize("config,genotype,count", [
    ("cifar10_train", "NASP", 7363486), ("imagenet_train", "DARTS_V2", 4718752)])
def test_dry_run_prints_the_parameter_count(run_bin, config, genotype, count):
    result = run_bin("train.py", f"--flagfile=configs/{config}.flags", f"--genotype={genotype}",
                     "--dry_run")
    assert f"parameters: {count}" in result.stdout.splitlines()


def test_shipped_flagfile_from_another_directory(tmp_path, root):
    # configs/NAME resolves to the shipped config when the current directory has none.
    result = subprocess.run(
        [sys.executable, os.path.join(root, "bin", "train.py"),
         "--flagfile=configs/quickstart_train.flags", "--genotype=NASP", "--dry_run"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # The flagfile's network (C=16, 8 cells, digits), not the defaults (C=36, 20 cells).
    assert "parameters: 507610" in result.stdout.splitlines()
    assert not os.listdir(tmp_path)


def scalars(directory, tag):
    """{step: value} of a scalar that TensorBoard shows under `directory`."""
    from tensorboard.backend.event_processing import event_accumulator

    import tensorflow as tf

    acc = event_accumulator.EventAccumulator(str(directory), size_guidance={"tensors": 0})
    acc.Reload()
    if tag not in acc.Tags()["tensors"]:
        return {}
    return {e.step: float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)}


def genotype_file(tmp_path, text):
    path = tmp_path / "g.json"
    path.write_text(text)
    return f"--genotype={path}"


@pytest.mark.parametrize("make_arg,message", [
    (lambda p: "--genotype=ENAS", "ENAS is a recurrent (text) cell"),
    (lambda p: "--genotype=DARTS_V3", "unknown genotype 'DARTS_V3'"),
    (lambda p: genotype_file(p, '{"kind": "cnn", "space": "nasp12", "normal": [['),
     "not valid JSON"),
    (lambda p: genotype_file(p, json.dumps({"kind": "rnn", "recurrent": [], "concat": []})),
     "'rnn' genotype"),
    (lambda p: genotype_file(p, json.dumps(WRONG_SPACE)), "not in the space"),
    (lambda p: f"--genotype={p / 'missing.json'}", "does not exist"),
])
def test_bad_genotypes_exit_2_with_one_line(tmp_path, run_bin, one_line_error, make_arg,
                                            message):
    result = run_bin("train.py", "--dry_run", make_arg(tmp_path), check=False)
    assert message in one_line_error(result, prefix="train.py")


def test_auxiliary_head_needs_room(tmp_path, run_bin, one_line_error):
    result = run_bin("train.py", "--dataset=digits", "--genotype=NASP",
                     f"--output_dir={tmp_path}", check=False)
    assert "--noauxiliary" in one_line_error(result, code=2, prefix="train.py")


@pytest.mark.slow
def test_train_exports_a_servable_model_re_exports_it_and_refuses_other_flags(
        tmp_path, root, run_bin, run_script, one_line_error):
    result = run_bin("train.py", *TINY, f"--output_dir={tmp_path}")
    assert "test top-1:" in result.stdout
    for name in ("saved_model", "model.keras", "flags.txt", "checkpoints", "tensorboard"):
        assert (tmp_path / name).exists(), name
    # One epoch trains at --learning_rate, and the line and TensorBoard say so.
    assert "epoch 1/1 lr=0.02500" in result.stderr
    assert scalars(tmp_path / "tensorboard" / "train", "epoch_learning_rate") == \
        pytest.approx({0: 0.025})
    assert scalars(tmp_path / "tensorboard" / "schedule", "drop_path") == {0: 0.0}
    assert scalars(tmp_path / "tensorboard" / "schedule", "learning_rate") == {}
    # The run keeps its genotype and compares with others.
    assert genotype_lib.load_cnn_genotype(str(tmp_path / "genotype.json")) == \
        genotype_lib.PUBLISHED["DARTS_V2"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert compare.table([str(tmp_path)])[1].split() == [
        str(tmp_path), "DARTS_V2", f"{results['parameters']:,d}", f"{results['test_top1']:.4f}"]
    # The trained network as the run left it, before --export_only rewrites both.
    shutil.copytree(tmp_path / "saved_model", tmp_path / "trained_saved_model")
    shutil.copy(tmp_path / "model.keras", tmp_path / "trained.keras")
    # --export_only rebuilds the network from the checkpoint: every weight,
    # batch-norm statistics included, must come back.
    shutil.rmtree(tmp_path / "saved_model")
    run_bin("train.py", *TINY, "--export_only", f"--output_dir={tmp_path}")
    # One fresh process serves raw images through both SavedModels and
    # compares them with the trained .keras network.
    served = run_script(os.path.join(root, "tests", "e2e", "saved_classifier_worker.py"),
                        tmp_path / "trained.keras", tmp_path / "trained_saved_model",
                        tmp_path / "saved_model")
    for model in json.loads(served.stdout.strip().splitlines()[-1]):
        assert model["diff"] < 1e-5 and model["norm"] < 1e-5
    # Rerunning with other flags is refused before anything is written.
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    result = run_bin("train.py", *TINY, "--epochs=2", f"--output_dir={tmp_path}", check=False)
    line = one_line_error(result, prefix="train.py")
    assert "--epochs=1 there, --epochs=2 here" in line and "--overwrite" in line
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_a_float16_retraining_with_the_auxiliary_head_trains_and_exports(tmp_path, run_bin):
    # Loss scaling on the summed main and auxiliary losses; the logits, the
    # losses and the exported probabilities stay float32.
    result = run_bin("train.py", *TINY, "--mixed_precision=mixed_float16",
                     f"--output_dir={tmp_path}")
    assert "test top-1:" in result.stdout
    with open(tmp_path / "results.json", encoding="utf-8") as f:
        results = json.load(f)
    assert 0.0 < results["test_loss"] < 10.0 and 0.0 <= results["test_top1"] <= 1.0
    assert (tmp_path / "saved_model").exists() and (tmp_path / "model.keras").exists()


def test_saved_predictions_are_the_test_fold_in_order_and_give_the_reported_accuracy(
        tmp_path, run_bin, one_line_error):
    from sklearn.datasets import load_digits

    run_bin("train.py", "--dataset=digits_fold1", "--genotype=DARTS_V2", "--epochs=1",
            "--steps_per_epoch=3", "--batch_size=16", "--init_channels=4", "--layers=3",
            "--noauxiliary", "--verbose=0", "--noexport", "--save_predictions",
            f"--output_dir={tmp_path}")
    saved = json.loads((tmp_path / "test_predictions.json").read_text())
    # Fold 1 of the digits protocol: the last 500 images of the fixed permutation.
    order = np.random.RandomState(0).permutation(1797)
    assert saved["labels"] == [int(v) for v in load_digits().target[order][1297:]]
    results = json.loads((tmp_path / "results.json").read_text())
    accuracy = np.mean(np.array(saved["labels"]) == np.array(saved["predicted"]))
    assert accuracy == pytest.approx(results["test_top1"], abs=1e-6)
    assert len(set(saved["predicted"])) > 1
    # Text has no per-example classes: refused in one line.
    result = run_bin("train.py", "--dataset=synthetic_text", "--genotype=DARTS_V2",
                     "--save_predictions", f"--output_dir={tmp_path / 'text'}", check=False)
    assert "--save_predictions does not apply to text datasets" in one_line_error(
        result, prefix="train.py")


@pytest.mark.slow
def test_own_images_resized_and_exported_for_tensorflow_lite(tmp_path, run_bin):
    # Digits as the user's own 8x8 images, retrained at 12x12 (--image_size),
    # exported as SavedModel and TensorFlow Lite; the .tflite files are read
    # here by the TensorFlow Lite interpreter and compared with the SavedModel.
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.round(digits.images * 255 / 16).astype(np.uint8)
    np.savez(tmp_path / "digits.npz", x_train=x[:300], y_train=digits.target[:300],
             x_test=x[300:340], y_test=digits.target[300:340])
    out = tmp_path / "run"
    result = run_bin("train.py", f"--dataset=npz:{tmp_path / 'digits.npz'}", "--image_size=12",
                     "--genotype=DARTS_V2", "--epochs=1", "--steps_per_epoch=4",
                     "--batch_size=16", "--init_channels=4", "--layers=3", "--noauxiliary",
                     "--drop_path_prob=0", "--verbose=0", "--export_tflite",
                     f"--output_dir={out}")
    assert "tflite: float32" in result.stdout
    results = json.loads((out / "results.json").read_text())
    entries = results["tflite"]
    assert sorted(entries) == ["float32", "int8_dynamic_range"]
    assert entries["float32"]["images"] == 40  # every test image (fewer than the cap)
    assert entries["float32"]["max_abs_difference"] < 1e-5
    assert entries["float32"]["top1_agreement"] == 1.0
    assert entries["int8_dynamic_range"]["top1_agreement"] >= 0.9
    # (C=4: no weight is large enough for the converter to quantise.)
    assert entries["int8_dynamic_range"]["bytes"] <= entries["float32"]["bytes"]
    served = tf.saved_model.load(str(out / "saved_model"))
    assert served.signatures["serve"].structured_input_signature[1]["images"].shape[1:] == \
        (12, 12, 3)
    images = np.random.default_rng(0).random((5, 12, 12, 3), dtype=np.float32)
    want = served.serve_float(images)["probabilities"].numpy()
    interpreter = tf.lite.Interpreter(model_path=str(out / "model.tflite"))
    interpreter.allocate_tensors()
    (given,), (taken,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert list(given["shape"]) == [1, 12, 12, 3] and given["dtype"] == np.float32
    for image, expected in zip(images, want):
        interpreter.set_tensor(given["index"], image[None])
        interpreter.invoke()
        np.testing.assert_allclose(interpreter.get_tensor(taken["index"])[0], expected,
                                   atol=1e-5)
