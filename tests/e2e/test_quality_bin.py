"""nasp-bench --quality --quick, run from an installed package in an empty
directory: the tables, the CSV and the plot (not the numbers), the reuse of
finished runs, and the job scheduler."""

import csv
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from nasp_tf import genotype as genotype_lib
from nasp_tf.bench import jobs, quality

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_random_genotypes_are_valid_distinct_and_cover_the_space():
    cnn = [genotype_lib.cnn_genotype_from_json(g)
           for g in quality.random_genotypes("images", 40, seed=0)]
    assert len({json.dumps(g.to_json(), sort_keys=True) for g in cnn}) == 40
    assert len({op for g in cnn for op, _ in g.normal + g.reduce}) == 7  # every darts7 op
    for g in cnn:
        for node in range(4):  # two distinct inputs per node
            a, b = g.normal[2 * node][1], g.normal[2 * node + 1][1]
            assert a != b and max(a, b) <= node + 1
    rnn = [genotype_lib.rnn_genotype_from_json(g)
           for g in quality.random_genotypes("text", 40, seed=0)]
    assert {act for g in rnn for act, _ in g.recurrent} == {"tanh", "relu", "sigmoid",
                                                            "identity"}
    assert any(g.recurrent[7][1] == 7 for g in rnn) and any(g.recurrent[7][1] == 0 for g in rnn)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """nasp_tf installed as a user installs it (a built package, not an
    editable checkout) and an empty directory outside the checkout to run it
    in: the benchmark's child runs need nothing from the repository."""
    site = tmp_path_factory.mktemp("site")
    work = tmp_path_factory.mktemp("empty")
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                              "--no-build-isolation", f"--target={site}", ROOT],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(site)
    where = subprocess.run([sys.executable, "-c", "import nasp_tf; print(nasp_tf.__file__)"],
                           capture_output=True, text=True, cwd=work, env=env, timeout=60)
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr
    bench = [sys.executable, str(site / "bin" / "nasp-bench")]
    assert subprocess.run([*bench, "--help"], capture_output=True, text=True, cwd=work,
                          env=env, timeout=120).returncode == 0
    return bench, env, work


