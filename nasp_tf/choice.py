"""`Choice` and `InputChoice`: the decisions of a search space of your own.

A Keras model with these layers is a supernet. Each decision is one block
of rows of NASP's architecture matrix A:

- `Choice(candidates)`: one row, one column per candidate layer; the
  discrete architecture Ā = prox_C1(A) selects one candidate;
- `InputChoice(n_chosen)`: one row per input (one column); Ā keeps the
  `n_chosen` strongest inputs and the layer sums them (the two inputs per
  node of a DARTS cell, a skip connection that is there or not).

Outside a search every decision runs a fixed choice (the first candidate,
the first `n_chosen` inputs, or what `fixed` says), so the model is an
ordinary Keras model that builds, summarises and saves. A searcher
(`nasp_tf.search.space.SpaceSearcher`) sets, for one call of the model, the
architecture tensors of every decision and the mode they run in, the three
modes of the CNN supernet (`nasp_tf.cnn.search_model`):

- "discrete": a Choice runs only its selected candidate (`tf.switch_case`),
  forward and backward;
- "arch": the forward value of the discrete model, with the gradient with
  respect to the row that of the mixture sum_k a_k f_k(x) at Ā, while
  backpropagation into the input runs through the selected candidate only;
- "dense": the mixture sum_k a_k f_k(x) itself (DARTS).

The result of a search is {decision name: chosen candidate name, or the
chosen input indices}: `read_choices`/`write_choices` keep it as validated
JSON, `export_model` replaces every decision of a functional model by its
choice, `fix_choices` builds the chosen architecture anew.
"""

import json
import weakref

import keras
import tensorflow as tf
from absl import logging

MODES = ("discrete", "arch", "dense")


class _Setting:
    """What a searcher set for the next call of a decision: the mode, the row
    (or rows) of architecture coefficients, and for a Choice the selected
    candidate. A plain object, so Keras tracks nothing in it."""

    def __init__(self):
        self.mode = None
        self.weights = None
        self.index = None
        self.runs = None  # the searcher's `SharedRuns`, or None: this layer's own graph


