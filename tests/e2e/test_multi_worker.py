"""--strategy=multi_worker: two workers started by bin/launch.py (one CPU
each) against one process with the same global batch."""

import os

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def test_two_workers_match_one_process(tmp_path, root, run_script):
    worker = os.path.join(root, "tests", "e2e", "multi_worker_worker.py")
    two, one = str(tmp_path / "two.npz"), str(tmp_path / "one.npz")
    run_script(os.path.join(root, "bin", "launch.py"), "--workers=2", "--", worker, two,
               "multi_worker")
    run_script(worker, one, "default")
    first, second = np.load(one), np.load(two)
    assert int(second["replicas"]) == 2 and int(first["replicas"]) == 1
    assert int(first["steps"]) == int(second["steps"]) == 3
    for kind in ("normal", "reduce"):
        np.testing.assert_array_equal(first[f"Abar_{kind}"], second[f"Abar_{kind}"])
        np.testing.assert_allclose(second[f"A_{kind}"], first[f"A_{kind}"], atol=1e-5)
        assert np.abs(first[f"A_{kind}"] - 0.5).max() > 0.01  # A moved
    # The weights: each run's update from the same start agrees. A gradient
    # not summed over the workers, or summed twice, is off by half of it.
    for part in ("search", "train"):
        keys = [k for k in first.files if k.startswith(f"{part}_w")]
        assert keys
        start = {k: first[k.replace("_w", "_start")] for k in keys}
        np.testing.assert_array_equal(start[keys[0]], second[keys[0].replace("_w", "_start")])
        moved = np.sqrt(sum(np.sum((first[k] - start[k]) ** 2) for k in keys))
        apart = np.sqrt(sum(np.sum((first[k] - second[k]) ** 2) for k in keys))
        assert moved > 1e-3 and apart < 0.02 * moved, (part, apart, moved)
    # A space of your own: A and every weight as on one process, searched,
    # then the chosen network retrained (bin/train.py --space's model).
    space = sorted(k for k in first.files if k.startswith("space_") and "start_" not in k)
    assert space == sorted(k for k in second.files if k.startswith("space_")
                           and "start_" not in k)
    retrained = [k for k in space if k.startswith("space_train_")]
    assert len(retrained) == 4  # two dense layers (p, o): the InputChoice kept p
    for key in retrained:
        assert np.abs(first[key] - first[key.replace("space_train_", "space_train_start_")]
                      ).max() > 1e-3, key
    assert any(k.endswith("arch_c") for k in space) and any(k.endswith("arch_s") for k in space)
    for key in space:
        np.testing.assert_allclose(second[key], first[key], rtol=0, atol=1e-5, err_msg=key)
    moved = [np.abs(first["space_" + k[len("space_start_"):]] - first[k]).max()
             for k in first.files if k.startswith("space_start_")]
    assert len(moved) == 8 and max(moved) > 1e-3  # the weights of the chosen layers moved
    for key in ("arch_c", "arch_s"):
        [found] = [k for k in space if k.endswith(key)]
        assert np.abs(first[found] - 0.5).max() > 0.01  # A moved
    # The packed broadcast (multi_worker_worker.packed_collectives): worker i
    # made its variables from (i + 1) x base, with no broadcast of its own.
    base = np.arange(1.0, 7.0).reshape(2, 3)
    for worker in (0, 1):
        found = np.load(f"{two}.{worker}.npz")
        np.testing.assert_array_equal(found["created"], (worker + 1) * base)
        np.testing.assert_array_equal(found["broadcast"], base)  # the chief's
        np.testing.assert_array_equal(found["counter"], [3, 4])



def _newest_step(out):
    """The global step of the newest checkpoint in run directory `out` (-1: none)."""
    import glob

    return max([int(p.split("-")[-1].split(".")[0])
                for p in glob.glob(os.path.join(out, "checkpoints", "ckpt-*.index"))],
               default=-1)


def _kill_worker(out, index):
    """SIGKILLs worker `index` of the launch writing `out`: the search process
    whose TF_CONFIG says that index."""
    import signal
    import subprocess

    workers = [int(line.split()[0]) for line in subprocess.run(
        ["pgrep", "-af", "bin/search.py"], capture_output=True, text=True).stdout.splitlines()
        if "multi_worker" in line and f"--output_dir={out}" in line]
    victims = [pid for pid in workers
               if f'"index": {index}' in open(f"/proc/{pid}/environ", "rb").read().decode(
                   errors="replace")]
    assert len(victims) == 1, workers
    os.kill(victims[0], signal.SIGKILL)


TEXT = ["--dataset=synthetic_text", "--rnn_units=8", "--max_tokens=1000",
        "--batch_size=8", "--eval_batch_size=4", "--verbose=0", "--strategy=multi_worker"]


