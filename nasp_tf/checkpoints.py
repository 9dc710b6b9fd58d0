"""Checkpoints that hold every Keras weight of a model, by its path.

`tf.train.Checkpoint(model=...)` only follows attributes TF can track, and
Keras 3 keeps sublayers in lists TF does not see: such a checkpoint would
silently save a network's classifier and nothing else. Keying every variable
by its Keras path saves them all, and restoring into a model of another
architecture fails loudly instead of half-matching.
"""

import os
import re

import keras
import tensorflow as tf
from absl import logging

from nasp_tf.errors import CheckpointError


def variables_by_path(layer):
    """{sanitised Keras path: variable} for every weight of `layer`."""
    table = {}
    for variable in layer.weights:
        key = variable.path.replace("/", ".")
        if key in table:
            raise ValueError(f"two weights share the path {variable.path!r}; give the layers "
                             "distinct names")
        table[key] = variable
    return table


def _tf_variable(variable):
    """The tf.Variable (a distributed one under a strategy) of a Keras variable."""
    return variable.value if isinstance(variable, keras.Variable) else variable


def _is_on_read(variable):
    value = _tf_variable(variable)
    return (getattr(value, "synchronization", None) == tf.VariableSynchronization.ON_READ
            and getattr(value, "aggregation", None) == tf.VariableAggregation.MEAN)


class _OnReadPack:
    """The replica-averaged values of a list of on-read variables (batch-norm
    statistics), read in one collective per dtype.

    A checkpoint saves an on-read variable as its mean over the replicas,
    and TensorFlow reads each one with a collective of its own (1,174 of
    them for the image supernet: most of a checkpoint's time on a cluster). Here every variable's replica-local value
    is concatenated, averaged over the replicas at once and sliced: the same
    values, saved under the same keys. Each save reads the pack once (its
    members are served in turn; the next request after all of them starts
    a new read); every worker serves its members in the same order, so the
    collectives match.
    """

    def __init__(self, variables, strategy):
        self.variables = list(variables)
        self.strategy = strategy
        self._values, self._served = None, 0

    def value_of(self, index):
        if self._values is None or self._served >= len(self.variables):
            self._values, self._served = self._read(), 0
        self._served += 1
        return self._values[index]

    def _read(self):
        values = [None] * len(self.variables)
        by_dtype = {}
        for i, variable in enumerate(self.variables):
            by_dtype.setdefault(variable.dtype, []).append(i)
        for indices in by_dtype.values():
            members = [self.variables[i] for i in indices]
            with self.strategy.scope():
                # In a replica context an on-read variable reads the replica's own copy.
                local = self.strategy.run(lambda members=members: tf.concat(
                    [tf.reshape(tf.convert_to_tensor(v), [-1]) for v in members], 0))
                packed = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, local, axis=None)
            sizes = [int(tf.size(v)) for v in members]
            for i, part, member in zip(indices, tf.split(packed, sizes), members):
                values[i] = tf.reshape(part, member.shape)
        return values


class _PackedOnRead(tf.__internal__.tracking.Trackable):
    """One on-read variable in a checkpoint, read through its `_OnReadPack`
    and restored into every replica's copy; saved under the key a variable
    has, so checkpoints are the same either way."""

    def __init__(self, pack, index):
        self._pack, self._index = pack, index
        self._variable = pack.variables[index]

    def _serialize_to_tensors(self):
        return {"VARIABLE_VALUE": self._pack.value_of(self._index)}

    def _restore_from_tensors(self, restored_tensors):
        return self._variable.assign(restored_tensors["VARIABLE_VALUE"])


def _packed_on_read(table):
    """`table` ({key: variable}) with its on-read variables saved through one
    `_OnReadPack` (under a distribution strategy only: else they are plain)."""
    if not tf.distribute.has_strategy():
        return table
    keys = [k for k, v in table.items() if _is_on_read(v)]
    if not keys:
        return table
    pack = _OnReadPack([_tf_variable(table[k]) for k in keys], tf.distribute.get_strategy())
    packed = dict(table)
    for index, key in enumerate(keys):
        packed[key] = _PackedOnRead(pack, index)
    return packed


def seed_states(layer):
    """{seed_generator_i: state} of the random-number generators of `layer`'s
    dropout layers, in construction order (their paths are not unique)."""
    states = [v for v in layer.variables if v.path.endswith("seed_generator_state")]
    return {f"seed_generator_{i}": v for i, v in enumerate(states)}


def make_checkpoint(layer, **trackables):
    """A tf.train.Checkpoint of all of `layer`'s weights, the states of its
    random-number generators (a resumed run draws the same dropout masks as
    an uninterrupted one), the hidden states a language model carries from
    one BPTT chunk to the next (`layer.carried_states()`, if it has them: a
    run resumed inside an epoch goes on from them), `trackables`
    (optimizers) and the position reached: `epoch` (epochs done) and `step`
    (steps done in the next epoch)."""
    carried = layer.carried_states() if hasattr(layer, "carried_states") else {}
    return tf.train.Checkpoint(
        weights=_packed_on_read(variables_by_path(layer)), seeds=seed_states(layer),
        carried=carried,
        epoch=tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch"),
        step=tf.Variable(0, dtype=tf.int64, trainable=False, name="step"), **trackables)