def _chosen_index(names, value, what):
    if isinstance(value, str):
        if value not in names:
            raise ValueError(f"{what} names no candidate. Received: {value!r}; the "
                             f"candidates are {list(names)}")
        return names.index(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(names):
        raise ValueError(f"{what} must be a candidate's name or index. Received: {value!r}")
    return value


@keras.saving.register_keras_serializable(package="nasp_tf")
class Choice(keras.layers.Layer):
    """One decision among candidate layers: one row of A.

    Every candidate takes the same input and must give an output of the same
    shape (checked when the layer builds). All candidates are built with the
    layer, so that no branch of the discrete path creates weights.

    Args:
      candidates: a list of Keras layers (or small models), named by their
        layer names, or a dict {name: layer}.
      fixed: the candidate run outside a search (name or index; default the
        first).
      decision: the decision (row of A) this layer stands for, by name;
        Choice layers with one decision are chosen together (the edges of
        every normal cell of a DARTS network share the normal cell's rows).
        Default: the layer's name.
      **kwargs: `keras.layers.Layer` arguments (give a `name`: it is the
        decision's name in the search's result).
    """

    def __init__(self, candidates, fixed=None, decision=None, **kwargs):
        super().__init__(**kwargs)
        self.decision = str(decision) if decision else self.name
        if isinstance(candidates, dict):
            names, layers = [str(n) for n in candidates], list(candidates.values())
        else:
            layers = list(candidates)
            names = [getattr(layer, "name", None) for layer in layers]
        if not layers:
            raise ValueError(f"Choice {self.name!r} needs at least one candidate. "
                             f"Received: {candidates!r}")
        for layer in layers:
            if not isinstance(layer, keras.layers.Layer):
                raise ValueError(f"Choice {self.name!r}: every candidate must be a Keras "
                                 f"layer or model. Received: {layer!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"Choice {self.name!r}: candidate names must be distinct. "
                             f"Received: {names}")
        self.candidate_names = tuple(names)
        self.candidates = layers
        self.fixed = _chosen_index(self.candidate_names, 0 if fixed is None else fixed,
                                   f"Choice {self.name!r}: fixed")
        self.setting = _Setting()

    @property
    def num_rows(self):
        return 1

    @property
    def num_columns(self):
        return len(self.candidates)

    def build(self, input_shape):
        shapes = {}
        for name, layer in zip(self.candidate_names, self.candidates):
            # A symbolic call builds the candidate's weights and gives its shape.
            out = layer(keras.KerasTensor(input_shape, dtype=self.compute_dtype))
            shapes[name] = tuple(out.shape)
        if len(set(shapes.values())) > 1:
            raise ValueError(f"Choice {self.name!r}: the candidates' outputs differ in shape "
                             f"for the input shape {tuple(input_shape)}. Received: {shapes}")
        self._input_tail = tuple(input_shape)[1:]
        self._output_tail = next(iter(shapes.values()))[1:]

    def _run(self, k, x, training):
        return self.candidates[k](x, training=training)

    def call(self, x, training=None):
        setting = self.setting
        if setting.mode is None:
            return self._run(self.fixed, x, training)
        if setting.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}. Received: {setting.mode!r}")
        runs = setting.runs if setting.runs is not None else _OwnRuns()
        if setting.mode == "dense":
            outs, _ = runs.all(self, x, training)
            return tf.tensordot(tf.cast(setting.weights[0], outs.dtype), outs, 1)
        index = setting.index[0]
        row = setting.weights[0]
        # The coefficient of the selected candidate: 1 in the code's prox_C1,
        # A's own value with keep_value.
        scale = tf.reduce_sum(row * tf.one_hot(index, self.num_columns, dtype=row.dtype))
        if setting.mode == "discrete":
            selected, _ = runs.selected(self, index, x, training)
            return tf.cast(scale, selected.dtype) * selected
        # "arch": d/da_k = <dL/dy, f_k(x)> comes from a stopped stack of every
        # candidate (each updates its batch-norm statistics here, once); the
        # selected one runs again for dL/dx, from the state the stack left
        # and leaving it so (a step moves it once, as the CNN supernet's ops).
        outs, read = runs.all(self, x, training)
        outs = tf.stop_gradient(outs)
        selected, _ = runs.selected(self, index, x, training, again=True, read=read)
        scale = tf.cast(scale, selected.dtype)
        # dL/dx flows through the selected candidate alone, the only one with
        # a non-zero a_k.
        mixed = tf.tensordot(tf.cast(row, outs.dtype), outs, 1)
        return mixed + tf.stop_gradient(scale) * (selected - tf.stop_gradient(selected))

    def _branches(self, x, training, run):
        branches = [lambda k=k: run(k, x, training) for k in range(self.num_columns)]
        # Index `num_columns`: the edge is pruned (an InputChoice ranked by it
        # dropped it) and computes nothing.
        branches.append(lambda: self._nothing(x))
        return branches

    def _run_again(self, k, x, training):
        """Candidate k run a second time in one step (for its gradient): its
        non-trainable state (batch-norm statistics, seeds) is put back as it
        was."""
        if not training:
            return self._run(k, x, training)
        state = self.candidates[k].non_trainable_variables
        saved = [tf.identity(v) for v in state]
        with tf.control_dependencies(saved):
            out = self._run(k, x, training)
        with tf.control_dependencies([out]):
            restored = [v.assign(value) for v, value in zip(state, saved)]
        with tf.control_dependencies(restored):
            return tf.identity(out)

    def _nothing(self, x):
        tail = getattr(self, "_output_tail", None)
        if tail is None or any(d is None for d in tail):
            return tf.zeros_like(self._run(0, x, False))
        return tf.zeros(tf.concat([tf.shape(x)[:1], tf.constant(tail, tf.int32)], 0),
                        self.compute_dtype)

    def choice_of(self, index):
        """The JSON value of a choice: the candidate's name."""
        return self.candidate_names[int(index)]

    def index_of(self, value):
        return _chosen_index(self.candidate_names, value, f"the choice of {self.name!r}")

    def get_config(self):
        config = super().get_config()
        config.update(candidates={name: keras.saving.serialize_keras_object(layer)
                                  for name, layer in zip(self.candidate_names,
                                                         self.candidates)},
                      fixed=self.fixed, decision=self.decision)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["candidates"] = {name: keras.saving.deserialize_keras_object(layer)
                                for name, layer in config["candidates"].items()}
        return cls(**config)


