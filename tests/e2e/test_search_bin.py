"""bin/search.py on images: flag errors, missing data, and tiny searches."""

import json
import os

import numpy as np
import pytest

from nasp_tf import genotype as genotype_lib
from nasp_tf import spaces

# One node (two edges) per cell: the binary's whole path at a third of the
# graph of two nodes; prox_c1 and the genotype rules prune edges in the unit
# tests.
TINY = ["--dataset=synthetic", "--epochs=1", "--steps_per_epoch=2", "--batch_size=8",
        "--init_channels=4", "--layers=3", "--nodes=1", "--verbose=0", "--seed=5",
        "--deterministic"]


@pytest.mark.parametrize("args,message", [
    (["--dataset=nope"], "--dataset=nope"),
    (["--space=darts99"], "--space=darts99"),
    (["--epochs=0"], "--epochs=0"),
    (["--batch_size=-3"], "--batch_size=-3"),
    (["--learning_rate=0.001", "--learning_rate_min=0.01"], "learning_rate_min"),
    (["--no_such_flag=1"], "no_such_flag"),
    (["--flagfile=/nonexistent/x.flags"], "x.flags"),
    (["stray"], "unexpected arguments"),
    (["--searcher=darts3"], "--searcher=darts3"),
    # A URL TensorFlow cannot reach, refused before a run (it made ./nofs:/b/run).
    (["--output_dir=nofs://b/run"], "scheme 'nofs' not implemented"),
    (["--select_epochs=3"], "add --search_seeds=K"),
    (["--search_seeds=2", "--dry_run"], "--dry_run estimates one search"),
    (["--dataset=ptb_sample", "--search_seeds=2"], "--search_seeds does not apply to text"),
])
def test_bad_flags_exit_2_with_one_line(run_bin, one_line_error, args, message):
    assert message in one_line_error(run_bin("search.py", *args, check=False))


def test_unwritable_output_dir(tmp_path, run_bin, one_line_error):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = run_bin("search.py", f"--output_dir={blocker / 'run'}", check=False)
    assert "--output_dir" in one_line_error(result)


def test_missing_cifar10_says_how_to_get_it(tmp_path, run_bin, one_line_error):
    result = run_bin("search.py", "--flagfile=configs/cifar10.flags",
                     f"--data_dir={tmp_path / 'tfds'}", "--nodownload",
                     f"--output_dir={tmp_path / 'run'}", check=False)
    line = one_line_error(result)
    assert "cifar10 is not prepared" in line and "download_and_prepare" in line


def read_npz(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="class")
def tiny_run(tmp_path_factory, run_bin):
    """One tiny NASP search that the tests of a class read (and none writes to)."""
    out = tmp_path_factory.mktemp("run")
    return out, run_bin("search.py", *TINY, f"--output_dir={out}")


