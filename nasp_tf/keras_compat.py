"""The private parts of Keras (and one of TensorFlow) that nasp_tf relies on,
each with why and the upstream issue it works around, and the Keras versions
they were checked on.

`problems()` lists every assumption that no longer holds in the installed
Keras; `tests/unit/test_keras_compat.py` fails on any of them and on a Keras
version not in `CHECKED`, so an upgrade that changes one is seen at once
(check each workaround against the new version, drop those the upstream fix
makes unneeded, then add the version).
"""

import dataclasses
import inspect

# major.minor versions of Keras the workarounds below were checked on.
CHECKED = ("3.15",)


@dataclasses.dataclass(frozen=True)
class Workaround:
    """One private Keras name nasp_tf uses.

    Args:
      name: what is used.
      where: the nasp_tf code that uses it.
      why: the reason, with the upstream issue where there is one.
      holds: () -> bool, whether the name still has the shape nasp_tf expects.
    """
    name: str
    where: str
    why: str
    holds: object


def _parameters(fn):
    return list(inspect.signature(fn).parameters)


def _reduce_per_replica():
    from keras.src.backend.tensorflow import trainer

    return _parameters(trainer.reduce_per_replica)[:3] == ["values", "strategy", "reduction"]


def _maybe_symbolic_build():
    import keras

    build = getattr(keras.Model, "_maybe_symbolic_build", None)
    return (build is not None and _parameters(build) == ["self", "iterator", "data_batch"]
            and hasattr(keras.Model, "_symbolic_build"))


def _get_variable_index():
    import keras

    return callable(getattr(keras.optimizers.Optimizer, "_get_variable_index", None))


def _variable_creator_initial_value():
    from tensorflow.python.distribute import collective_all_reduce_strategy as collective

    extended = collective.CollectiveAllReduceExtended
    return _parameters(extended._get_variable_creator_initial_value)[:4] == [
        "self", "replica_id", "device", "primary_var"]


def _symbolic_build():
    import keras

    return _parameters(keras.Model._symbolic_build)[:3] == ["self", "iterator", "data_batch"]


def _flatten_layers():
    import keras

    return _parameters(keras.layers.Layer._flatten_layers)[:3] == [
        "self", "include_self", "recursive"]


def _stored_value():
    import keras
    from keras.src.backend.common.stateless_scope import get_stateless_scope

    variable = keras.Variable(1.0, autocast=True)
    if not (hasattr(variable, "_value") and variable._value is variable.value
            and get_stateless_scope() is None):
        return False
    with keras.StatelessScope(state_mapping=[(variable, 2.0)]):
        return float(get_stateless_scope().get_current_value(variable)) == 2.0


def stored_value(variable):
    """A Keras variable's value in its own dtype, as the current
    `keras.StatelessScope` maps it if one does (DARTS's unrolled passes run
    at other weights so): inside a mixed-precision layer's call
    `variable.value` is cast to the compute dtype."""
    from keras.src.backend.common.stateless_scope import get_stateless_scope

    scope = get_stateless_scope()
    if scope is not None:
        value = scope.get_current_value(variable)
        if value is not None:
            return value
    return variable._value


WORKAROUNDS = (
    Workaround("keras.src.backend.tensorflow.trainer.reduce_per_replica(values, strategy, "
               "reduction)", "nasp_tf.distribute._reduce_logs_across_workers",
               "fit reduces scalar logs with axis=0 under MultiWorkerMirroredStrategy, which "
               "fails (keras-team/keras#20585)", _reduce_per_replica),
    Workaround("keras.Model._maybe_symbolic_build(iterator, data_batch), _symbolic_build",
               "nasp_tf.distribute.StrategyModel",
               "fit builds the model from a batch reduced over the replicas, which fails in "
               "eager mode under MultiWorkerMirroredStrategy (keras-team/keras#20585)",
               _maybe_symbolic_build),
    Workaround("keras.Model._symbolic_build(iterator, data_batch)",
               "nasp_tf.search.space.SpaceSearcher",
               "under a strategy fit builds the compiled loss and metrics from the first batch "
               "taken as (x, y); a search's batch is a pair of such, so the searcher passes "
               "on its training half", _symbolic_build),
    Workaround("keras.layers.Layer._flatten_layers(include_self, recursive)",
               "nasp_tf.choice.find_decisions",
               "the one way to list every sublayer of a model, in nested models and in "
               "layers of the user's own alike; Keras has no public one", _flatten_layers),
    Workaround("keras.Variable._value, keras.src.backend.common.stateless_scope."
               "get_stateless_scope", "nasp_tf.keras_compat.stored_value "
               "(nasp_tf.choice.SharedRuns)",
               "a Choice's shared trace takes its candidates' weights as tensors in their "
               "own dtype, as a StatelessScope maps them; Variable.value is cast to float16 "
               "inside a mixed-precision layer, and Keras has no public uncast read",
               _stored_value),
    Workaround("keras.optimizers.Optimizer._get_variable_index",
               "nasp_tf.optimizers.TorchSGD, nasp_tf.search.base (DARTS's unrolled step)",
               "the one way to find a variable's momentum slot; Keras has no public one",
               _get_variable_index),
    Workaround("TensorFlow's CollectiveAllReduceExtended._get_variable_creator_initial_value("
               "replica_id, device, primary_var, **kwargs)",
               "nasp_tf.distribute.create_variables_locally",
               "MultiWorkerMirroredStrategy broadcasts each new variable's initial value with "
               "a collective of its own (no option turns it off); nasp_tf sends them all in "
               "one packed collective instead", _variable_creator_initial_value),
)


def problems():
    """The workarounds whose Keras names no longer have the expected shape."""
    found = []
    for workaround in WORKAROUNDS:
        try:
            ok = workaround.holds()
        except (ImportError, AttributeError, ValueError, TypeError) as e:
            ok, workaround = False, dataclasses.replace(workaround, why=f"{workaround.why}; {e}")
        if not ok:
            found.append(f"{workaround.name} (used by {workaround.where}: {workaround.why})")
    return found
