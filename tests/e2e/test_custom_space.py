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
def test_a_mirrored_search_of_a_space_matches_one_device(tmp_path, searcher, optimizers):
    """Two replicas, each half of every batch: the same A and weights as one
    device, to float32 rounding, with Keras's optimizers (which sum the
    replicas' gradients themselves) and with nasp_tf's (which take them
    summed), the weight gradient clipped by its global norm."""
    import numpy as np

    worker = os.path.join(ROOT, "tests", "e2e", "space_mirrored_worker.py")
    results = {}
    for mode in ("single", "mirrored"):
        path = str(tmp_path / f"{mode}.npz")
        ran = subprocess.run([sys.executable, worker, mode, searcher, optimizers, path],
                             capture_output=True, text=True, timeout=600,
                             env={**os.environ, "PYTHONPATH": ROOT})
        assert ran.returncode == 0, ran.stderr[-3000:]
        results[mode] = np.load(path)
    single, mirrored = results["single"], results["mirrored"]
    assert set(single.files) == set(mirrored.files)
    assert any(k.endswith("arch_c") for k in single.files)
    for key in single.files:
        np.testing.assert_allclose(mirrored[key], single[key], rtol=0, atol=1e-6, err_msg=key)
