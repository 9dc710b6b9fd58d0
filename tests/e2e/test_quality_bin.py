"""bin/bench.py --quality --quick: the table, the CSV and the plot (not the numbers)."""

import csv
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from nasp_tf import genotype as genotype_lib
from nasp_tf import quality

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_random_genotypes_are_valid_and_cover_the_space():
    rng = np.random.default_rng(0)
    cnn = [genotype_lib.cnn_genotype_from_json(quality.random_cnn_genotype(rng))
           for _ in range(40)]
    ops = {op for g in cnn for op, _ in g.normal + g.reduce}
    assert len(ops) == 7  # every darts7 op appears

    for g in cnn:
        for node in range(4):  # two distinct inputs per node
            a, b = g.normal[2 * node][1], g.normal[2 * node + 1][1]
            assert a != b and max(a, b) <= node + 1
    rnn = [genotype_lib.rnn_genotype_from_json(quality.random_rnn_genotype(rng))
           for _ in range(40)]
    assert {act for g in rnn for act, _ in g.recurrent} == {"tanh", "relu", "sigmoid",
                                                            "identity"}
    assert any(g.recurrent[7][1] == 7 for g in rnn) and any(g.recurrent[7][1] == 0 for g in rnn)


def test_quick_quality_benchmark_writes_the_table_csv_and_plot(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bin", "bench.py"), "--quality", "--quick",
         "--quality_jobs=1", f"--output_dir={tmp_path}", f"--json={tmp_path / 'q.json'}"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "quality.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(quality.COLUMNS)
    groups = {(r["task"], r["group"]) for r in rows}
    # --quick: the searched cell and one random cell per task (retraining a
    # published cell by name is the same path as a random cell's JSON).
    assert groups == {("images", "nasp"), ("images", "random"), ("text", "nasp"),
                      ("text", "random")}
    for r in rows:
        assert float(r["metric"]) > 0 and int(r["parameters"]) > 0
        assert (float(r["search_seconds"]) > 0) == (r["group"] == "nasp")
    searched = [r for r in rows if r["group"] == "nasp" and r["task"] == "images"][0]
    assert json.loads(searched["genotype"])["kind"] == "cnn"
    assert (tmp_path / "quality.png").read_bytes()[:4] == b"\x89PNG"
    # Only results.json is read from a retraining: nothing is exported.
    assert len(list(tmp_path.rglob("results.json"))) == 4
    assert not list(tmp_path.rglob("saved_model")) and not list(tmp_path.rglob("model.keras"))
    for task in ("images", "text"):
        assert any(line.startswith(f"{task}: ") for line in result.stdout.splitlines())
    assert result.stdout.count("| random | 1 |") == 2
    report = json.loads((tmp_path / "q.json").read_text())
    assert report["kind"] == "quality" and len(report["rows"]) == len(rows)
    assert report["machine"]["cpu_model"]
    assert report["jobs"] == 1 and report["wall_seconds"] > 0


def test_jobs_run_costliest_first_each_on_its_own_core_rows_in_plan_order():
    import threading

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs 2 CPU cores")
    started, running, most = [], [], [0]
    lock = threading.Lock()

    def job(name, seconds):
        def run(core):
            with lock:
                started.append(name)
                running.append(core)
                most[0] = max(most[0], len(running))
                assert running.count(core) == 1  # no core serves two jobs at once
            time.sleep(seconds)
            with lock:
                running.remove(core)
            return {"task": "images", "group": name, "seed": 0, "metric": 0.5,
                    "parameters": 1, "search_seconds": 0.0, "core": core}
        return run

    jobs = [(1, job("short", 0.05)), (5, job("long", 0.3)), (3, job("middle", 0.1)),
            (1, job("short2", 0.05))]
    lines, saved = [], []
    rows = quality.run_jobs(jobs, 2, lines.append, done=lambda r: saved.append(len(r)))
    assert [r["group"] for r in rows] == ["short", "long", "middle", "short2"]
    assert set(started[:2]) == {"long", "middle"} and most[0] == 2
    assert {r["core"] for r in rows} == set(cores[:2]) and saved[-1] == 4
    assert len(lines) == 4
    # One at a time: no pinning, all cores.
    rows = quality.run_jobs(jobs, 1, lines.append)
    assert {r["core"] for r in rows} == {None}
