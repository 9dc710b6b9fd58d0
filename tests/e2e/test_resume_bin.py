"""Exact resume: a search of every searcher (images and text; NASP's and a
space's twice) and a retraining (CNN and text, twice), each killed with
SIGKILL at random steps inside epochs and rerun with the same command, ends
with the outputs of an uninterrupted run: the same genotype and A/Ā arrays for a search, the same final metrics
and weights for a retraining, to the last bit (text runs too). One search's
newest checkpoint is truncated as well: one warning line, the previous
checkpoint used."""

import glob
import json
import os
import random
import re
import signal
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow

# The image searches search RobustDARTS's two-op space (`s2`): what a resume
# must carry does not depend on the ops, and its network builds in half the
# time of darts7's (TestTinySearch of test_search_bin searches darts7).
SEARCH = ["--dataset=digits", "--max_examples=256", "--epochs=3", "--steps_per_epoch=4", "--batch_size=16",
          "--init_channels=4", "--layers=3", "--nodes=1", "--space=s2", "--learning_rate=0.05",
          "--arch_learning_rate=3e-3", "--verbose=0", "--seed=11", "--deterministic",
          "--checkpoint_every=1"]
TRAIN_IMAGES = ["--dataset=digits", "--max_examples=256", "--genotype=DARTS_V2",
                "--init_channels=4", "--layers=3", "--noauxiliary", "--batch_size=16",
                "--epochs=2", "--steps_per_epoch=5", "--cutout=0", "--drop_path_prob=0.2",
                "--verbose=0", "--seed=3", "--deterministic", "--checkpoint_every=1", "--noexport"]
TRAIN_TEXT = ["--dataset=synthetic_text", "--genotype=DARTS_V2", "--rnn_units=8",
              "--batch_size=4", "--eval_batch_size=4", "--test_batch_size=4", "--epochs=2",
              "--steps_per_epoch=5", "--verbose=0", "--seed=3", "--deterministic",
              "--checkpoint_every=1", "--noexport"]


def _arrays(run):
    found = {}
    for path in sorted(glob.glob(os.path.join(run, "arch", "epoch_*.npz"))):
        with np.load(path) as data:
            found.update({f"{os.path.basename(path)}:{k}": data[k] for k in data.files})
    return found


def _same_search(whole, killed, result, arrays):
    """The two runs' `result` JSON files are equal, and their A/Ā arrays of
    every epoch (`arrays` of them) to the last bit."""
    with open(os.path.join(whole, result), encoding="utf-8") as f:
        expected = json.load(f)
    with open(os.path.join(killed, result), encoding="utf-8") as f:
        assert json.load(f) == expected
    first, second = _arrays(whole), _arrays(killed)
    assert sorted(first) == sorted(second) and len(first) == arrays
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def _numbers(run):
    return sorted(int(re.search(r"ckpt-(\d+)\.index$", p).group(1))
                  for p in glob.glob(os.path.join(run, "checkpoints", "ckpt-*.index")))


def _kill_after_step(start_bin, program, args, run, step, rng):
    """Starts bin/`program` and SIGKILLs it at a random moment after a
    checkpoint of global step >= `step` is written."""
    process = start_bin(program, *args)
    deadline = time.time() + 300
    while not any(n >= step for n in _numbers(run)):
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.time() < deadline
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.1))
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    return process.returncode


def _kill_at(start_bin, program, args, run, steps, seed):
    rng = random.Random(seed)
    for step in steps:
        assert _kill_after_step(start_bin, program, args, run, step, rng) == -signal.SIGKILL


def _whole_and_killed(tmp_path, start_bin, run_bin, program, args, steps, seed, output):
    """Runs bin/`program` uninterrupted into whole/, and into killed/ killed
    with SIGKILL after each of `steps` (so `output` is not written) and run
    again; returns both directories."""
    whole, killed = str(tmp_path / "whole"), str(tmp_path / "killed")
    run_bin(program, *args, f"--output_dir={whole}")
    _kill_at(start_bin, program, [*args, f"--output_dir={killed}"], killed, steps, seed=seed)
    assert not os.path.exists(os.path.join(killed, output))
    run_bin(program, *args, f"--output_dir={killed}")
    return whole, killed


