"""Zero tracebacks for user errors: every binary, given a bad input, exits 2
with one line on stderr that says what is wrong and what to do, and changes
no file that existed before (checksums of the whole workspace before and
after). Most refusals come before TensorFlow loads; the few that need data
or a checkpoint read load it."""

import hashlib
import json
import os

import numpy as np
import pytest

from nasp_tf import genotype as genotype_lib

TINY_SEARCH = ["--dataset=synthetic", "--epochs=1", "--steps_per_epoch=2", "--batch_size=8",
               "--init_channels=4", "--layers=3", "--nodes=1", "--verbose=0"]
TINY_TRAIN = ["--dataset=synthetic", "--epochs=1", "--steps_per_epoch=2", "--batch_size=8",
              "--init_channels=4", "--layers=3", "--verbose=0", "--genotype=DARTS_V2"]

ROWS = "--dataset=npz:{w}/rows.npz"
OUT = "--output_dir={w}/out"
SPACES = """
import keras
import nasp_tf


def good():
    inputs = keras.Input((6,))
    h = nasp_tf.Choice({"a": keras.layers.Dense(4), "b": keras.layers.Dense(4, "relu")},
                       name="block")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(h))


def no_choice():
    inputs = keras.Input((6,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def mismatch():
    inputs = keras.Input((6,))
    h = nasp_tf.Choice([keras.layers.Dense(4), keras.layers.Dense(5)], name="widths")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(h))


def not_model():
    return "a model"
"""

