"""The run directory's contract (nasp_tf.run_dir), atomic writes
(nasp_tf.atomic) and the fallback from damaged checkpoints
(nasp_tf.checkpoints.restore_latest)."""

import glob
import os

import numpy as np
import pytest

from nasp_tf import atomic
from nasp_tf import run_dir
from nasp_tf.errors import CheckpointError, UserError

FLAGS = "--dataset=digits\n--epochs=3\n--seed=1\n--verbose=1\n--resume\n"


def _made(tmp_path, text=FLAGS):
    run = tmp_path / "run"
    run.mkdir()
    (run / "flags.txt").write_text(text)
    (run / "genotype.json").write_text('{"kept": true}\n')
    return str(run)


def test_a_new_or_empty_directory_is_new(tmp_path):
    assert run_dir.plan(str(tmp_path / "absent"), FLAGS) == run_dir.NEW
    (tmp_path / "empty").mkdir()
    assert run_dir.plan(str(tmp_path / "empty"), FLAGS) == run_dir.NEW


def test_the_same_flags_resume_and_volatile_flags_do_not_count(tmp_path):
    run = _made(tmp_path)
    assert run_dir.plan(run, FLAGS) == run_dir.RESUME
    other_display = FLAGS.replace("--verbose=1", "--verbose=2") + "--export_only\n"
    assert run_dir.plan(run, other_display) == run_dir.RESUME


def test_other_flags_are_refused_naming_the_first_difference(tmp_path):
    run = _made(tmp_path)
    with pytest.raises(UserError) as e:
        run_dir.plan(run, FLAGS.replace("--epochs=3", "--epochs=4") + "--space=nasp12\n")
    message = str(e.value)
    assert "--epochs=3 there, --epochs=4 here and 1 more" in message
    assert f"{run}.old-1" in message and "--overwrite" in message and "\n" not in message


def test_noresume_and_foreign_directories_need_overwrite(tmp_path):
    run = _made(tmp_path)
    with pytest.raises(UserError, match="--noresume"):
        run_dir.plan(run, FLAGS, resume=False)
    assert run_dir.plan(run, FLAGS, resume=False, overwrite=True) == run_dir.OVERWRITE
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="not a nasp_tf run directory"):
        run_dir.plan(str(foreign), FLAGS)


@pytest.mark.parametrize("path,phrase", [("/proc/nasp", "/proc"), ("/sys/x", "/sys"),
                                         ("/dev/null/x", "/dev")])
def test_kernel_file_systems_are_refused(path, phrase):
    with pytest.raises(UserError, match=phrase):
        run_dir.check_path(path)
    assert not run_dir.usable_path(path)


def test_overwrite_moves_the_old_run_aside_and_the_history_grows(tmp_path):
    run = _made(tmp_path)
    (tmp_path / "run.old-1").mkdir()  # taken: the next free name is used
    new_flags = FLAGS.replace("--seed=1", "--seed=2")
    moved = run_dir.commit(run, run_dir.OVERWRITE, new_flags, "search.py", ["search.py", "-x"])
    assert moved == f"{run}.old-2"
    assert (tmp_path / "run.old-2" / "genotype.json").read_text() == '{"kept": true}\n'
    assert (tmp_path / "run" / "flags.txt").read_text() == new_flags
    assert not (tmp_path / "run" / "genotype.json").exists()
    run_dir.commit(run, run_dir.RESUME, "ignored", "search.py", ["search.py", "-y"])
    assert (tmp_path / "run" / "flags.txt").read_text() == new_flags  # a resume keeps it
    history = (tmp_path / "run" / "flags_history.txt").read_text().splitlines()
    assert [line.split(" ", 3)[3] for line in history[::2]] == [
        f"(overwrite, old run moved to {run}.old-2)", "(resume)"]
    assert history[1::2] == ["search.py -x", "search.py -y"]


