"""The Python API, as the README shows it: examples/search_and_train.py runs
(search, genotype, retraining on arrays, export), and `import nasp_tf` stays light."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_import_is_light_and_names_the_api():
    code = ("import sys, nasp_tf; print(nasp_tf.__version__, 'tensorflow' in sys.modules, "
            "sorted(dir(nasp_tf))[:3])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    version, loaded, _ = out.stdout.split(" ", 2)
    assert loaded == "False", out.stdout + out.stderr
    # One version: the package's, which setup.py reads and CITATION.cff repeats.
    citation = open(os.path.join(ROOT, "CITATION.cff"), encoding="utf-8").read()
    assert f"\nversion: {version}\n" in citation
    metadata = subprocess.run([sys.executable, os.path.join(ROOT, "setup.py"), "--version"],
                              capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert metadata.stdout.strip().splitlines()[-1] == version, metadata.stderr
    assert "build_searcher" in out.stdout or "CNNGenotype" in out.stdout


@pytest.mark.slow
def test_example_searches_retrains_and_exports(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = ROOT
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "search_and_train.py"),
                          str(tmp_path)], capture_output=True, text=True, cwd=str(tmp_path),
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    genotype = json.loads((tmp_path / "genotype.json").read_text())
    assert genotype["kind"] == "cnn" and len(genotype["normal"]) == 2  # 1 node x 2 edges
    top1 = float(out.stdout.split("test top-1:")[1].split()[0])
    assert 0.0 <= top1 <= 1.0
    sums = json.loads(out.stdout.split("served probabilities sum to")[1].strip())
    np.testing.assert_allclose(sums, 1.0, atol=1e-3)
