import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from nasp_tf import benchmark

BENCH = os.path.join(ROOT, "bin", "bench.py")


def bench(*args):
    return subprocess.run([sys.executable, BENCH, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, check=False)


def test_bad_searcher_is_one_line():
    result = bench("--searchers=nasp,darts9")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "--searchers" in lines[0]


def test_table_ratios_are_relative_to_nasp_of_the_same_space():
    rows = [dict(searcher=s, space=sp, arch_s=a, weight_s=w, total_s=a + w, first_step_s=1.0,
                 peak_rss_gb=m)
            for s, sp, a, w, m in [("nasp", "darts7", 0.3, 0.1, 1.0),
                                   ("darts2", "darts7", 3.0, 1.0, 2.0),
                                   ("nasp", "nasp12", 1.0, 1.0, 1.0),
                                   ("nasp_xla", "nasp12", 0.5, 0.5, 4.0)]]
    table = benchmark.step_table(rows).splitlines()
    assert table[3].startswith("| DARTS-2nd | darts7 |") and "| 10.00x | 2.00x |" in table[3]
    assert table[5].startswith("| NASP (XLA) | nasp12 |") and "| 0.50x | 4.00x |" in table[5]


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    result = bench("--preset=tiny", "--searchers=nasp,darts2", "--warmup=1", f"--json={path}")
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(path.read_text()), result.stdout


def test_step_benchmark_writes_every_number(tiny_bench):
    report, stdout = tiny_bench
    assert [r["searcher"] for r in report["results"]] == ["nasp", "darts2"]
    for r in report["results"]:
        assert len(r["arch_s_all"]) == len(r["weight_s_all"]) == 10
        assert r["total_s"] > 0 and r["arch_s"] > 0 and r["weight_s"] > 0
        assert r["first_step_s"] > r["total_s"]  # the first step compiles
        assert 0.2 < r["peak_rss_gb"] < 20
        assert all(x == x for x in r["final_losses"])  # not NaN
    nasp, darts2 = report["results"]
    assert darts2["parameters"] == nasp["parameters"]  # DARTS's extra `none` has no weights
    assert "| NASP | darts7 |" in stdout and "| DARTS-2nd | darts7 |" in stdout