def test_an_atomic_write_that_fails_leaves_the_old_file(tmp_path):
    path = tmp_path / "results.json"
    atomic.write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic.writing(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["results.json"]


def test_an_atomic_directory_replaces_the_old_one_whole(tmp_path):
    path = tmp_path / "saved_model"
    for version in ("1", "2"):
        with atomic.writing(path) as tmp:
            os.makedirs(os.path.join(tmp, "variables"))
            with open(os.path.join(tmp, "version"), "w", encoding="utf-8") as f:
                f.write(version)
    assert (path / "version").read_text() == "2"
    assert sorted(os.listdir(tmp_path)) == ["saved_model"]
    with atomic.writing(tmp_path / "arch.npz") as tmp:
        np.savez(tmp, a=np.ones(3))  # a writer that picks the format by the name
    assert np.load(tmp_path / "arch.npz")["a"].sum() == 3


def _two_checkpoints(run):
    import keras

    from nasp_tf import checkpoints

    layer = keras.layers.Dense(64, name="dense")
    layer.build((None, 64))
    checkpoint = checkpoints.make_checkpoint(layer)
    manager = checkpoints.manager_for(checkpoint, run)
    kernels = []
    for number in (1, 2):
        layer.kernel.assign(np.full((64, 64), number, np.float32))
        kernels.append(layer.kernel.numpy())
        checkpoint.epoch.assign(number)
        manager.save(checkpoint_number=number)

    def fresh():
        other = keras.layers.Dense(64, name="dense")
        other.build((None, 64))
        return other, checkpoints.make_checkpoint(other)

    return kernels, fresh


def _damage(path, how):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if how == "truncate":
        data = data[:len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))


@pytest.mark.parametrize("target,how", [("data", "truncate"), ("data", "flip"),
                                        ("index", "truncate"), ("state", "garbage")])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, target, how,
                                                                    caplog):
    from nasp_tf import checkpoints

    kernels, fresh = _two_checkpoints(str(tmp_path))
    directory = tmp_path / "checkpoints"
    if target == "state":
        (directory / "checkpoint").write_text("garbage {{{")
    else:
        suffix = ".index" if target == "index" else ".data-00000-of-00001"
        _damage(directory / f"ckpt-2{suffix}", how)
    layer, checkpoint = fresh()
    with caplog.at_level("WARNING"):
        epoch, _, path = checkpoints.restore_latest(checkpoint, str(tmp_path))
    damaged = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
    if target == "state":  # the files are intact: the newest is used, no warning
        assert (epoch, damaged) == (2, [])
        np.testing.assert_array_equal(layer.kernel.numpy(), kernels[1])
        return
    assert epoch == 1 and path.endswith("ckpt-1") and len(damaged) == 1
    assert "ckpt-2 is damaged" in damaged[0] and "resuming from" in damaged[0]
    np.testing.assert_array_equal(layer.kernel.numpy(), kernels[0])


def test_no_intact_checkpoint_is_one_line(tmp_path):
    from nasp_tf import checkpoints

    _, fresh = _two_checkpoints(str(tmp_path))
    for path in glob.glob(str(tmp_path / "checkpoints" / "ckpt-*.data-*")):
        _damage(path, "truncate")
    _, checkpoint = fresh()
    with pytest.raises(CheckpointError) as e:
        checkpoints.restore_latest(checkpoint, str(tmp_path))
    assert "no checkpoint" in str(e.value) and "\n" not in str(e.value)


def test_a_checkpoint_of_other_weights_names_them_in_one_line(tmp_path):
    # A run written by another architecture, or by a nasp_tf whose networks
    # lay out their weights otherwise (before 0.2.0 the search network kept a
    # variable per edge): the one-line error names a weight on each side.
    import keras

    from nasp_tf import checkpoints

    _two_checkpoints(str(tmp_path))
    other = keras.layers.Dense(64, name="stacked")
    other.build((None, 64))
    with pytest.raises(CheckpointError) as e:
        checkpoints.restore_latest(checkpoints.make_checkpoint(other), str(tmp_path))
    message = str(e.value)
    assert "\n" not in message
    assert "2 only in the checkpoint, e.g. dense.bias" in message
    assert "2 only in this network, e.g. stacked.bias" in message
    assert "older nasp_tf" in message and "--overwrite" in message
