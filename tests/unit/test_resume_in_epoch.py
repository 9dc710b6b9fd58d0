"""Checkpoints inside epochs (--checkpoint_every): a run that dies between
two epoch ends resumes from the last step checkpoint, finishes that epoch
with its remaining steps and ends exactly where an uninterrupted run does.

The run is a one-weight regression whose target is the global step number,
so a step run twice, skipped, or fed the wrong example changes the final
weight; the expected weight is the SGD recurrence computed in numpy."""

import glob
import os

import numpy as np
import pytest

STEPS, EPOCHS, RATE = 5, 3, 0.1


class _Crash(Exception):
    """The run's death inside an epoch, raised from a callback."""


def _run(regression_run, run_dir, every, crash_at=None):
    import keras
    import tensorflow as tf

    from nasp_tf import callbacks as callbacks_lib

    run, model, _, initial_epoch = regression_run(run_dir, EPOCHS, RATE, "--epochs=3\n",
                                                   checkpoint_every=every)
    seen = []

    def data(epoch, step):
        first = epoch * STEPS + step  # the global step this stream starts at
        return tf.data.Dataset.range(first, 10 ** 6).map(
            lambda t: (tf.ones((1, 1)), tf.cast(tf.reshape(t, (1, 1)), tf.float32)))

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(float(model.layers[0].kernel.numpy()[0, 0]))
            if crash_at is not None and len(seen) == crash_at:
                raise _Crash

    run.fit(model, data, STEPS, None, [Record(), callbacks_lib.EpochCheckpoint(
        run.save, EPOCHS, run.dir, lambda epoch: RATE)], lambda epoch: RATE)
    return float(model.layers[0].kernel.numpy()[0, 0]), run


def _expected():
    w = np.float32(0.0)
    for t in range(STEPS * EPOCHS):  # d/dw (w - t)^2 = 2 (w - t)
        w = np.float32(w - np.float32(RATE) * np.float32(2.0) * (w - np.float32(t)))
    return float(w)


def test_step_checkpoints_are_numbered_by_the_steps_done(tmp_path, regression_run):
    _run(regression_run, str(tmp_path / "run"), "2")
    # Epoch ends at 5, 10, 15; inside epochs every 2 global steps (2, 4, 6, 8,
    # 12, 14); the manager keeps the two newest.
    found = sorted(int(os.path.basename(p)[5:-6])
                   for p in glob.glob(str(tmp_path / "run" / "checkpoints" / "ckpt-*.index")))
    assert found == [14, 15]


@pytest.mark.parametrize("crash_at,every", [(8, "2"), (7, "3"), (11, "1")])
def test_a_run_dying_inside_an_epoch_resumes_at_its_last_step_checkpoint(tmp_path, crash_at,
                                                                        every, regression_run):
    from nasp_tf import checkpoints

    run_dir = str(tmp_path / "run")
    with pytest.raises(_Crash):
        _run(regression_run, run_dir, every, crash_at)
    every_steps = int(every)
    newest = max(s for s in range(crash_at + 1) if s % every_steps == 0 or s % STEPS == 0)
    assert checkpoints._numbered(os.path.join(run_dir, "checkpoints"))[0][0] == newest
    assert newest % STEPS, "the crash must fall inside an epoch for this test"
    final, run = _run(regression_run, run_dir, every)
    assert run.initial_step == newest % STEPS
    np.testing.assert_allclose(final, _expected(), rtol=1e-6)
    # An uninterrupted run gives the same weight.
    whole, _ = _run(regression_run, str(tmp_path / "whole"), "0")
    np.testing.assert_allclose(whole, _expected(), rtol=1e-6)
