"""A search space of your own, as docs/custom-spaces.md shows it: the page's
script runs as written and its exported model loads in a process that never
imports nasp_tf, giving the searcher's own predictions; the three example
spaces run at a tiny size; a mirrored search matches one device."""

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Appended to the page's script: what the searcher itself predicts (its
# Choice layers running the discrete architecture), for the fresh process.
CHECK = """
np.save("x.npy", x[450:])
np.save("expected.npy", searcher.predict(x[450:], verbose=0))
"""

LOAD = """
import sys
import numpy as np
import keras
model = keras.saving.load_model("searched.keras")
assert "nasp_tf" not in sys.modules, "loading the export imported nasp_tf"
names = {type(layer).__name__ for layer in model._flatten_layers(include_self=False)}
assert not names & {"Choice", "InputChoice"}, names
got = model.predict(np.load("x.npy"), verbose=0)
print(float(np.abs(got - np.load("expected.npy")).max()))
"""


def _page_script():
    with open(os.path.join(ROOT, "docs", "custom-spaces.md"), encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_the_page_script_searches_exports_and_its_model_loads_without_nasp_tf(tmp_path):
    script = _page_script()
    assert len(script.strip().splitlines()) <= 40
    (tmp_path / "space.py").write_text(script + CHECK)
    env = {**os.environ, "PYTHONPATH": ROOT}
    ran = subprocess.run([sys.executable, "space.py"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-3000:]
    printed = ran.stdout.strip().splitlines()[-1]
    choices = json.loads((tmp_path / "choices.json").read_text())
    assert printed == str(choices)
    assert set(choices) == {"block1", "block2", "depth"}
    assert choices["block1"] in ("relu16", "tanh64") and choices["depth"] in ([0], [1])
    loaded = subprocess.run([sys.executable, "-c", LOAD], cwd=tmp_path,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                            capture_output=True, text=True, timeout=600)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert float(loaded.stdout.strip().splitlines()[-1]) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("space", ["tabular", "digits", "sequence"])
def test_each_example_space_searches_retrains_and_writes_its_choices(tmp_path, space):
    out = tmp_path / "run"
    ran = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "custom_spaces.py"),
                          f"--space={space}", "--searcher=nasp", "--epochs=2",
                          "--retrain_epochs=1", f"--output_dir={out}"], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "PYTHONPATH": ROOT})
    assert ran.returncode == 0, ran.stderr[-3000:]
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    assert result["space"] == space
    assert result["choices"] == json.loads((out / "choices.json").read_text())
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result["parameters"] > 0
    assert (out / "retrained.keras").exists()


@pytest.mark.slow
@pytest.mark.parametrize("searcher,optimizers", [("nasp", "keras"), ("nasp", "nasp_tf"),
                                                 ("darts1", "keras")])
def test_a_mirrored_search_of_a_space_matches_one_device(tmp_path, run_script, searcher,
                                                        optimizers):
    """Two replicas, each half of every batch: the same A and weights as one
    device, to float32 rounding, with Keras's optimizers (which sum the
    replicas' gradients themselves) and with nasp_tf's (which take them
    summed), the weight gradient clipped by its global norm."""
    import numpy as np

    worker = os.path.join(ROOT, "tests", "e2e", "space_mirrored_worker.py")
    results = {}
    for mode in ("single", "mirrored"):
        path = str(tmp_path / f"{mode}.npz")
        run_script(worker, mode, searcher, optimizers, path)
        results[mode] = np.load(path)
    single, mirrored = results["single"], results["mirrored"]
    assert set(single.files) == set(mirrored.files)
    assert any(k.endswith("arch_c") for k in single.files)
    for key in single.files:
        np.testing.assert_allclose(mirrored[key], single[key], rtol=0, atol=1e-6, err_msg=key)


# The command line: an example space searched and retrained by the binaries.
SPACE = "examples/custom_spaces.py:tabular_space"

SCORE = """
import json, sys
import numpy as np
import keras
model = keras.saving.load_model(sys.argv[1])
assert "nasp_tf" not in sys.modules
data = np.load(sys.argv[2])
logits = model.predict(data["x_test"].astype(np.float32), verbose=0)
print(json.dumps({"accuracy": float(np.mean(np.argmax(logits, -1) == data["y_test"])),
                  "parameters": int(sum(np.prod(w.shape) for w in model.weights))}))
"""


