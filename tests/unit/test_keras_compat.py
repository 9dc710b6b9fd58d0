"""The private Keras names nasp_tf relies on still have the shape it expects,
on a Keras version they were checked on (nasp_tf.keras_compat)."""

import keras

from nasp_tf import keras_compat


def test_the_installed_keras_is_one_the_workarounds_were_checked_on():
    version = ".".join(keras.__version__.split(".")[:2])
    assert version in keras_compat.CHECKED, (
        f"Keras {keras.__version__} is new: check every workaround of nasp_tf.keras_compat "
        "against it (drop those its fixes make unneeded), then add it to CHECKED")


def test_every_private_keras_name_still_has_the_expected_shape():
    assert keras_compat.problems() == []


def test_a_changed_name_is_reported(monkeypatch):
    from keras.src.backend.tensorflow import trainer

    monkeypatch.setattr(trainer, "reduce_per_replica", lambda values, strategy: values)
    assert any("reduce_per_replica" in line for line in keras_compat.problems())