def manager_for(checkpoint, run_dir):
    return tf.train.CheckpointManager(checkpoint, _directory(run_dir), max_to_keep=2)


def _directory(run_dir):
    return os.path.join(run_dir, "checkpoints")


def exists(run_dir):
    """Whether `run_dir` holds any checkpoint (intact or not)."""
    return bool(_numbered(_directory(run_dir)))


def _numbered(directory):
    """[(number, prefix)] of the checkpoints in `directory`, newest first, read
    from the files themselves: the manager's `checkpoint` state file may be
    the damaged one."""
    found = []
    for name in tf.io.gfile.listdir(directory) if tf.io.gfile.isdir(directory) else ():
        match = re.fullmatch(r"ckpt-(\d+)\.index", name)
        if match:
            found.append((int(match.group(1)), os.path.join(directory, name[:-len(".index")])))
    return sorted(found, reverse=True)


def newest(run_dir):
    """(name, bytes on disk) of the newest complete checkpoint in `run_dir`,
    or None (a save the storage refused leaves only a ckpt-N_temp directory)."""
    found = _numbered(_directory(run_dir))
    if not found:
        return None
    prefix = found[0][1]
    size = sum(tf.io.gfile.stat(path).length for path in tf.io.gfile.glob(prefix + ".*"))
    return os.path.basename(prefix), size


def _restore(checkpoint, prefix):
    """Restores `prefix` completely or raises; never leaves a half-matched
    restore behind to flood the log with "could not be found" warnings."""
    status = checkpoint.restore(prefix)
    try:
        status.assert_consumed()
    finally:
        status.expect_partial()


def restore_latest(checkpoint, run_dir):
    """Restores the newest intact checkpoint of `run_dir`/checkpoints into
    `checkpoint` (which has `epoch` and `step` variables: the epochs done and
    the steps done in the next one) and returns (epoch, step, its path), or
    (0, 0, None) when there is none.

    A damaged newest checkpoint (truncated, corrupt, its index missing) is
    skipped with one warning line naming it and the one used instead. One
    whose weights are not the network's (other flags, or another nasp_tf
    version's layout) is not restored at all. If none can be restored: a
    one-line CheckpointError, naming a mismatched weight on each side when
    that is the reason.
    """
    candidates = _numbered(_directory(run_dir))
    failures = []
    for _, prefix in candidates:
        # Weights of another network are refused before restoring: a failed
        # restore leaves TF's restore machinery behind, which at exit logs a
        # line per unmatched value (thousands for a supernet).
        mismatch = _mismatch(checkpoint, prefix)
        if mismatch:
            failures.append((prefix, mismatch))
            continue
        try:
            _restore(checkpoint, prefix)
        except Exception as e:  # noqa: BLE001 - any failure to read is a damaged file
            failures.append((prefix, _reason(e)))
            continue
        if failures:
            logging.warning("checkpoint %s is damaged (%s); resuming from %s instead",
                            failures[0][0], failures[0][1], prefix)
        return int(checkpoint.epoch.numpy()), int(checkpoint.step.numpy()), prefix
    if failures:
        prefix, reason = failures[0]
        raise CheckpointError(
            f"cannot resume: no checkpoint in {_directory(run_dir)} can be restored ({prefix}: "
            f"{reason}); if the flags changed, rerun with --flagfile=<run>/flags.txt; if an "
            "older nasp_tf wrote the run, resume it with that version; else add --overwrite "
            "to start again (the old run is moved aside, not deleted)")
    return 0, 0, None


def _mismatch(checkpoint, prefix):
    """Why a readable checkpoint's weights are not `checkpoint`'s (another
    architecture, or a layout of another nasp_tf version), or None."""
    try:
        names = [name for name, _ in tf.train.list_variables(prefix)]
    except Exception:  # noqa: BLE001 - an unreadable file is the damage itself
        return None
    # TF escapes "." as ".." and "/" as ".S" in checkpoint keys.
    saved = {re.sub(r"\.([.S])", lambda m: "." if m.group(1) == "." else "/", n.split("/")[1])
             for n in names if n.startswith("weights/")}
    wanted = set(getattr(checkpoint, "weights", {}) or {})
    only_saved, only_wanted = sorted(saved - wanted), sorted(wanted - saved)
    if not only_saved and not only_wanted:
        return None
    parts = []
    if only_saved:
        parts.append(f"{len(only_saved)} only in the checkpoint, e.g. {only_saved[0]}")
    if only_wanted:
        parts.append(f"{len(only_wanted)} only in this network, e.g. {only_wanted[0]}")
    return "its weights are not this network's: " + "; ".join(parts)


def _reason(error):
    """The first line of a restore failure, short."""
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", str(error)).strip()
    text = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {text[:120]}" if text else type(error).__name__