@keras.saving.register_keras_serializable(package="nasp_tf")
class InputChoice(keras.layers.Layer):
    """Chooses `n_chosen` of its inputs and sums them: one row of A per input.

    Called on a list of tensors of one shape. Ā keeps the `n_chosen` inputs
    whose rows of A are largest (the lower input on ties), as prox_C1 keeps
    the strongest incoming edges of a DARTS cell's node.

    Args:
      n_chosen: how many inputs are summed.
      fixed: the input indices used outside a search (default the first
        `n_chosen`).
      decision: the decision (rows of A) this layer stands for, shared by
        the InputChoice layers that name it; default the layer's name.
      ranked_by: the decisions of the Choice layers whose outputs are the
        inputs, in input order. The layer then has no rows of A of its own:
        it keeps the `n_chosen` inputs whose Choice's largest entry of A is
        largest (a dropped input's Choice computes nothing) and sums its
        inputs, as prox_C1 of a DARTS cell keeps two edges per node, ranked
        by their strongest op.
      **kwargs: `keras.layers.Layer` arguments (give a `name`).
    """

    def __init__(self, n_chosen=1, fixed=None, decision=None, ranked_by=None, **kwargs):
        super().__init__(**kwargs)
        self.decision = str(decision) if decision else self.name
        self.ranked_by = None if ranked_by is None else tuple(str(n) for n in ranked_by)
        if isinstance(n_chosen, bool) or not isinstance(n_chosen, int) or n_chosen < 1:
            raise ValueError(f"InputChoice {self.name!r}: n_chosen must be a positive "
                             f"integer. Received: n_chosen={n_chosen!r}")
        self.n_chosen = n_chosen
        self.fixed = None if fixed is None else sorted(int(i) for i in fixed)
        if self.fixed is not None and len(self.fixed) != n_chosen:
            raise ValueError(f"InputChoice {self.name!r}: fixed must name {n_chosen} "
                             f"inputs. Received: fixed={fixed!r}")
        self.num_inputs = None
        self.setting = _Setting()

    @property
    def num_rows(self):
        return self.num_inputs

    @property
    def num_columns(self):
        return 1

    def build(self, input_shape):
        shapes = [tuple(s) for s in input_shape] if isinstance(input_shape, (list, tuple)) \
            and input_shape and isinstance(input_shape[0], (list, tuple)) else None
        if not shapes:
            raise ValueError(f"InputChoice {self.name!r} is called on a list of tensors. "
                             f"Received: input_shape={input_shape}")
        if len(set(shapes)) > 1:
            raise ValueError(f"InputChoice {self.name!r}: the inputs differ in shape. "
                             f"Received: {shapes}")
        if len(shapes) < self.n_chosen:
            raise ValueError(f"InputChoice {self.name!r} chooses {self.n_chosen} of "
                             f"{len(shapes)} inputs. Received: {len(shapes)} inputs")
        self.num_inputs = len(shapes)
        if self.ranked_by is not None and len(self.ranked_by) != self.num_inputs:
            raise ValueError(f"InputChoice {self.name!r}: ranked_by names one Choice decision "
                             f"per input. Received: {len(self.ranked_by)} decisions for "
                             f"{self.num_inputs} inputs")
        if self.fixed is None:
            self.fixed = list(range(self.n_chosen))
        if max(self.fixed) >= self.num_inputs or min(self.fixed) < 0:
            raise ValueError(f"InputChoice {self.name!r}: fixed indices must be inputs. "
                             f"Received: fixed={self.fixed}, inputs={self.num_inputs}")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def call(self, inputs, training=None):
        inputs = list(inputs)
        setting = self.setting
        if setting.mode is None:
            return tf.add_n([inputs[i] for i in self.fixed])
        if self.ranked_by is not None:
            # The Choices that feed it have pruned the dropped inputs to zero,
            # and each one's gradient needs the node's, unscaled.
            return tf.add_n(inputs)
        # Ā (or DARTS's softmax) times the stacked inputs: the gradient with
        # respect to row i is <dL/dy, x_i>, the one into x_i is a_i dL/dy.
        stacked = tf.stack(inputs)
        return tf.tensordot(tf.cast(setting.weights[:, 0], stacked.dtype), stacked, 1)

    def choice_of(self, indices):
        """The JSON value of a choice: the sorted input indices."""
        return sorted(int(i) for i in indices)

    def index_of(self, value):
        if (not isinstance(value, list) or len(value) != self.n_chosen
                or any(isinstance(i, bool) or not isinstance(i, int) for i in value)
                or len(set(value)) != len(value)
                or any(not 0 <= i < (self.num_inputs or 0) for i in value)):
            raise ValueError(f"the choice of {self.name!r} must be a list of {self.n_chosen} "
                             f"distinct input indices below {self.num_inputs}. "
                             f"Received: {value!r}")
        return sorted(value)

    def get_config(self):
        config = super().get_config()
        config.update(n_chosen=self.n_chosen, fixed=self.fixed, decision=self.decision,
                      ranked_by=None if self.ranked_by is None else list(self.ranked_by))
        return config