@pytest.mark.slow
class TestTinySearch:
    """Tests that read one tiny search (on one xdist worker)."""

    def test_search_writes_every_output(self, tiny_run):
        out, _ = tiny_run
        genotype = genotype_lib.load_cnn_genotype(str(out / "genotype.json"))
        assert genotype.space == "darts7"
        assert len(genotype.normal) == 2 and len(genotype.reduce) == 2  # 1 node x 2 edges
        assert genotype.normal_concat == (2,)
        assert genotype_lib.load_cnn_genotype(str(out / "genotypes" / "epoch_001.json"))
        arch = read_npz(out / "arch" / "epoch_001.npz")
        assert sorted(arch) == ["A_normal", "A_reduce", "Abar_normal", "Abar_reduce"]
        assert arch["A_normal"].shape == (2, 7)
        assert arch["A_normal"].min() >= 0 and arch["A_normal"].max() <= 1
        assert set(np.unique(arch["Abar_normal"])) <= {0.0, 1.0}
        for kind in ("normal", "reduce"):
            assert (out / f"cell_{kind}.png").read_bytes()[:4] == b"\x89PNG"
            assert "digraph" in (out / f"cell_{kind}.dot").read_text()
        for sub in ("arch", "train", "validation"):
            assert any(f.startswith("events.out.tfevents")
                       for f in os.listdir(out / "tensorboard" / sub)), sub
        assert "--dataset=synthetic" in (out / "flags.txt").read_text()
        # Numbered by the steps done: 1 epoch x 2 steps.
        assert any(f.startswith("ckpt-2.") for f in os.listdir(out / "checkpoints"))
        # The cell it started from: A = 0.5 ties to the first op and the first two
        # inputs (one node here).
        initial = genotype_lib.load_cnn_genotype(str(out / "initial_genotype.json"))
        first = {kind: spaces.get_cnn_space("darts7").ops(kind)[0]
                 for kind in ("normal", "reduce")}
        assert initial.normal == ((first["normal"], 0), (first["normal"], 1))
        assert initial.reduce == ((first["reduce"], 0), (first["reduce"], 1))
        # Every epoch's metrics, the Ā changes among them.
        history = json.loads((out / "history.json").read_text())
        assert [e["epoch"] for e in history] == [1] and history[0]["abar_changes"] >= 0

    def test_tensorboard_holds_the_architecture_images(self, tiny_run):
        import tensorflow as tf
        from tensorboard.backend.event_processing import event_accumulator

        out, _ = tiny_run

        def events(sub):
            acc = event_accumulator.EventAccumulator(str(out / "tensorboard" / sub),
                                                     size_guidance={"tensors": 0})
            acc.Reload()
            return acc

        arch, train = events("arch"), events("train")
        tags = set(arch.Tags()["tensors"])
        assert {"Abar/normal", "Abar/reduce", "A/normal", "A/reduce", "genotype"} <= tags
        # One step convention, Keras's (epoch 1 is step 0), and one learning-rate curve.
        assert [e.step for e in train.Tensors("epoch_loss")] == [0]
        for tag in tags:
            assert [e.step for e in arch.Tensors(tag)] == [0], tag
        assert "learning_rate" not in tags
        rate = train.Tensors("epoch_learning_rate")
        assert [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in rate] == \
            [(0, pytest.approx(0.001))]  # the search's --epochs=1 runs at T=1: the minimum
        # A and Ā are labelled heat maps: wide PNGs, not 8-pixel blocks.
        width, height, png = tf.make_ndarray(arch.Tensors("Abar/normal")[0].tensor_proto)
        assert int(width) > 300 and png[:4] == b"\x89PNG"


@pytest.mark.slow
def test_a_size_budget_returns_a_cell_whose_network_fits(tmp_path, run_bin):
    # A budget just above the smallest network of the retraining flags: the
    # searched cell is fitted to it, and bin/train.py --dry_run (which builds
    # the network) counts no more than the budget.
    flagfile = tmp_path / "train.flags"
    flagfile.write_text("--dataset=synthetic\n--init_channels=4\n--layers=3\n--noauxiliary\n")
    from nasp_tf.cnn import final_size

    table = final_size.size_table(spaces.get_cnn_space("darts7"), 1, 10, 4, 3, (32, 32, 3))
    budget = table.minimum() + 50
    run_bin("search.py", *TINY, f"--max_params={budget}", f"--train_flagfile={flagfile}",
            f"--output_dir={tmp_path / 'search'}")
    report = json.loads((tmp_path / "search" / "budget.json").read_text())
    assert report["max_params"] == budget and report["final_parameters"] <= budget
    assert report["searched_parameters"] >= report["final_parameters"] and report["eta"] >= 0
    history = json.loads((tmp_path / "search" / "history.json").read_text())
    assert "eta" in history[0] and "final_parameters" in history[0]
    result = run_bin("train.py", f"--flagfile={flagfile}", "--dry_run",
                     f"--genotype={tmp_path / 'search' / 'genotype.json'}")
    assert int(result.stdout.split("parameters:")[1].split()[0]) == \
        report["final_parameters"]
