"""bin/bench.py: its flag errors and a tiny step benchmark."""

import json

import pytest

pytestmark = pytest.mark.slow


def test_bad_searcher_is_one_line(run_bin, one_line_error):
    result = run_bin("bench.py", "--searchers=nasp,darts9", check=False)
    assert "--searchers" in one_line_error(result, prefix="bench.py")


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory, run_bin):
    # NASP and DARTS first order: two searchers, each in its own worker
    # process, one of them with DARTS's extra `none` column.
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    result = run_bin("bench.py", "--preset=tiny", "--searchers=nasp,darts1", "--warmup=1",
                     "--rounds=1", "--pipeline", f"--json={path}", timeout=900)
    return json.loads(path.read_text()), result.stdout


def test_step_benchmark_writes_every_number(tiny_bench):
    report, stdout = tiny_bench
    assert [r["searcher"] for r in report["results"]] == ["nasp", "darts1"]
    for r in report["results"]:
        assert len(r["arch_s_all"]) == len(r["weight_s_all"]) == 10
        assert r["total_s"] > 0 and r["arch_s"] > 0 and r["weight_s"] > 0
        assert r["first_step_s"] > r["total_s"]  # the first step compiles
        assert 0.2 < r["peak_rss_gb"] < 20
        assert all(x == x for x in r["final_losses"])  # not NaN
    nasp, darts1 = report["results"]
    # The TensorFlow build each worker ran, beside the machine record.
    import tensorflow as tf

    assert nasp["tf_build"]["version"] == tf.__version__
    assert nasp["tf_build"]["cpu_compiler"] == tf.sysconfig.get_build_info().get("cpu_compiler")
    assert nasp["tf_build"]["onednn"] in (True, False, None)
    assert f"TensorFlow {tf.__version__} (" in stdout
    assert report["machine"]["cpus"] > 0 and "command" in report["machine"]
    assert darts1["parameters"] == nasp["parameters"]  # DARTS's extra `none` has no weights
    assert "| NASP | darts7 |" in stdout and "| DARTS-1st | darts7 |" in stdout
    # The input pipeline on its own, CIFAR-shaped at the preset's batch.
    pipe = report["pipeline"]
    assert pipe["batch_size"] == report["preset_sizes"]["batch_size"]
    assert pipe["images"] == 512 and pipe["cutout"] == 16 and pipe["seconds_per_pair"] > 0
    assert (f"{pipe['seconds_per_pair']:.3f} s per (train, val) pair of batch "
            f"{pipe['batch_size']} (NASP's step: {nasp['total_s']:.3f} s)") in stdout


def test_text_step_benchmark_times_the_recurrent_searchers(tmp_path, run_bin, one_line_error):
    # DARTS second order on the recurrent cell, tiny preset, under bfloat16
    # (the worker process and the table are the images benchmark's, tested
    # above).
    path = tmp_path / "text.json"
    result = run_bin("bench.py", "--task=text", "--preset=tiny", "--searchers=darts2",
                     "--mixed_precision=mixed_bfloat16", "--warmup=1", "--rounds=1",
                     f"--json={path}",
                     timeout=900)
    report = json.loads(path.read_text())
    assert report["task"] == "text" and report["preset_sizes"]["rnn_units"] == 8
    assert [(r["searcher"], r["policy"]) for r in report["results"]] == [
        ("darts2", "mixed_bfloat16")]
    for r in report["results"]:
        assert r["space"] == "recurrent" and len(r["arch_s_all"]) == 10
        assert r["total_s"] > 0 and r["arch_s"] > 0 and r["weight_s"] > 0
        assert r["first_step_s"] > r["total_s"]
        assert all(x == x for x in r["final_losses"])
    # W0 (16 x 16), eight W_i (8 x 16), the tied embedding (50 x 8), the decoder bias.
    assert report["results"][0]["parameters"] == 16 * 16 + 8 * 8 * 16 + 50 * 8 + 50
    assert "| DARTS-2nd (mixed_bfloat16) | recurrent |" in result.stdout
    refused = run_bin("bench.py", "--task=text", "--searchers=pa", check=False)
    assert "--task=text" in one_line_error(refused, prefix="bench.py")
    refused = run_bin("bench.py", "--task=text", "--pipeline", check=False)
    assert "--pipeline" in one_line_error(refused, prefix="bench.py")
    refused = run_bin("bench.py", "--mixed_precision=float16", check=False)
    assert "--mixed_precision" in one_line_error(refused, prefix="bench.py")