def test_a_search_killed_twice_ends_like_an_uninterrupted_one(tmp_path, start_bin, run_bin):
    whole, killed = str(tmp_path / "whole"), str(tmp_path / "killed")
    run_bin("search.py", *SEARCH, f"--output_dir={whole}")

    args = [*SEARCH, f"--output_dir={killed}"]
    _kill_at(start_bin, "search.py", args, killed, (3, 7), seed=7)
    assert not os.path.exists(os.path.join(killed, "genotype.json"))
    # The newest checkpoint truncated too: the rerun warns once, naming it and
    # the previous one, and goes on from that one (inside an epoch or at its start).
    newest = _numbers(killed)[-1]
    assert newest < 12
    data = glob.glob(os.path.join(killed, "checkpoints", f"ckpt-{newest}.data-*"))[0]
    with open(data, "rb") as f:
        content = f.read()
    with open(data, "wb") as f:
        f.write(content[:len(content) // 3])
    result = run_bin("search.py", *args)
    warnings = [line for line in result.stderr.splitlines() if "is damaged" in line]
    assert len(warnings) == 1, result.stderr[-2000:]
    assert f"ckpt-{newest} is damaged" in warnings[0] and f"ckpt-{newest - 1}" in warnings[0]
    epoch, step = divmod(newest - 1, 4)
    where = f"at epoch {epoch + 1} of 3" + (f", step {step + 1}" if step else "")
    assert where in result.stderr, result.stderr[-2000:]

    _same_search(whole, killed, "genotype.json", 3 * 2 * 2)  # epochs x kinds x A/Ā
    # Every invocation that ran is in the history: one new run, two resumes.
    with open(os.path.join(killed, "flags_history.txt"), encoding="utf-8") as f:
        kinds = [line.split("(")[1].split(")")[0] for line in f if line.startswith("#")]
    assert kinds == ["new", "resume", "resume"], kinds


def _final_weights(run):
    """{name: array} of the newest checkpoint's network weights, carried
    hidden states and optimizer slots."""
    import tensorflow as tf

    prefix = os.path.join(run, "checkpoints", f"ckpt-{_numbers(run)[-1]}")
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(prefix)
            if name.startswith(("weights/", "carried/", "optimizer/"))}


@pytest.mark.parametrize("args", [TRAIN_IMAGES, TRAIN_TEXT], ids=["images", "text"])
def test_a_killed_retraining_ends_like_an_uninterrupted_one(tmp_path, start_bin, run_bin, args):
    whole, killed = _whole_and_killed(tmp_path, start_bin, run_bin, "train.py", args, (3, 7), 5,
                                      "results.json")

    with open(os.path.join(whole, "results.json"), encoding="utf-8") as f:
        expected = json.load(f)
    with open(os.path.join(killed, "results.json"), encoding="utf-8") as f:
        found = json.load(f)
    assert sorted(found) == sorted(expected)
    for run in (whole, killed):  # --noexport: results and checkpoints only
        assert not {"saved_model", "model.keras"} & set(os.listdir(run))
    assert found == expected
    first, second = _final_weights(whole), _final_weights(killed)
    assert sorted(first) == sorted(second) and any(k.startswith("weights/") for k in first)
    for key in first:
        np.testing.assert_array_equal(second[key], first[key], err_msg=key)


TINY_SEARCHES = {
    "images": ["--dataset=digits", "--max_examples=256", "--epochs=2", "--steps_per_epoch=3",
               "--batch_size=16", "--init_channels=4", "--layers=3", "--nodes=1",
               "--space=s2", "--verbose=0", "--seed=5", "--deterministic", "--checkpoint_every=1"],
    "text": ["--dataset=synthetic_text", "--rnn_units=8", "--rnn_steps=2", "--batch_size=4",
             "--eval_batch_size=4", "--max_tokens=1000", "--epochs=2", "--steps_per_epoch=3",
             "--verbose=0", "--seed=5", "--deterministic", "--checkpoint_every=1"],
}
# The NASP image search is the test above (with a truncated checkpoint too).
# PA runs with its first-order gradient: what a resume must carry (A, the
# weights, both optimizers, the data position) is the same at either order,
# and the second-order graph, which triples each run's start-up, is darts2's.
# DARTS-2nd's image search runs under mixed_float16 (its unrolled step with
# float16's loss scaling, whose scale the checkpoint must carry) and PA-lazy's
# under mixed_bfloat16: the binary's wiring of each policy, resumed.
SEARCHERS = [("images", "darts1"), ("images", "darts2 --mixed_precision=mixed_float16"),
             ("images", "pa --pa_order=1"),
             ("images", "pa_lazy --pa_order=1 --mixed_precision=mixed_bfloat16"),
             ("text", "nasp"), ("text", "darts1"), ("text", "darts2")]


# Each killed once, at a random moment after step 3 of 6 (inside the second
# epoch): a resume of a resumed run is the NASP test's and the space's.
@pytest.mark.parametrize("family,searcher", SEARCHERS,
                         ids=[f"{f}-{s.split()[0]}" for f, s in SEARCHERS])
def test_every_searcher_killed_ends_like_an_uninterrupted_one(tmp_path, start_bin, run_bin,
                                                              family, searcher):
    name, *extra = searcher.split()
    args = [*TINY_SEARCHES[family], f"--searcher={name}", *extra]
    whole, killed = _whole_and_killed(tmp_path, start_bin, run_bin, "search.py", args, (3,), 3,
                                      "genotype.json")
    with open(os.path.join(whole, "genotype.json"), encoding="utf-8") as f:
        expected = json.load(f)
    with open(os.path.join(killed, "genotype.json"), encoding="utf-8") as f:
        assert json.load(f) == expected
    first, second = _arrays(whole), _arrays(killed)
    assert sorted(first) == sorted(second) and first
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    if family == "images":  # a valid s2 cell, whatever the policy
        from nasp_tf import genotype as genotype_lib

        genotype = genotype_lib.load_cnn_genotype(os.path.join(whole, "genotype.json"))
        assert genotype.space == "s2" and len(genotype.normal) == 2
        assert {op for op, _ in genotype.normal + genotype.reduce} <= {"skip_connect",
                                                                      "sep_conv_3x3"}
        a = first["epoch_001.npz:A_normal"]
        assert a.shape == ((2, 3) if name.startswith("darts") else (2, 2))  # DARTS adds none
        assert a.dtype == np.float32 and np.isfinite(a).all()
        assert os.path.exists(os.path.join(whole, "cell_normal.png"))
        # float16's loss scale is checkpointed (and restored: the arrays above).
        import tensorflow as tf

        prefix = os.path.join(killed, "checkpoints", f"ckpt-{_numbers(killed)[-1]}")
        scaled = any("loss_scale" in n for n, _ in tf.train.list_variables(prefix))
        assert scaled == ("--mixed_precision=mixed_float16" in extra)


def test_a_search_of_a_space_of_your_own_killed_twice_ends_like_an_uninterrupted_one(
        tmp_path, start_bin, run_bin):
    rng = np.random.RandomState(0)
    x = rng.standard_normal((200, 30)).astype(np.float32)
    data = tmp_path / "rows.npz"
    np.savez(data, x_train=x, y_train=(x[:, 0] + x[:, 1] > 0).astype(np.int64))
    args = ["--space=examples/custom_spaces.py:tabular_space", f"--dataset=npz:{data}",
            "--batch_size=16", "--epochs=2", "--steps_per_epoch=3", "--arch_learning_rate=0.05",
            "--verbose=0", "--seed=4", "--deterministic", "--checkpoint_every=1"]
    whole, killed = _whole_and_killed(tmp_path, start_bin, run_bin, "search.py", args, (2, 4), 5,
                                      "choices.json")
    _same_search(whole, killed, "choices.json", 2 * 3 * 2)  # epochs x decisions x A/Ā
    first, second = _final_weights(whole), _final_weights(killed)
    assert sorted(first) == sorted(second) and any(k.startswith("weights/") for k in first)
    for key in first:
        np.testing.assert_array_equal(second[key], first[key], err_msg=key)


# The averaged-SGD switch of a text retraining: one validation loss per
# finished epoch, so an epoch run again after a kill is not counted twice.
# Three epochs: at rate 20 this tiny model's loss explodes in a fourth.
ASGD = ["--dataset=synthetic_text", "--genotype=DARTS_V2", "--rnn_units=8", "--batch_size=4",
        "--eval_batch_size=4", "--test_batch_size=4", "--epochs=3", "--steps_per_epoch=5",
        "--learning_rate=20", "--nonmono=1", "--verbose=0", "--seed=3", "--deterministic",
        "--checkpoint_every=1", "--noexport"]


def test_the_averaged_sgd_history_survives_kills_inside_the_epoch_that_switches(
        tmp_path, start_bin, run_bin):
    whole, killed = str(tmp_path / "whole"), str(tmp_path / "killed")
    run_bin("train.py", *ASGD, f"--output_dir={whole}")
    with open(os.path.join(whole, "history.json"), encoding="utf-8") as f:
        expected = json.load(f)
    switched = expected["switched_at"]
    assert switched is not None and len(expected["val_losses"]) == 3
    # Killed twice inside the epoch whose end switches to averaged SGD.
    first_step = (switched - 1) * 5
    _kill_at(start_bin, "train.py", [*ASGD, f"--output_dir={killed}"], killed,
             (first_step + 1, first_step + 3), seed=9)
    run_bin("train.py", *ASGD, f"--output_dir={killed}")
    with open(os.path.join(killed, "history.json"), encoding="utf-8") as f:
        found = json.load(f)
    assert found["switched_at"] == switched
    assert found["val_losses"] == expected["val_losses"]
    with open(os.path.join(whole, "results.json"), encoding="utf-8") as a, \
            open(os.path.join(killed, "results.json"), encoding="utf-8") as b:
        assert json.load(b)["test_loss"] == json.load(a)["test_loss"]