DECISIONS = (Choice, InputChoice)


# Running a Choice's candidates in a search: in its own graph, or in traces
# that alike Choices share.


class _OwnRuns:
    """A Choice's candidates in its own graph: each Choice traces its own."""

    def all(self, choice, x, training):
        """(every candidate's output, stacked; None): each updates its state."""
        return tf.stack([choice._run(k, x, training) for k in range(choice.num_columns)]), None

    def selected(self, choice, index, x, training, again=False, read=None):
        """(the selected candidate's output, None); `again`: a second run in
        the step, which leaves the state as it found it."""
        run = choice._run_again if again else choice._run
        return tf.switch_case(index, choice._branches(x, training, run)), None


def _without_names(config):
    if isinstance(config, dict):
        return {k: _without_names(v) for k, v in config.items() if k != "name"}
    if isinstance(config, (list, tuple)):
        return [_without_names(v) for v in config]
    return config


def _likeness(choice):
    """What two Choices must have in common to share traces: the layer
    class, the input shape and dtype, and per candidate its class, its
    configuration but for names (so a functional block, whose connections
    name its layers, shares with nothing) and the shapes and dtypes of its
    variables in order. None: the layer cannot say (a candidate without a
    configuration), and shares with nothing."""
    try:
        parts = [choice.compute_dtype, tuple(choice._input_tail)]
        for layer in choice.candidates:
            config = json.dumps(_without_names(layer.get_config()), sort_keys=True,
                                default=repr)
            parts.append((type(layer), config,
                          tuple((tuple(v.shape), str(v.dtype)) for v in layer.trainable_variables),
                          tuple((tuple(v.shape), str(v.dtype))
                                for v in layer.non_trainable_variables)))
    except (NotImplementedError, TypeError, ValueError, AttributeError):
        return None
    return (type(choice), tuple(parts))


class _ReadsOtherVariables(Exception):
    """A candidate read a variable that is not among its weights."""


class _SharedTrace:
    """The two traced runs of Choices alike (`_likeness`), made from the
    first of them, `representative`: every candidate (stacked) and the
    selected one (`tf.switch_case`). Each takes the candidates' weights and
    state as tensors and runs the representative's candidates in a
    `keras.StatelessScope` that maps their variables to them; the new state
    (batch-norm statistics, seeds) comes back as outputs. `updated` holds the
    (candidate, state variable) pairs a run was seen to change."""

    def __init__(self, representative, shared):
        self.layers = list(representative.candidates)
        self.representative = representative
        self.shared = shared
        self.updated = set()
        options = dict(autograph=False, experimental_attributes={"_noinline": True})
        self.all = tf.function(self._all, **options)
        self.selected = tf.function(self._selected, **options)

    def _run(self, k, x, training, weights, state):
        layer = self.layers[k]
        variables = layer.non_trainable_variables
        mapping = list(zip(layer.trainable_variables, weights[k])) + list(zip(variables,
                                                                              state[k]))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            given = [scope.get_current_value(v) for v in variables]
            out = layer(x, training=training)
        new = [scope.get_current_value(v) for v in variables]
        self.updated.update((k, i) for i, (a, b) in enumerate(zip(given, new)) if a is not b)
        return out, new

    def _nothing(self, x, weights, state):
        tail = getattr(self.representative, "_output_tail", None)
        if tail is None or any(d is None for d in tail):
            return tf.zeros_like(self._run(0, x, False, weights, state)[0])
        return self.representative._nothing(x)

    def _check_captures(self):
        # A candidate that reads a variable it does not list would read the
        # representative's in every Choice: such Choices are not shared.
        graph = tf.compat.v1.get_default_graph()
        if any(external.dtype == tf.resource for external, _ in graph.captures):
            raise _ReadsOtherVariables()

    def _all(self, x, weights, state, training):
        self.shared.traces += 1
        outs, new = [], []
        for k in range(len(self.layers)):
            out, values = self._run(k, x, training, weights, state)
            outs.append(out)
            new.append(values)
        self._check_captures()
        return tf.stack(outs), new

    def _selected(self, x, index, weights, state, training):
        self.shared.traces += 1

        def branch(k):
            def run():
                out, values = self._run(k, x, training, weights, state)
                return out, state[:k] + [values] + state[k + 1:]
            return run

        branches = [branch(k) for k in range(len(self.layers))]
        branches.append(lambda: (self._nothing(x, weights, state), state))
        out, new = tf.switch_case(index, branches)
        self._check_captures()
        return out, new


