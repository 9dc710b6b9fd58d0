"""A loss that turns infinite: --on_nan=stop ends the run with one line naming
the epoch and step and keeps the last good checkpoint; --on_nan=restore goes
back to it and goes on at half the learning rate. The run is a
one-weight regression whose trajectory has a closed form: with every input
1 and target Y, SGD on the mean squared error moves w - Y by (1 - 2 lr) per
step, so the step where the loss overflows float32 and the final weight are
known in advance."""

import math

import numpy as np
import pytest

from nasp_tf.config import TrainConfig

STEPS, EPOCHS, TARGET, RATE = 10, 6, 1e10, 1.6


def _run(regression_run, tmp_path, on_nan, rate=RATE):
    import tensorflow as tf

    from nasp_tf import callbacks as callbacks_lib

    run, model, optimizer, initial_epoch = regression_run(
        str(tmp_path / "run"), EPOCHS, rate, "--epochs=6\n", on_nan=on_nan)

    def data(epoch, step):
        # One example per batch: the loss is (w - Y)^2 itself, no sum that
        # could overflow first.
        x = np.ones((1, 1), np.float32)
        return tf.data.Dataset.from_tensors((x, np.full((1, 1), TARGET, np.float32))).repeat()

    run.fit(model, data, STEPS, None, [callbacks_lib.EpochCheckpoint(
        run.save, EPOCHS, run.dir, lambda epoch: rate)], lambda epoch: rate)
    return run, model, optimizer


def _overflow_step():
    """The first (1-based, global) step whose logged loss is infinite: Keras logs
    the epoch's running mean, kept as a float32 sum of the losses (w - Y)^2 of
    the epoch's steps so far, so the sum overflows a step or so before one loss."""
    error, largest = -TARGET, float(np.finfo(np.float32).max)
    total = 0.0
    for step in range(1, 1000):
        total = (0.0 if (step - 1) % STEPS == 0 else total) + error * error
        if total > largest:
            return step
        error *= 1 - 2 * RATE


def test_stop_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path, regression_run):
    from nasp_tf.errors import RunFailed

    step = _overflow_step()
    epoch, within = divmod(step - 1, STEPS)
    with pytest.raises(RunFailed) as e:
        _run(regression_run, tmp_path, "stop")
    assert f"epoch {epoch + 1}, step {within + 1}" in str(e.value)
    assert "--on_nan=restore" in str(e.value) and "\n" not in str(e.value)
    # The checkpoint of the last finished epoch is the newest, intact and finite:
    # the epoch that went infinite wrote none.
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    names = [name for name, _ in tf.train.list_variables(latest)]
    reader = tf.train.load_checkpoint(latest)
    assert int(reader.get_tensor(next(n for n in names if n.startswith("epoch/")))) == epoch
    kernel = next(n for n in names if n.startswith("weights/") and "kernel" in n)
    w = float(reader.get_tensor(kernel).ravel()[0])
    assert math.isfinite(w)
    np.testing.assert_allclose(w - TARGET, -TARGET * (1 - 2 * RATE) ** (epoch * STEPS),
                               rtol=1e-5)


def test_restore_goes_back_and_trains_on_at_half_the_rate(tmp_path, caplog, regression_run):
    step = _overflow_step()
    epoch = (step - 1) // STEPS
    with caplog.at_level("WARNING"):
        _, model, optimizer = _run(regression_run, tmp_path, "restore")
    lines = [r.getMessage() for r in caplog.records if "became NaN/inf" in r.getMessage()]
    assert len(lines) == 1 and "restore 1 of 3" in lines[0] and "0.5 x" in lines[0]
    assert float(optimizer.rate_scale.numpy()) == 0.5
    # From the checkpoint of epoch `epoch`, every later step runs at RATE / 2.
    steps_before, steps_after = epoch * STEPS, (EPOCHS - epoch) * STEPS
    expected = -TARGET * (1 - 2 * RATE) ** steps_before * (1 - RATE) ** steps_after
    w = float(model.weights[0].numpy().ravel()[0])
    np.testing.assert_allclose(w - TARGET, expected, rtol=1e-3, atol=2048.0)


def test_three_restores_then_a_stop_in_one_line(tmp_path, caplog, regression_run):
    # At 20, 10, 5 and 2.5 the step multiplies w - Y by 1 - 2 lr = -39, -19, -9,
    # -4: every restore overflows again, and the fourth overflow stops the run.
    from nasp_tf.errors import RunFailed

    with caplog.at_level("WARNING"), pytest.raises(RunFailed) as e:
        _run(regression_run, tmp_path, "restore", rate=20.0)
    lines = [r.getMessage() for r in caplog.records if "became NaN/inf" in r.getMessage()]
    assert [line.split("(restore ")[1].split(")")[0] for line in lines] == \
        ["1 of 3", "2 of 3", "3 of 3"]
    assert ["0.5 x" in lines[0], "0.25 x" in lines[1], "0.125 x" in lines[2]] == [True] * 3
    assert "after 3 restores" in str(e.value) and "\n" not in str(e.value)


def test_a_non_finite_architecture_matrix_stops_the_run_before_it_is_saved(tmp_path):
    """A searcher's A turning NaN (here injected after step 7) stops the run at
    the next step with one line naming A and that step; no checkpoint holds
    the NaN, and prox_c1 of a NaN row still gives valid indices."""
    import keras
    import tensorflow as tf

    from nasp_tf import checkpoints, optimizers, proximal
    from nasp_tf.errors import RunFailed
    from nasp_tf.pipelines import common

    config = TrainConfig(output_dir=str(tmp_path / "run"), epochs=EPOCHS, verbose=0,
                         checkpoint_every="1")
    run = common.Run(config, "--epochs=6\n")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, name="w")],
                             name="regression")
    optimizer = optimizers.TorchSGD(0.01, momentum=0.0)
    model.compile(optimizer=optimizer, loss="mse")
    optimizer.build(model.trainable_weights)
    arch = tf.Variable(np.full((3, 4), 0.5, np.float32))
    model.arch_vars = {"recurrent": arch}
    run.resume(model, optimizer=optimizer, arch=arch)

    class Inject(keras.callbacks.Callback):
        seen = 0

        def on_train_batch_end(self, batch, logs=None):
            Inject.seen += 1
            if Inject.seen == 7:
                arch.assign(tf.fill((3, 4), float("nan")))

    def data(epoch, step):
        return tf.data.Dataset.from_tensors((np.ones((1, 1), np.float32),
                                             np.ones((1, 1), np.float32))).repeat()

    with pytest.raises(RunFailed) as e:
        run.fit(model, data, STEPS, None, [Inject()], lambda epoch: 0.01)
    assert "A became NaN/inf at epoch 1, step 8" in str(e.value)
    epoch, step, path = checkpoints.restore_latest(run.checkpoint, run.dir)
    assert (epoch, step) == (0, 7) and path.endswith("ckpt-7")
    assert np.isfinite(arch.numpy()).all()
    _, index = proximal.prox_c1(tf.fill((3, 4), float("nan")), [1, 2], keep_edges=1)
    assert set(index.numpy().tolist()) <= {0, 1, 2, 3}