# (id, binary, arguments, a phrase the line must contain). {w} is the
# workspace: `run/` is a run directory made by other flags, `plain/` a
# directory of the user's, `file.txt` a file; `bad.json`, `wrong_op.json`,
# `rnn.json` and `empty/` are bad inputs.
CASES = [
    ("seed-negative", "search.py", ["--seed=-1"], "--seed"),
    ("seed-too-large", "search.py", ["--seed=4294967296"], "--seed"),
    ("output-proc", "search.py", ["--output_dir=/proc/nasp"], "--output_dir"),
    ("output-sys", "train.py", ["--genotype=NASP", "--output_dir=/sys/nasp"], "--output_dir"),
    ("output-is-file", "search.py", ["--output_dir={w}/file.txt"], "--output_dir"),
    ("epochs-zero", "search.py", ["--epochs=0"], "--epochs"),
    ("batch-zero", "search.py", ["--batch_size=0"], "--batch_size"),
    ("unknown-dataset", "search.py", ["--dataset=mnist_typo"], "--dataset"),
    ("unknown-space", "search.py", ["--space=nasp99"], "--space"),
    ("unknown-searcher", "search.py", ["--searcher=enas"], "--searcher"),
    ("unknown-flag", "search.py", ["--learningrate=0.1"], "learningrate"),
    ("positional", "search.py", ["extra"], "unexpected arguments"),
    ("flagfile-missing", "search.py", ["--flagfile={w}/none.flags"], "none.flags"),
    ("space-on-text", "search.py", ["--dataset=ptb_sample", "--space=nasp12"], "--space"),
    ("penalize-on-text", "search.py", ["--dataset=ptb_sample", "--penalize=all"],
     "--penalize"),
    ("cpu-devices-alone", "search.py", ["--cpu_devices=2"], "--cpu_devices"),
    ("export-only-noexport", "train.py", ["--genotype=NASP", "--export_only", "--noexport"],
     "--export_only"),
    ("unknown-precision", "train.py", ["--genotype=NASP", "--mixed_precision=float16"],
     "--mixed_precision"),
    ("multi-worker-no-cluster", "search.py", ["--strategy=multi_worker"], "TF_CONFIG"),
    ("checkpoint-every-bad", "train.py", ["--genotype=NASP", "--checkpoint_every=5 min"],
     "--checkpoint_every"),
    ("launch-zero-workers", "launch.py", ["--workers=0", "--", "bin/search.py"], "--workers"),
    ("launch-no-command", "launch.py", ["--workers=2"], "after --"),
    ("lr-min-above-lr", "search.py", ["--learning_rate=0.01", "--learning_rate_min=0.1"],
     "--learning_rate_min"),
    ("negative-eta", "search.py", ["--eta=-1"], "--eta"),
    ("dropout-one", "search.py", ["--dataset=ptb_sample", "--dropout=1.0"], "--dropout"),
    ("verbose-three", "search.py", ["--verbose=3"], "--verbose"),
    ("text-searcher-images", "search.py", ["--dataset=ptb_sample", "--searcher=pa"],
     "--searcher"),
    ("other-flags-into-run", "search.py", [*TINY_SEARCH, "--output_dir={w}/run"],
     "other flags"),
    ("noresume-into-run", "search.py",
     ["--dataset=synthetic", "--epochs=1", "--noresume", "--output_dir={w}/run"],
     "--noresume"),
    ("not-a-run-dir", "search.py", [*TINY_SEARCH, "--output_dir={w}/plain"],
     "not a nasp_tf run directory"),
    ("text-corpus-missing", "search.py",
     ["--dataset=ptb", "--data_dir={w}/empty", "--output_dir={w}/out"], "ptb"),
    ("cifar-absent-no-download", "search.py",
     ["--dataset=cifar10", "--data_dir={w}/empty", "--nodownload", "--output_dir={w}/out"],
     "cifar10"),
    ("genotype-missing-flag", "train.py", [], "--genotype"),
    ("genotype-no-file", "train.py", ["--genotype={w}/nope.json"], "does not exist"),
    ("genotype-bad-json", "train.py", ["--genotype={w}/bad.json"], "not valid JSON"),
    ("genotype-wrong-op", "train.py", ["--genotype={w}/wrong_op.json"], "conv_7x7"),
    ("genotype-unknown-name", "train.py", ["--genotype=NASNET"], "NASNET"),
    ("genotype-rnn-for-images", "train.py", ["--genotype={w}/rnn.json"], "rnn"),
    ("genotype-cnn-for-text", "train.py", ["--genotype=NASP", "--dataset=ptb_sample"],
     "NASP"),
    ("train-seed-negative", "train.py", ["--genotype=NASP", "--seed=-3"], "--seed"),
    ("label-smoothing-two", "train.py", ["--genotype=NASP", "--label_smoothing=2"],
     "--label_smoothing"),
    ("manual-dir-missing", "train.py", ["--genotype=NASP", "--manual_dir={w}/nope"],
     "--manual_dir"),
    ("cutout-on-text", "train.py", ["--genotype=DARTS_V2", "--dataset=ptb_sample",
                                    "--cutout=4"], "--cutout"),
    ("train-other-flags-into-run", "train.py", [*TINY_TRAIN, "--output_dir={w}/run"],
     "other flags"),
    ("export-only-without-checkpoint", "train.py",
     [*TINY_TRAIN, "--export_only", "--output_dir={w}/out"], "--export_only"),
    ("auxiliary-on-digits", "train.py",
     ["--genotype=DARTS_V2", "--dataset=digits", "--output_dir={w}/out"], "--noauxiliary"),
    ("bench-preset", "bench.py", ["--preset=huge"], "--preset"),
    ("bench-searchers", "bench.py", ["--searchers=enas"], "--searchers"),
    ("bench-output-proc", "bench.py", ["--quality", "--output_dir=/proc/bench"],
     "--output_dir"),
    ("bench-json-proc", "bench.py", ["--json=/proc/bench.json"], "--json"),
    ("bench-positional", "bench.py", ["extra"], "unexpected arguments"),
    ("compare-nothing", "compare.py", [], "run director"),
    ("compare-missing", "compare.py", ["{w}/nope"], "nope"),
    ("compare-not-a-run", "compare.py", ["{w}/plain"], "plain"),
    ("epochs-fraction", "search.py", ["--epochs=1.5"], "whole number"),
    ("learning-rate-word", "search.py", ["--learning_rate=fast"], "takes a number"),
    ("flagfile-shipped-typo", "search.py", ["--flagfile=configs/quikstart.flags"],
     "quickstart.flags"),
    ("genotype-run-directory", "train.py", ["--genotype={w}/run"], "genotype.json"),
    ("genotype-lstm-for-images", "train.py", ["--genotype=LSTM"], "recurrent"),
    ("bench-pin-unknown", "bench.py", ["--pin=NASNET"], "--pin"),
    ("bench-pin-on-text", "bench.py", ["--task=text", "--pin=worst"], "--pin"),
    # A space of your own (--space=module:function; spaces.py is in the workspace).
    ("space-module-missing", "search.py", ["--space=nope_module:space", ROWS], "nope_module"),
    ("space-file-missing", "search.py", ["--space={w}/nope.py:space", ROWS], "does not exist"),
    ("space-not-a-function-name", "search.py", ["--space=spaces:9x", ROWS], "function name"),
    ("space-on-digits", "search.py", ["--space=spaces:good", "--dataset=digits"], "npz:FILE"),
    ("random-on-text", "search.py", ["--dataset=ptb_sample", "--searcher=random"],
     "--searcher=random does not search text datasets"),
    ("random-on-images", "search.py", ["--searcher=random"], "--searcher=random"),
    ("space-cutout", "search.py", ["--space=spaces:good", ROWS, "--cutout=4"], "--cutout"),
    ("space-import-fails", "search.py", ["--space=broken:space", ROWS, OUT],
     "importing broken failed: ZeroDivisionError"),
    ("space-no-such-function", "search.py", ["--space=spaces:nothing", ROWS, OUT],
     "no function 'nothing'"),
    ("space-without-choice", "search.py", ["--space=spaces:no_choice", ROWS, OUT],
     "without any nasp_tf.Choice"),
    ("space-shapes-differ", "search.py", ["--space=spaces:mismatch", ROWS, OUT],
     "differ in shape"),
    ("space-returns-no-model", "search.py", ["--space=spaces:not_model", ROWS, OUT],
     "must return a keras.Model"),
    ("space-rows-wrong-shape", "search.py",
     ["--space=spaces:good", "--dataset=npz:{w}/wide.npz", OUT], "rows of shape"),
    ("train-space-no-choices", "train.py", ["--space=spaces:good", ROWS], "--choices"),
    ("train-space-and-genotype", "train.py",
     ["--space=spaces:good", "--choices={w}/choices.json", "--genotype=NASP", ROWS], "not both"),
    ("train-space-builtin", "train.py", ["--space=darts7", "--choices={w}/choices.json"],
     "--genotype"),
    ("train-choices-not-json", "train.py",
     ["--space=spaces:good", "--choices={w}/bad.json", ROWS, OUT], "not a readable JSON"),
    ("train-choices-other-space", "train.py",
     ["--space=spaces:good", "--choices={w}/other_choices.json", ROWS, OUT], "does not fit"),
    # The user's own images, refused when the flags are parsed.
    ("tfds-unknown-name", "search.py", ["--dataset=tfds:mnistt", OUT], "did you mean mnist"),
    ("folder-empty", "search.py", ["--dataset=folder:{w}/empty", OUT], "no class folders"),
    ("npz-empty", "search.py", ["--dataset=npz:{w}/empty.npz", OUT], "is empty"),
    ("npz-keys-missing", "train.py",
     ["--genotype=NASP", "--dataset=npz:{w}/labels_only.npz", OUT], "missing key(s) x_train"),
    ("image-size-builtin", "search.py", ["--image_size=16", OUT], "--image_size resizes"),
    ("image-size-too-small", "train.py",
     ["--genotype=NASP", "--dataset=npz:{w}/rows.npz", "--image_size=4", OUT], "at least 8"),
    ("image-size-three", "search.py",
     ["--dataset=npz:{w}/rows.npz", "--image_size=8,8,3", OUT], "H or H,W"),
    ("tflite-noexport", "train.py", ["--genotype=NASP", "--export_tflite", "--noexport", OUT],
     "--export_tflite"),
    ("tflite-on-text", "train.py",
     ["--genotype=DARTS_V2", "--dataset=ptb_sample", "--export_tflite", OUT],
     "--export_tflite"),
    ("max-params-below-minimum", "search.py", [*TINY_SEARCH, "--max_params=100", OUT],
     "below the smallest final network"),
    ("max-params-on-text", "search.py", ["--dataset=ptb_sample", "--max_params=10000", OUT],
     "--max_params"),
    ("max-params-darts", "search.py", ["--searcher=darts1", "--max_params=10000", OUT],
     "--max_params is not read by --searcher=darts1"),
    ("train-flagfile-alone", "search.py",
     ["--train_flagfile=configs/quickstart_train.flags", OUT], "--search_seeds retrains"),
    ("train-flagfile-missing", "search.py",
     ["--max_params=10000", "--train_flagfile={w}/nope.flags", OUT], "--train_flagfile"),
    ("bench-latency-unknown", "bench.py", ["--latency=NASNET"], "--latency"),
    ("bench-latency-with-quality", "bench.py", ["--latency=NASP", "--quality"], "--latency"),
]