class SharedRuns:
    """Traces of candidate runs that the Choice layers of one searcher share.

    A network of repeated cells holds many Choices over the same candidates
    at the same shapes (an edge of every normal cell of a stage). Traced one
    by one, every candidate of every Choice is a graph of its own in the
    step, twice in NASP's architecture step: tracing the DARTS search
    network took minutes and gigabytes. Here Choices alike (the same layer
    classes and configurations but for names, the same variable shapes, the
    same input shape) call one trace of each run with their own weights and
    state, and assign the state that comes back to their own variables. The
    arithmetic is the layers' own: only where the graph comes from changes.

    A Choice whose candidates cannot say what they are (no `get_config`),
    or one of which reads a variable it does not list among its weights
    (another layer's kernel), runs in its own graph instead.

    `traces` counts the Python traces made (one per kind of Choice, mode and
    shape); `unshared` names the Choices that run in their own graphs.
    """

    def __init__(self):
        self._traces = {}
        # Choice -> its `_likeness`, computed once; held weakly, so a Choice
        # that is gone leaves no entry another object could inherit.
        self._keys = weakref.WeakKeyDictionary()
        self._own = _OwnRuns()
        self.traces = 0
        self.unshared = set()

    def _key(self, choice):
        if choice not in self._keys:
            self._keys[choice] = _likeness(choice)
        return self._keys[choice]

    def _trace(self, choice):
        key = self._key(choice)
        if key is None or self._traces.get(key, 0) is None:
            self.unshared.add(choice.name)
            return None
        found = self._traces.get(key)
        if found is None:
            found = self._traces[key] = _SharedTrace(choice, self)
        return found

    def _unshare(self, choice):
        self._traces[self._key(choice)] = None
        self.unshared.add(choice.name)
        logging.info("Choice %r traces its own graph: a candidate reads a variable that is "
                     "not among its weights", choice.name)

    @staticmethod
    def _values(choice):
        from nasp_tf import keras_compat

        def read(variables):
            return [tf.convert_to_tensor(keras_compat.stored_value(v)) for v in variables]

        return ([read(c.trainable_variables) for c in choice.candidates],
                [read(c.non_trainable_variables) for c in choice.candidates])

    @staticmethod
    def _assign(choice, trace, new):
        for k, i in sorted(trace.updated):
            choice.candidates[k].non_trainable_variables[i].assign(new[k][i])

    def all(self, choice, x, training):
        trace = self._trace(choice)
        if trace is None:
            return self._own.all(choice, x, training)
        weights, state = self._values(choice)
        try:
            outs, new = trace.all(x, weights, state, training)
        except _ReadsOtherVariables:
            self._unshare(choice)
            return self._own.all(choice, x, training)
        self._assign(choice, trace, new)
        return outs, (weights, new)

    def selected(self, choice, index, x, training, again=False, read=None):
        """`read`: the (weights, state) an `all` of this step left, so that
        the second run reads nothing again; None: read the variables."""
        trace = self._trace(choice)
        if trace is None:
            return self._own.selected(choice, index, x, training, again)
        if read is None:
            weights, current = self._values(choice)
        else:  # the state as read, not differentiated, as the variables would be
            weights, current = read[0], tf.nest.map_structure(tf.stop_gradient, read[1])
        try:
            out, new = trace.selected(x, index, weights, current, training)
        except _ReadsOtherVariables:
            self._unshare(choice)
            return self._own.selected(choice, index, x, training, again)
        if not again:
            self._assign(choice, trace, new)
        return out, new


def find_decisions(model):
    """Every `Choice` and `InputChoice` layer in `model` (built), in the order
    Keras lists its layers; their names must be distinct."""
    found, seen = [], set()
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, DECISIONS) and id(layer) not in seen:
            seen.add(id(layer))
            found.append(layer)
    names = [d.name for d in found]
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"decision layer names must be distinct. Received: {duplicated} "
                         "more than once")
    return found