def _rows(path, test=True, poison=None):
    """Breast-cancer rows as an npz (standardised); `poison` rows of x set to 1e6
    (NaN would not do: a ReLU maps it to 0, and the step it spoils is skipped)."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    arrays = {"x_train": x[:450], "y_train": y[:450]}
    if test:
        arrays.update(x_test=x[450:], y_test=y[450:])
    for key, rows in (poison or {}).items():
        arrays[key] = arrays[key].copy()
        arrays[key][rows] = 1e6
    np.savez(path, **arrays)
    return path


@pytest.mark.slow
def test_the_command_line_searches_and_retrains_an_example_space(tmp_path, run_bin):
    data = _rows(tmp_path / "rows.npz")
    search = tmp_path / "search"
    # --dry_run first: the estimate, and nothing written where the search will run.
    ran = run_bin("search.py", f"--space={SPACE}", f"--dataset=npz:{data}", "--epochs=2",
                  "--batch_size=32", f"--output_dir={search}", "--dry_run",
                  f"--json={tmp_path / 'estimate.json'}")
    estimate = json.loads((tmp_path / "estimate.json").read_text())
    import numpy as np

    rows = len(np.load(data)["x_train"])
    assert estimate["steps_per_epoch"] == round(rows * 0.5) // 32
    assert estimate["epochs"] == 2 and estimate["seconds_per_step"] > 0
    assert estimate["parameters"] > 0 and estimate["peak_rss_gb"] > 0
    assert "seconds for the whole search" in ran.stdout and not search.exists()
    run_bin("search.py", f"--space={SPACE}", f"--dataset=npz:{data}", "--epochs=2",
            "--batch_size=32", f"--output_dir={search}", "--deterministic", "--verbose=0")
    choices = json.loads((search / "choices.json").read_text())
    assert set(choices) == {"block1", "block2", "depth"}
    assert json.loads((search / "choices" / "epoch_002.json").read_text()) == choices
    assert set(json.loads((search / "initial_choices.json").read_text())) == set(choices)
    train = tmp_path / "train"
    ran = run_bin("train.py", f"--space={SPACE}", f"--choices={search / 'choices.json'}",
                  f"--dataset=npz:{data}", "--epochs=3", "--batch_size=32",
                  f"--output_dir={train}", "--verbose=0")
    results = json.loads((train / "results.json").read_text())
    assert results["choices"] == choices and results["test_examples"] == 119
    assert f"test accuracy: {results['test_accuracy']:.4f}" in ran.stdout
    # The exported model, in a process without nasp_tf, scores the test rows as reported.
    scored = subprocess.run([sys.executable, "-c", SCORE, str(train / "model.keras"), str(data)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert scored.returncode == 0, scored.stderr[-3000:]
    score = json.loads(scored.stdout.strip().splitlines()[-1])
    assert abs(score["accuracy"] - results["test_accuracy"]) < 1e-6
    assert score["parameters"] == results["parameters"]


@pytest.mark.slow
def test_a_search_of_a_space_never_reads_the_test_rows(tmp_path, run_bin):
    """Test rows of 1e6 (the file's own, and the 10 % held out of a file without
    them: a fixed permutation of seed 0, its last rows) leave every loss of the
    search as small as on clean data: it never read them."""
    import numpy as np

    held = np.random.RandomState(0).permutation(450)[-45:]
    for name, arrays in (("own", dict(poison={"x_test": slice(None)})),
                         ("held", dict(test=False, poison={"x_train": held}))):
        data = _rows(tmp_path / f"{name}.npz", **arrays)
        out = tmp_path / name
        run_bin("search.py", f"--space={SPACE}", f"--dataset=npz:{data}", "--epochs=2",
                "--batch_size=32", f"--output_dir={out}", "--verbose=0")
        history = json.loads((out / "history.json").read_text())
        assert len(history) == 2
        losses = [v for epoch in history for k, v in epoch.items() if "loss" in k]
        assert len(losses) == 8 and max(losses) < 5, history