def _snapshot(workspace):
    """{relative path: sha256} of every file under `workspace`, and the set of
    directories."""
    files, dirs = {}, set()
    for top, subdirs, names in os.walk(workspace):
        dirs.update(os.path.relpath(os.path.join(top, d), workspace) for d in subdirs)
        for name in names:
            path = os.path.join(top, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, workspace)] = hashlib.sha256(f.read()).hexdigest()
    return files, dirs


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    w = tmp_path_factory.mktemp("bad_inputs")
    (w / "run").mkdir()
    (w / "run" / "flags.txt").write_text("--dataset=synthetic\n--epochs=5\n--seed=9\n")
    (w / "run" / "genotype.json").write_text("{}\n")
    (w / "plain").mkdir()
    (w / "plain" / "notes.txt").write_text("the user's own files\n")
    (w / "empty").mkdir()
    (w / "file.txt").write_text("a file\n")
    (w / "bad.json").write_text("{not json")
    wrong = genotype_lib.PUBLISHED["DARTS_V2"].to_json()
    wrong["normal"][0][0] = "conv_7x7"
    (w / "wrong_op.json").write_text(json.dumps(wrong))
    (w / "rnn.json").write_text(json.dumps(genotype_lib.RNN_PUBLISHED["DARTS_V2"].to_json()))
    (w / "spaces.py").write_text(SPACES)
    (w / "broken.py").write_text("RATE = 1 / 0\n")
    rng = np.random.RandomState(0)
    np.savez(w / "rows.npz", x_train=rng.rand(40, 6), y_train=rng.randint(0, 2, 40))
    np.savez(w / "wide.npz", x_train=rng.rand(40, 7), y_train=rng.randint(0, 2, 40))
    (w / "empty.npz").write_bytes(b"")
    np.savez(w / "labels_only.npz", y_train=rng.randint(0, 2, 40))
    (w / "choices.json").write_text('{"block": "a"}\n')
    (w / "other_choices.json").write_text('{"depth": [0]}\n')
    return w


def test_the_table_is_large_and_covers_every_binary():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)
    assert {c[1] for c in CASES} == {"search.py", "train.py", "bench.py", "compare.py",
                                     "launch.py"}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_line_exit_2_and_changes_nothing(case, workspace, root, run_script):
    _, program, args, phrase = case
    args = [a.replace("{w}", str(workspace)) for a in args]
    before = _snapshot(workspace)
    # From the workspace, so that a default --output_dir would land there.
    result = run_script(os.path.join(root, "bin", program), *args, cwd=workspace,
                        check=False, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(f"{program}: error: ") and phrase in lines[0], lines[0]
    assert _snapshot(workspace) == before
