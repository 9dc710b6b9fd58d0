"""What a search and a retraining of a space of the user's own share: the
model that `--space=module:function` builds, checked, the `.npz` arrays it
trains on, and the loss and metrics of `--task`.

The data is `--dataset=npz:FILE` with x_train and y_train (and x_test with
y_test for the score a retraining reports): arrays of any shape the model
takes (tabular rows, sequences, images), read as float32. Labels are class
ids for `--task=classification` (the model's outputs are logits, one per
class) and float targets for `--task=regression` (mean squared error).
"""

import keras
import numpy as np

from nasp_tf import choice as choice_lib
from nasp_tf import space_spec
from nasp_tf.data import user_images
from nasp_tf.errors import DataError, UserError

# The fixed order of the training rows, whatever --seed says, so every seed
# searches on the same weight/architecture split (as for images).
ORDER_SEED = 0


def build_space(spec):
    """The model `spec`'s function returns, with at least one decision; a
    `UserError` of one line otherwise (an error the function raises, candidates
    whose outputs differ in shape, no Choice at all)."""
    function = space_spec.load_function(spec)
    try:
        model = function()
    except Exception as e:  # the user's code
        raise UserError(f"--space={spec}: the function raised {type(e).__name__}: "
                        f"{space_spec.first_line(e)}") from None
    if not isinstance(model, keras.Model):
        raise UserError(f"--space={spec} must return a keras.Model with nasp_tf.Choice "
                        f"layers. Received: {type(model).__name__}")
    if not model.built:
        raise UserError(f"--space={spec}: the model is not built; start it from a "
                        "keras.Input (or call it once on a batch) before returning it")
    try:
        decisions = choice_lib.find_decisions(model)
    except ValueError as e:
        raise UserError(f"--space={spec}: {e}") from None
    if not decisions:
        raise UserError(f"--space={spec} returned a model without any nasp_tf.Choice or "
                        f"InputChoice layer: nothing to search. Received: {model.name!r}")
    return model


def loss_and_metrics(task):
    """The loss and metrics of `--task` (fresh objects)."""
    if task == "classification":
        return (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return keras.losses.MeanSquaredError(), [keras.metrics.MeanAbsoluteError(name="mae")]


def load_arrays(dataset, task, model, max_examples=0):
    """{"x_train", "y_train", "x_test", "y_test"} of `dataset` (npz:FILE)
    checked against `model` and `task` (x float32; y int64 class ids or
    float32 targets). Without x_test and y_test in the file, a fixed 10 %
    of the training rows (`user_images.HOLDOUT`, chosen by `ORDER_SEED`) is the
    test set, for the search as well as the retraining. The training rows come
    in a fixed order (`ORDER_SEED`); `max_examples` keeps the first N of it."""
    prefix, _, path = dataset.partition(":")
    if prefix != "npz":
        raise DataError(f"a space of your own trains on arrays: --dataset=npz:FILE with "
                        f"x_train and y_train. Received: --dataset={dataset}")
    arrays = user_images.read_npz(path, dataset)
    out = {}
    for split in ("train", "test"):
        if f"x_{split}" not in arrays:
            out[f"x_{split}"] = out[f"y_{split}"] = None
            continue
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        out[f"x_{split}"], out[f"y_{split}"] = _checked(dataset, split, x, y, task, model)
    order = np.random.RandomState(ORDER_SEED).permutation(len(out["x_train"]))
    if out["x_test"] is None:  # held out before anything trains or searches on it
        held = max(1, int(round(len(order) * user_images.HOLDOUT)))
        if len(order) - held < 2:
            raise DataError(f"{dataset}: {len(order)} rows are too few to hold "
                            f"{held} out for the test score; add rows, or x_test and y_test")
        out["x_test"], out["y_test"] = out["x_train"][order[-held:]], out["y_train"][order[-held:]]
        order = order[:-held]
    if max_examples:
        order = order[:max_examples]
    out["x_train"], out["y_train"] = out["x_train"][order], out["y_train"][order]
    return out


def _checked(name, split, x, y, task, model):
    if x.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
        raise DataError(f"{name}: x_{split} and y_{split} must be numeric arrays. Received: "
                        f"dtypes {x.dtype} and {y.dtype}")
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"{name}: x_{split} holds no rows. Received: shape {x.shape}")
    if len(y) != len(x):
        raise DataError(f"{name}: x_{split} and y_{split} differ in length. Received: "
                        f"{len(x)} and {len(y)} rows")
    expected = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    if expected is not None and any(e is not None and e != s
                                    for e, s in zip(expected, x.shape[1:])) \
            or expected is not None and len(expected) != x.ndim - 1:
        raise DataError(f"{name}: the model takes rows of shape {expected}. Received: "
                        f"x_{split} rows of shape {tuple(x.shape[1:])}")
    if task == "classification":
        y = y.reshape(len(y), -1) if y.ndim > 1 else y
        if y.ndim > 1 and y.shape[1] != 1:
            raise DataError(f"{name}: --task=classification takes one class id per row. "
                            f"Received: y_{split} of shape {y.shape}; pass class ids, or "
                            "--task=regression for float targets")
        y = y.reshape(-1)
        if y.dtype.kind == "f" and not np.all(np.floor(y) == y) or y.min() < 0:
            raise DataError(f"{name}: --task=classification takes class ids 0..K-1. "
                            f"Received: y_{split} values such as {_odd_value(y)}; pass "
                            "--task=regression for float targets")
        classes = int(model.output_shape[-1])
        if int(y.max()) >= classes:
            raise DataError(f"{name}: y_{split} has class id {int(y.max())}, but the model "
                            f"gives {classes} logits. Received: output shape "
                            f"{model.output_shape}; give the model one output per class")
        return x.astype(np.float32), y.astype(np.int64)
    return x.astype(np.float32), y.astype(np.float32)


def _odd_value(y):
    bad = y[(np.floor(y) != y) | (y < 0)]
    return float(bad[0]) if len(bad) else float(y[0])
