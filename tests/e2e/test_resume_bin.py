"""Exact resume: a search killed with SIGKILL (twice) and rerun with the same
command ends with the genotype and architecture matrices of an
uninterrupted run, even when the newest checkpoint is truncated as well (one
warning line, the previous checkpoint used)."""

import glob
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np

SEARCH = ["--dataset=digits", "--max_examples=256", "--epochs=4", "--steps_per_epoch=4", "--batch_size=16",
          "--init_channels=4", "--layers=3", "--nodes=1", "--learning_rate=0.05",
          "--arch_learning_rate=3e-3", "--verbose=0", "--seed=11", "--deterministic"]


def _arrays(run):
    found = {}
    for path in sorted(glob.glob(os.path.join(run, "arch", "epoch_*.npz"))):
        with np.load(path) as data:
            found.update({f"{os.path.basename(path)}:{k}": data[k] for k in data.files})
    return found


def _kill_after_checkpoint(root, args, run, number, rng):
    """Starts the search and SIGKILLs it at a random moment after checkpoint
    `number` is written (somewhere inside the next epoch)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    process = subprocess.Popen([sys.executable, os.path.join(root, "bin", "search.py"), *args],
                               cwd=root, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    index = os.path.join(run, "checkpoints", f"ckpt-{number}.index")
    deadline = time.time() + 300
    while not os.path.exists(index):
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.time() < deadline
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.1))
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    return process.returncode


def test_a_search_killed_twice_ends_like_an_uninterrupted_one(tmp_path, root, run_bin):
    whole, killed = str(tmp_path / "whole"), str(tmp_path / "killed")
    run_bin("search.py", *SEARCH, f"--output_dir={whole}")

    rng = random.Random(7)
    args = [*SEARCH, f"--output_dir={killed}"]
    assert _kill_after_checkpoint(root, args, killed, 1, rng) == -signal.SIGKILL
    assert _kill_after_checkpoint(root, args, killed, 2, rng) == -signal.SIGKILL
    assert not os.path.exists(os.path.join(killed, "genotype.json"))
    # The newest checkpoint truncated too: the rerun warns once, naming it and
    # the previous one, and goes on from that one.
    newest = max(int(p.split("-")[-1].split(".")[0])
                 for p in glob.glob(os.path.join(killed, "checkpoints", "ckpt-*.index")))
    assert newest < 4
    data = glob.glob(os.path.join(killed, "checkpoints", f"ckpt-{newest}.data-*"))[0]
    with open(data, "rb") as f:
        content = f.read()
    with open(data, "wb") as f:
        f.write(content[:len(content) // 3])
    result = run_bin("search.py", *args)
    warnings = [line for line in result.stderr.splitlines() if "is damaged" in line]
    assert len(warnings) == 1, result.stderr[-2000:]
    assert f"ckpt-{newest} is damaged" in warnings[0] and f"ckpt-{newest - 1}" in warnings[0]
    assert f"at epoch {newest} of 4" in result.stderr

    with open(os.path.join(whole, "genotype.json"), encoding="utf-8") as f:
        expected = json.load(f)
    with open(os.path.join(killed, "genotype.json"), encoding="utf-8") as f:
        assert json.load(f) == expected
    first, second = _arrays(whole), _arrays(killed)
    assert sorted(first) == sorted(second) and len(first) == 4 * 2 * 2  # epochs x kinds x A/Ā
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    # Every invocation that ran is in the history: one new run, two resumes.
    with open(os.path.join(killed, "flags_history.txt"), encoding="utf-8") as f:
        kinds = [line.split("(")[1].split(")")[0] for line in f if line.startswith("#")]
    assert kinds == ["new", "resume", "resume"], kinds