def _signature(layer):
    if isinstance(layer, Choice):
        return ("Choice", layer.candidate_names)
    return ("InputChoice", layer.num_inputs, layer.n_chosen, layer.ranked_by)


def group_decisions(layers):
    """{decision: [its layers]} in first-seen order; the layers of one
    decision must be alike (a Choice's candidate names, an InputChoice's
    inputs and n_chosen), else a ValueError names them."""
    groups = {}
    for layer in layers:
        group = groups.setdefault(layer.decision, [])
        if group and _signature(group[0]) != _signature(layer):
            raise ValueError(f"the layers of decision {layer.decision!r} differ: "
                             f"{group[0].name!r} is {_signature(group[0])}, {layer.name!r} "
                             f"is {_signature(layer)}. Received: two unlike layers with "
                             "one decision")
        group.append(layer)
    return groups


def choices_of(decisions, indices):
    """{decision: JSON choice} from each decision's selected index (a Choice)
    or kept inputs (an InputChoice); `decisions` has one layer per decision."""
    return {d.decision: d.choice_of(i) for d, i in zip(decisions, indices)}


def validate_choices(decisions, choices):
    """`choices` checked against the decision layers of a space: {decision:
    value} with a value for every decision and no other key; raises
    ValueError naming the first mismatch."""
    if not isinstance(choices, dict):
        raise ValueError(f"choices must be a JSON object {{decision: choice}}. "
                         f"Received: {type(choices).__name__}")
    representatives = [layers[0] for layers in group_decisions(decisions).values()]
    names = [d.decision for d in representatives]
    unknown = sorted(set(choices) - set(names))
    missing = [n for n in names if n not in choices]
    if unknown:
        raise ValueError(f"the choices name decisions this space does not have: {unknown}; "
                         f"its decisions are {names}")
    if missing:
        raise ValueError(f"the choices miss decisions of this space: {missing}")
    return {d.decision: (d.choice_of(d.index_of(choices[d.decision])) if isinstance(d, Choice)
                         else d.index_of(choices[d.decision])) for d in representatives}


def write_choices(choices, path):
    """Writes `choices` as JSON (atomically)."""
    from nasp_tf import atomic
    atomic.write_text(path, json.dumps(choices, indent=1, sort_keys=True) + "\n")


def read_choices(path):
    """The choices JSON at `path` (a dict; validate it against a space with
    `validate_choices`). Raises ValueError with one line if it is not JSON."""
    from nasp_tf import fs
    if not fs.isfile(path):
        raise ValueError(f"no choices file at {path}. Received: {path!r}")
    text = fs.read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e.msg}, line {e.lineno})") from None


def export_model(model, choices):
    """A plain Keras model of the chosen architecture sharing `model`'s
    weights: every Choice replaced by its chosen candidate, every
    InputChoice by its chosen input (or the sum of them), so no nasp_tf
    layer is left and it saves and loads without nasp_tf. `model` must be
    functional or sequential, decisions may sit in nested functional
    blocks; build a subclassed model with `fix_choices` instead."""
    decisions = find_decisions(model)
    choices = validate_choices(decisions, choices)

    def chosen(layer):
        return layer.candidates[layer.index_of(choices[layer.decision])]

    def call_function(layer, *args, **kwargs):
        if isinstance(layer, Choice):
            return chosen(layer)(*args, **kwargs)
        if isinstance(layer, InputChoice):
            inputs = list(args[0])
            kept = [inputs[i] for i in choices[layer.decision]]
            return kept[0] if len(kept) == 1 else keras.layers.Add(
                name=f"{layer.name}_sum")(kept)
        return layer(*args, **kwargs)

    def clone_function(layer):
        return chosen(layer) if isinstance(layer, Choice) else layer

    try:
        if isinstance(model, keras.Sequential):
            return keras.models.clone_model(model, clone_function=clone_function)
        return keras.models.clone_model(model, clone_function=lambda layer: layer,
                                        call_function=call_function, recursive=True)
    except ValueError as e:
        raise ValueError(f"export_model rebuilds functional and sequential models only "
                         f"({str(e).splitlines()[0]}); build a subclassed model's "
                         "architecture with fix_choices(build_fn, choices). Received: "
                         f"{type(model).__name__}") from None


def fix_choices(build_fn, choices):
    """The chosen architecture built anew for retraining from scratch:
    `build_fn()` returns the space (a model with decisions, fresh weights),
    and the result is `export_model` of it (only the chosen candidates)."""
    return export_model(build_fn(), choices)