def test_a_recurrent_search_survives_a_killed_worker_and_its_cell_retrains_on_two_workers(
        tmp_path, root, run_script):
    """SIGKILL to worker 1 mid-search: the launcher stops worker 0 and fails
    with 128 + 9; the same launch again resumes from the chief's checkpoint
    and writes a valid genotype, which a retraining on two workers then
    trains and evaluates."""
    import glob
    import json
    import signal
    import subprocess
    import sys
    import time

    from nasp_tf import genotype as genotype_lib

    out = str(tmp_path / "search")
    search = ["bin/search.py", *TEXT, "--rnn_steps=2", "--epochs=4", "--steps_per_epoch=5",
              "--checkpoint_every=1", f"--output_dir={out}"]
    launch_py = os.path.join(root, "bin", "launch.py")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    launch = subprocess.Popen([sys.executable, launch_py, "--workers=2", "--", *search],
                              cwd=root, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while _newest_step(out) < 3:
        assert launch.poll() is None and time.time() < deadline
        time.sleep(0.02)
    _kill_worker(out, 1)
    _, stderr = launch.communicate(timeout=120)
    assert launch.returncode == 128 + signal.SIGKILL, stderr[-2000:]
    assert "worker 1 exited" in stderr
    assert not os.path.exists(os.path.join(out, "genotype.json"))

    result = run_script(launch_py, "--workers=2", "--", *search)
    assert "resuming from" in result.stdout
    with open(os.path.join(out, "flags_history.txt"), encoding="utf-8") as f:
        kinds = [line.split("(")[1].split(")")[0] for line in f if line.startswith("#")]
    assert kinds == ["new", "resume"]
    genotype = genotype_lib.load_rnn_genotype(os.path.join(out, "genotype.json"))
    assert len(genotype.recurrent) == 2
    assert len(glob.glob(os.path.join(out, "arch", "epoch_*.npz"))) == 4

    trained = str(tmp_path / "train")
    run_script(launch_py, "--workers=2", "--", "bin/train.py", *TEXT, "--epochs=1",
               "--steps_per_epoch=3", "--test_batch_size=4",
               f"--genotype={out}/genotype.json", f"--output_dir={trained}")
    with open(os.path.join(trained, "results.json"), encoding="utf-8") as f:
        results = json.load(f)
    for split in ("valid", "test"):  # perplexity is exp of the mean token loss
        assert np.isfinite(results[f"{split}_loss"])
        np.testing.assert_allclose(results[f"{split}_ppl"], np.exp(results[f"{split}_loss"]),
                                   rtol=1e-6)
    assert (tmp_path / "train" / "saved_model").exists()


TINY_SEARCH = ["--dataset=digits", "--max_examples=256", "--epochs=2", "--steps_per_epoch=4",
               "--batch_size=16", "--init_channels=4", "--layers=3", "--nodes=1", "--space=s2",
               "--verbose=0", "--strategy=multi_worker", "--checkpoint_every=1",
               "--deterministic"]


def test_a_killed_chief_stops_the_launch_and_the_rerun_ends_like_an_unkilled_one(
        tmp_path, root, run_script):
    """SIGKILL to the chief (worker 0, the one that writes the checkpoints) at
    a random moment after the second epoch's first step: the launch fails
    with 128 + 9 and names the worker; the same launch again resumes from the
    chief's newest checkpoint, mid-epoch, and ends with the run directory,
    genotype and A of an uninterrupted 2-worker search. (The recurrent test
    above kills the other worker.)"""
    import json
    import random
    import signal
    import subprocess
    import sys
    import time

    launch_py = os.path.join(root, "bin", "launch.py")
    whole, out = str(tmp_path / "whole"), str(tmp_path / "run")
    run_script(launch_py, "--workers=2", "--", "bin/search.py", *TINY_SEARCH,
               f"--output_dir={whole}")
    command = [sys.executable, launch_py, "--workers=2", "--", "bin/search.py", *TINY_SEARCH,
               f"--output_dir={out}"]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    launch = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while _newest_step(out) < 5:  # 8 steps in all, 4 per epoch
        assert launch.poll() is None and time.time() < deadline, launch.stderr.read()
        time.sleep(0.02)
    time.sleep(random.Random(4).uniform(0.0, 0.2))
    _kill_worker(out, 0)
    _, stderr = launch.communicate(timeout=120)
    assert launch.returncode == 128 + signal.SIGKILL, stderr[-2000:]
    assert "worker 0 exited" in stderr, stderr[-2000:]
    assert not os.path.exists(os.path.join(out, "genotype.json"))

    result = run_script(launch_py, "--workers=2", "--", "bin/search.py", *TINY_SEARCH,
                        f"--output_dir={out}")
    assert "resuming from" in result.stdout
    with open(os.path.join(out, "flags_history.txt"), encoding="utf-8") as f:
        kinds = [line.split("(")[1].split(")")[0] for line in f if line.startswith("#")]
    assert kinds == ["new", "resume"], kinds
    assert set(os.listdir(whole)) <= set(os.listdir(out))
    with open(os.path.join(whole, "genotype.json"), encoding="utf-8") as a, \
            open(os.path.join(out, "genotype.json"), encoding="utf-8") as b:
        assert json.load(b) == json.load(a)
    for epoch in (1, 2):
        name = f"epoch_{epoch:03d}.npz"
        with np.load(os.path.join(whole, "arch", name)) as a, \
                np.load(os.path.join(out, "arch", name)) as b:
            assert sorted(a.files) == sorted(b.files)
            for key in a.files:
                np.testing.assert_array_equal(b[key], a[key], err_msg=f"{name}:{key}")