@pytest.mark.slow
def test_quick_quality_benchmark_writes_the_tables_csv_and_plot_and_reuses_its_runs(
        tmp_path, installed):
    bench, env, work = installed

    def run_quick(out, *extra):
        return subprocess.run([*bench, "--quality", "--quick", "--quality_jobs=1",
                               f"--output_dir={out}", *extra],
                              capture_output=True, text=True, cwd=work, env=env, timeout=900)

    result = run_quick(tmp_path, f"--json={tmp_path / 'q.json'}")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "quality.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(quality.COLUMNS)
    groups = {(r["task"], r["group"]) for r in rows}
    # --quick: one NASP search, the cell it started from and two random cells per task.
    assert groups == {(t, g) for t in ("images", "text") for g in ("nasp", "initial", "random")}
    for r in rows:
        assert float(r["metric"]) > 0 and int(r["parameters"]) > 0
        assert r["version"] and r["commit"]
        searched = r["group"] == "nasp"
        assert (r["search_seconds"] != "") == searched
        assert (r["initial_genotype"] != "") == searched
        if searched:
            assert float(r["abar_changes_last_epoch"]) >= 0
    images = [r for r in rows if r["task"] == "images"]
    # --quick: the first fold of the digits protocol for every cell.
    assert {r["fold"] for r in images} == {"0"}
    initial = [r for r in images if r["group"] == "initial"][0]
    nasp = [r for r in images if r["group"] == "nasp"][0]
    assert json.loads(initial["genotype"]) == json.loads(nasp["initial_genotype"])
    assert (tmp_path / "quality.png").read_bytes()[:4] == b"\x89PNG"
    # Only results.json is read from a retraining: nothing is exported.
    assert len(list(tmp_path.rglob("results.json"))) == len(rows)
    assert not list(tmp_path.rglob("saved_model")) and not list(tmp_path.rglob("model.keras"))
    table = (tmp_path / "quality.md").read_text()
    for task in ("images", "text"):
        assert f"### {task}: " in table
    assert "P(beats random)" in table and "sampling error" in table
    report = json.loads((tmp_path / "q.json").read_text())
    assert report["kind"] == "quality" and len(report["rows"]) == len(rows)
    assert report["machine"]["cpu_model"]
    # The shipped flagfiles were found in the installed package.
    assert "quickstart" in open(jobs.record_path(str(
        tmp_path / "images" / "train" / "random_0" / "fold0_seed0"))).read()
    assert list(work.iterdir()) == []  # nothing written where it ran

    # --ranking on the same directory: the search's supernet pinned to every
    # retrained cell of its space (one-node cells in --quick).
    ranked = subprocess.run([*bench, "--ranking", f"--output_dir={tmp_path}"],
                            capture_output=True, text=True, cwd=work, env=env, timeout=600)
    assert ranked.returncode == 0, ranked.stderr[-3000:]
    ranking = json.loads((tmp_path / "ranking.json").read_text())
    [row] = ranking["rows"]
    image_cells = {r["cell"] for r in images}
    assert row["search"] == "nasp_seed0" and set(row["supernet_loss"]) == image_cells
    assert all(np.isfinite(v) and v > 0 for v in row["supernet_loss"].values())
    # The report's numbers, recomputed from its own losses and quality.csv: the
    # searched cell's place counts the random cells with a lower supernet loss,
    # and rho is Pearson's correlation of the (average) ranks.
    loss = row["supernet_loss"]
    random_cells = sorted(c for c in image_cells if c.startswith("random_"))
    assert row["searched_supernet_place"] == 1 + sum(
        loss[c] < loss["nasp_seed0"] for c in random_cells)
    retrained = [np.mean([float(r["metric"]) for r in images if r["cell"] == c])
                 for c in random_cells]
    ranks = [np.array([np.sum(np.less(v, a)) + (np.sum(np.equal(v, a)) + 1) / 2 for a in v])
             for v in ([-loss[c] for c in random_cells], retrained)]  # ties: average rank
    expected = 0.0 if min(np.ptp(r) for r in ranks) == 0 else np.corrcoef(*ranks)[0, 1]
    assert row["rho_loss"] == pytest.approx(expected, abs=1e-9)
    assert "| nasp_seed0 |" in (tmp_path / "ranking.md").read_text()

    # Run again: every run is reused (nothing is searched or trained again).
    stamps = {p: p.stat().st_mtime for p in tmp_path.rglob("results.json")}
    again = run_quick(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime for p in tmp_path.rglob("results.json")} == stamps
    # A run of other flags (here: of another version) is run again, the old one kept aside.
    run_dir = tmp_path / "images" / "train" / "random_0" / "fold0_seed0"
    record = json.loads(open(jobs.record_path(str(run_dir))).read())
    record["key"]["version"] = "0.0.1"
    open(jobs.record_path(str(run_dir)), "w").write(json.dumps(record))
    again = run_quick(tmp_path, "--quality_tasks=images")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "images" / "train" / "random_0" / "fold0_seed0.old-1").is_dir()
    assert (run_dir / "results.json").stat().st_mtime > stamps[run_dir / "results.json"]


def test_jobs_run_costliest_first_each_on_its_own_core():
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs 2 CPU cores")
    started, running, most, seen = [], [], [0], []
    lock = threading.Lock()

    def job(name, seconds):
        def run(core):
            with lock:
                started.append(name)
                running.append(core)
                most[0] = max(most[0], len(running))
                assert running.count(core) == 1  # no core serves two jobs at once
                seen.append(core)
            time.sleep(seconds)
            with lock:
                running.remove(core)
        return run

    def failing(core):
        raise RuntimeError("search --output_dir=x failed: boom")

    planned = [(1, job("short", 0.05)), (5, job("long", 0.3)), (3, job("middle", 0.1)),
               (1, job("short2", 0.05)), (0, failing)]
    lines = []
    assert quality.run_jobs(planned, 2, lines.append) == 1
    assert set(started[:2]) == {"long", "middle"} and most[0] == 2
    assert set(seen) == set(cores[:2])
    assert "failed: search --output_dir=x failed: boom" in lines and len(lines) == 5
    seen.clear()
    assert quality.run_jobs(planned[:4], 1, lines.append) == 0  # no pinning, all cores
    assert set(seen) == {None}


def test_a_run_is_reused_only_with_the_same_flags_and_version(tmp_path):
    flagfile = tmp_path / "a.flags"
    flagfile.write_text("--epochs=1\n")
    key = jobs.job_key("search", [f"--flagfile={flagfile}", "--seed=1",
                                  f"--output_dir={tmp_path}/x"])
    assert key["flags"][0].startswith("--flagfile=a.flags#") and len(key["flags"]) == 2
    flagfile.write_text("--epochs=2\n")  # the config's content is part of the key
    assert jobs.job_key("search", [f"--flagfile={flagfile}", "--seed=1"]) != key
    assert np.isfinite(len(jobs.commit()))
