"""NASP, DARTS and a random baseline over a Keras model with `Choice` and
`InputChoice` decisions (`nasp_tf.choice`): a search space of your own."""

import keras
import numpy as np
import tensorflow as tf

from nasp_tf import choice as choice_lib
from nasp_tf import counting
from nasp_tf import optimizers as optimizers_lib
from nasp_tf import proximal
from nasp_tf.search import base

# The searchers a space of your own runs (the cell searchers' names; the
# registry's entries with a `space` class are these).
ALGORITHMS = ("nasp", "darts1", "darts2", "pa", "pa_lazy", "random")
DARTS = ("darts1", "darts2")
# The proximal-algorithm baselines: a plain step of this size by default.
PA_STEPS = {"pa": 3.0, "pa_lazy": 0.1}


class SpaceSearcher(base.TwoOptimizerModel):
    """Searches the decisions of `model` with one of `ALGORITHMS`.

    It owns one block of A per decision (a Choice: one row, a column per
    candidate; an InputChoice: a row per input) and alternates, as the
    cell searchers do, an architecture step on the validation batch and a
    weight step on the training batch of every ((x, y), (x_val, y_val))
    pair `fit` gives it:

    - "nasp": Ā = prox_C1(A); the gradient of L_val(w, Ā) + eta * R(Ā) with
      respect to Ā, w fixed; an Adam (or any) step on A, clipped to [0, 1];
      then a weight step with only the selected candidates running.
    - "darts1": the softmax of each block of A mixes every candidate
      (inputs); first-order gradient on A, then a weight step on the mixture.
    - "darts2": as darts1 with DARTS's second-order gradient on A, through
      one unrolled weight step (the weight optimizer must be nasp_tf's
      `TorchSGD`, whose step it unrolls).
    - "pa" (the paper's PA-standard, eq. 10): A stays discrete, A <-
      prox_C(A - eps grad F(A)); "pa_lazy" (eq. 11): Ā = prox_C(A), A <- A -
      eps grad F(Ā) on the continuous A. The gradient is DARTS's second-order
      one through an unrolled weight step (`order=2`) or NASP's (`order=1`);
      the step is the arch optimizer's (a plain SGD step of size eps:
      `arch_optimizer_for`); the weight step is NASP's.
    - "random": a uniformly random choice of every decision, drawn from
      `seed`, held fixed; only the weight step runs (the baseline).

    The loss and metrics are the user's, given to `compile` with both
    optimizers: `compile(weight_optimizer=..., arch_optimizer=...,
    loss=..., metrics=[...])`. Validation (`evaluate`, `validation_data`)
    and `predict` run the current discrete architecture.

    Args:
      model: a built Keras model with at least one decision.
      searcher: one of `ALGORITHMS`.
      eta: weight of NASP's complexity penalty R: each candidate costs its
        trainable parameter count, measured from the built layers (per
        decision, relative to the decision's total, as R of a cell).
      keep_value: prox_C1 keeps A's value at the selected entry (the paper)
        instead of 1 (the reference code).
      grad_clip: global-norm clip of the weight gradient (0: none).
      seed: the random baseline's draw (and DARTS's initial noise).
      order: PA's gradient: 2 (second order, the paper) or 1 (NASP's).
      share_traces: Choice layers alike (the same candidate classes and
        configurations but for names, the same shapes) share one trace of
        their candidates, called with each one's own weights
        (`nasp_tf.choice.SharedRuns`): a network of repeated cells then
        compiles its step in seconds instead of minutes. False: every Choice
        traces its own graph.
      **kwargs: `keras.Model` arguments.
    """

    def __init__(self, model, searcher="nasp", eta=0.0, keep_value=False, grad_clip=5.0,
                 seed=0, order=2, share_traces=True, **kwargs):
        kwargs.setdefault("name", "space_searcher")
        super().__init__(**kwargs)
        if searcher not in ALGORITHMS:
            raise ValueError(f"Unknown searcher for a space of your own. Received: "
                             f"searcher={searcher!r}; choose one of {', '.join(ALGORITHMS)}")
        if eta < 0:
            raise ValueError(f"eta must be >= 0. Received: eta={eta}")
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2. Received: order={order}")
        self.order = int(order)
        if not model.built:
            raise ValueError("build the model before searching it (give it a keras.Input, or "
                             f"call it once on a batch). Received: {model.name!r}, not built")
        self.model = model
        self.searcher = searcher
        self.eta = float(eta)
        self.keep_value = bool(keep_value)
        self.grad_clip = float(grad_clip)
        self.seed = int(seed)
        self.shared_runs = choice_lib.SharedRuns() if share_traces else None
        # One layer per decision (its layers: `decision_layers`).
        self.decision_layers = choice_lib.group_decisions(choice_lib.find_decisions(model))
        self.decisions = [layers[0] for layers in self.decision_layers.values()]
        self._all_layers = [layer for layers in self.decision_layers.values()
                            for layer in layers]
        if not self.decisions:
            raise ValueError(f"the model has no Choice or InputChoice layer: nothing to "
                             f"search. Received: {model.name!r}")
        self.arch_is_logits = searcher in DARTS
        # {ranked InputChoice decision: the Choice decisions that rank its inputs}.
        self.ranked = self._ranked_groups()
        rng = np.random.RandomState(self.seed)
        self.arch_vars = {}
        for decision in self.decisions:
            if decision.decision in self.ranked:
                continue  # no rows of its own: its inputs' Choices rank them
            initial = self._initial(decision, rng)
            self.arch_vars[decision.decision] = self.add_weight(
                name=f"arch_{decision.decision}", shape=initial.shape,
                initializer=keras.initializers.Constant(initial), trainable=False,
                constraint=proximal.prox_c2 if searcher == "nasp" else None,
                aggregation="only_first_replica", autocast=False)
        # A shared decision costs what all of its layers' candidates add up to.
        self.op_costs = {
            key: [sum(counting.parameter_count(layer.candidates[k]) for layer in layers)
                  for k in range(layers[0].num_columns)]
            for key, layers in self.decision_layers.items()
            if isinstance(layers[0], choice_lib.Choice)}
        self.train_loss = keras.metrics.Mean(name="loss")
        self.arch_loss = keras.metrics.Mean(name="arch_loss")
        self.abar_changes = keras.metrics.Mean(name="abar_changes")
        self.built = True

    def _ranked_groups(self):
        groups, ranked = {}, {}
        for d in self.decisions:
            if not isinstance(d, choice_lib.InputChoice) or d.ranked_by is None:
                continue
            for name in d.ranked_by:
                layers = self.decision_layers.get(name)
                if not layers or not isinstance(layers[0], choice_lib.Choice):
                    raise ValueError(f"InputChoice {d.name!r} is ranked by {name!r}, which "
                                     f"is no Choice decision of the model. Received: "
                                     f"ranked_by={list(d.ranked_by)}")
                if name in ranked:
                    raise ValueError(f"the Choice decision {name!r} ranks the inputs of two "
                                     f"InputChoice decisions. Received: {ranked[name]!r} and "
                                     f"{d.decision!r}")
                ranked[name] = d.decision
            groups[d.decision] = list(d.ranked_by)
        return groups

    @classmethod
    def settings(cls, config):
        """The keyword arguments a `SearchConfig` gives (beside `searcher`)."""
        return {"eta": config.eta, "keep_value": config.prox_value == "keep",
                "grad_clip": config.grad_clip, "seed": config.seed,
                "order": int(config.pa_order)}

    @classmethod
    def arch_optimizer_for(cls, config, steps_per_epoch):
        """PA's plain step of size --pa_learning_rate (`PA_STEPS` by default);
        the others' the reference's Adam (`TwoOptimizerModel`)."""
        if config.searcher in PA_STEPS:
            rate = config.pa_learning_rate
            return optimizers_lib.TorchSGD(PA_STEPS[config.searcher] if rate is None else rate,
                                           momentum=0.0, l2=0.0)
        return super().arch_optimizer_for(config, steps_per_epoch)

    def _initial(self, decision, rng):
        shape = (decision.num_rows, decision.num_columns)
        if self.searcher == "nasp" or self.searcher in PA_STEPS:
            return np.full(shape, 0.5, np.float32)  # as the reference's cells
        if self.searcher in DARTS:
            return (1e-3 * rng.standard_normal(shape)).astype(np.float32)
        # random: a uniform draw, as a one-hot pattern prox_C1 returns unchanged
        # (of a random height: a ranked InputChoice keeps the highest rows).
        pattern = np.zeros(shape, np.float32)
        if isinstance(decision, choice_lib.Choice):
            pattern[0, rng.randint(shape[1])] = rng.uniform(0.5, 1.0)
        else:
            pattern[rng.choice(shape[0], decision.n_chosen, replace=False), 0] = 1.0
        return pattern

    # The discrete architecture.

    def _keep(self, decision):
        return decision.n_chosen if isinstance(decision, choice_lib.InputChoice) else 1

    def discrete_arch(self):
        """{decision name: (Ā, selected index)} with Ā = prox_C1(A): a Choice
        keeps its largest entry, an InputChoice its `n_chosen` largest rows.
        The Choices that rank an InputChoice's inputs are projected together,
        as a DARTS cell's node: each keeps its largest entry and only the
        `n_chosen` of them with the largest kept entries survive (the others'
        Ā rows are zero, their index the number of candidates); the
        InputChoice itself gets (None, None)."""
        return self._project(self.arch_vars)

    def _project(self, matrices):
        """`discrete_arch` of `matrices` ({decision: A block}); PA-lazy's
        continuous A is clipped to [0, 1] first (prox_C = prox_C1 ∘ prox_C2)."""
        if self.searcher == "pa_lazy":
            matrices = {n: proximal.prox_c2(m) for n, m in matrices.items()}
        arch = {}
        members = {name for names in self.ranked.values() for name in names}
        for d in self.decisions:
            key = d.decision
            if key in self.ranked:
                names = self.ranked[key]
                abar, index = proximal.prox_c1(
                    tf.concat([matrices[n] for n in names], 0), (len(names),),
                    d.n_chosen, self.keep_value)
                for i, name in enumerate(names):
                    arch[name] = (abar[i:i + 1], index[i:i + 1])
                arch[key] = (None, None)
            elif key not in members:
                arch[key] = proximal.prox_c1(matrices[key], (d.num_rows,), self._keep(d),
                                             self.keep_value)
        return arch

    def _indices(self):
        """Each decision's choice: a Choice's candidate index (its largest
        entry when a ranked InputChoice dropped it), an InputChoice's kept
        inputs."""
        arch = self.discrete_arch()
        found = []
        for d in self.decisions:
            if d.decision in self.ranked:
                found.append([i for i, name in enumerate(self.ranked[d.decision])
                              if int(arch[name][1][0]) < self.decision_layers[name][0]
                              .num_columns])
                continue
            index = arch[d.decision][1].numpy()
            if isinstance(d, choice_lib.Choice):
                found.append(int(index[0]) if index[0] < d.num_columns
                             else int(np.argmax(self.arch_vars[d.decision].numpy()[0])))
            else:
                found.append([i for i in range(d.num_rows) if index[i] == 0])
        return found

    def choices(self):
        """{decision name: chosen candidate name (a Choice) or sorted input
        indices (an InputChoice)}: the architecture found, JSON-able."""
        return choice_lib.choices_of(self.decisions, self._indices())

    def write_choices(self, path):
        choice_lib.write_choices(self.choices(), path)

    def export_model(self):
        """The chosen architecture as a plain Keras model with the supernet's
        weights of the chosen candidates (`nasp_tf.choice.export_model`)."""
        return choice_lib.export_model(self.model, self.choices())

    # Running the model under an architecture.

    def _run(self, x, arch, mode, training):
        """The model's output with every decision set to `arch` ({name:
        (coefficients, index)}) in `mode`, reset afterwards."""
        for d in self._all_layers:
            d.setting.mode = mode
            d.setting.weights, d.setting.index = arch[d.decision]
            d.setting.runs = self.shared_runs
        try:
            return self.model(x, training=training)
        finally:
            for d in self._all_layers:
                d.setting.mode = d.setting.weights = d.setting.index = d.setting.runs = None

    def _mixture(self, matrices=None):
        """DARTS's coefficients: the softmax of each decision's block of A
        (or of `matrices`), over its candidates (a Choice) or its inputs (an
        InputChoice)."""
        matrices = matrices or self.arch_vars
        mixture = {}
        for d in self.decisions:
            if d.decision in self.ranked:  # DARTS mixes every input; it derives later
                mixture[d.decision] = (None, None)
                continue
            axis = 1 if isinstance(d, choice_lib.Choice) else 0
            mixture[d.decision] = (tf.nn.softmax(matrices[d.decision], axis=axis), None)
        return mixture

    def call(self, x, training=False):
        return self._run(x, self.discrete_arch(), "discrete", training)

    def _symbolic_build(self, iterator=None, data_batch=None):
        # Under a strategy Keras builds the compiled loss and metrics from the
        # first batch before `fit` trains, as if it were (x, y): a search's
        # batch is a pair ((x, y), (x_val, y_val)), whose training half it is.
        # (keras_compat checks that Keras still has this method.)
        if (not isinstance(self.model.input, (list, tuple, dict))
                and isinstance(data_batch, tuple) and len(data_batch) == 2
                and all(isinstance(half, tuple) and len(half) == 2 for half in data_batch)):
            data_batch = data_batch[0]
        return super()._symbolic_build(iterator=iterator, data_batch=data_batch)

    def network_weights(self):
        return self.model.trainable_weights

    @property
    def _compiled_metrics(self):
        """The metrics given to `compile` (one Keras object), or None."""
        return getattr(self, "_compile_metrics", None)

    @property
    def metrics(self):
        own = [self.train_loss, self.arch_loss, self.abar_changes]
        return own + ([self._compiled_metrics] if self._compiled_metrics is not None else [])

    def _update_compiled_metrics(self, y, y_pred):
        if self._compiled_metrics is not None:
            self._compiled_metrics.update_state(y, y_pred)

    def _loss(self, x, y, y_pred):
        return self.compute_loss(x=x, y=y, y_pred=y_pred, training=True)

    def complexity_penalty(self, abars):
        """R(Ā): every Choice's Ā row weighted by its candidates' parameter
        counts (`nasp_tf.proximal.complexity_penalty`)."""
        terms = [proximal.complexity_penalty(abars[name], costs)
                 for name, costs in self.op_costs.items()]
        return tf.add_n(terms) if terms else tf.constant(0.0)

    # The two steps.

    def update_arch(self, train, val):
        if self.searcher == "random":
            return
        x, y = val
        names = list(self.arch_vars)
        if self.searcher in PA_STEPS and self.order == 2:
            return self._update_arch_pa_second_order(train, val, names)
        if self.searcher == "nasp" or self.searcher in PA_STEPS:
            arch = self.discrete_arch()
            sources = [arch[n][0] for n in names]
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(sources)
                y_pred = self._run(x, arch, "arch", True)
                loss = self._loss(x, y, y_pred)
                if self.eta > 0:
                    # R is the same on every replica: count it once in the sum.
                    loss += self.eta * self.complexity_penalty(
                        {n: arch[n][0] for n in names}) / self._replicas()
        elif self.searcher == "darts2":
            sources = [tf.convert_to_tensor(self.arch_vars[n]) for n in names]

            def loss_at(batch, inputs):
                y_pred = self._run(batch[0], self._mixture(dict(zip(names, inputs))), "dense",
                                   True)
                return self._loss(batch[0], batch[1], y_pred), y_pred

            grads, y_pred = self._unrolled_gradient(train, val, sources, loss_at)
            self._apply(self.arch_optimizer, grads, [self.arch_vars[n] for n in names])
            self.arch_loss.update_state(self._loss(x, y, y_pred))
            return
        else:
            matrices = {n: tf.convert_to_tensor(self.arch_vars[n]) for n in names}
            sources = [matrices[n] for n in names]
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(sources)
                y_pred = self._run(x, self._mixture(matrices), "dense", True)
                loss = self._loss(x, y, y_pred)
        self._apply(self.arch_optimizer, self.gradients(tape, loss, sources),
                    [self.arch_vars[n] for n in names])
        self._keep_pa_discrete()
        self.arch_loss.update_state(loss)

    @staticmethod
    def _replicas():
        return tf.distribute.get_strategy().num_replicas_in_sync

    def _keep_pa_discrete(self):
        """PA-standard's A stays on C: prox_C of the stepped A (the node
        ranks of an InputChoice's Choices taken together)."""
        if self.searcher != "pa":
            return
        projected = self._project({n: proximal.prox_c2(v) for n, v in self.arch_vars.items()})
        for name, variable in self.arch_vars.items():
            variable.assign(projected[name][0])

    def _unrolled_gradient(self, train, val, sources, loss_at):
        """DARTS's second-order gradient with respect to `sources`
        (`base.unrolled_arch_gradient`), which unrolls a `TorchSGD` step."""
        if not isinstance(self.weight_optimizer, optimizers_lib.TorchSGD):
            raise ValueError(f"{self.searcher} unrolls the weight optimizer's step: compile "
                             "with nasp_tf.optimizers.TorchSGD as the weight_optimizer. "
                             f"Received: {type(self.weight_optimizer).__name__}")
        return base.unrolled_arch_gradient(self, self.model.trainable_weights,
                                           self.model.non_trainable_weights, train, val,
                                           sources, loss_at)

    def _update_arch_pa_second_order(self, train, val, names):
        """PA's step along the unrolled (second-order) gradient at Ā, taken
        in the "arch" mode (every entry's gradient, backpropagation through
        the selected candidates), plus eta times R's gradient."""
        arch = self.discrete_arch()
        abars = [arch[n][0] for n in names]

        def loss_at(batch, inputs):
            feed = dict(arch)
            feed.update({n: (a, arch[n][1]) for n, a in zip(names, inputs)})
            y_pred = self._run(batch[0], feed, "arch", True)
            return self._loss(batch[0], batch[1], y_pred), y_pred

        grads, y_pred = self._unrolled_gradient(train, val, abars, loss_at)
        if self.eta > 0:
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(abars)
                penalty = self.eta * self.complexity_penalty(dict(zip(names, abars)))
            extra = tape.gradient(penalty, abars)
            grads = [g if p is None else g + p / self._replicas()
                     for g, p in zip(grads, extra)]
        self._apply(self.arch_optimizer, grads, [self.arch_vars[n] for n in names])
        self._keep_pa_discrete()
        self.arch_loss.update_state(self._loss(val[0], val[1], y_pred))

    def update_weights(self, x, y):
        weights = self.model.trainable_weights
        if self.searcher in DARTS:
            arch, mode = {n: (None if w is None else tf.stop_gradient(w), i) for n, (w, i)
                          in self._mixture().items()}, "dense"
        else:
            arch, mode = self.discrete_arch(), "discrete"
        with tf.GradientTape() as tape:
            y_pred = self._run(x, arch, mode, True)
            loss = self._loss(x, y, y_pred)
        self._apply(self.weight_optimizer, self.gradients(tape, loss, weights), weights,
                    self.grad_clip)
        self.train_loss.update_state(loss)
        self._update_compiled_metrics(y, y_pred)

    def _apply(self, optimizer, grads, variables, clip_norm=0.0):
        """Applies this replica's `grads` (None: zero), clipped by the global
        norm of their sum over the replicas. nasp_tf's optimizers take the
        clipped sum (`global_gradients`, as the cell searchers); Keras's own
        sum what every replica gives them, so they get this replica's share,
        scaled by the factor the sum's norm gives."""
        grads = [tf.zeros(v.shape, v.dtype) if g is None else g
                 for g, v in zip(grads, variables)]
        if not optimizers_lib.sums_over_replicas(optimizer):
            grads = optimizers_lib.global_gradients(grads, variables, clip_norm)
        elif clip_norm > 0:
            scale = optimizers_lib.global_norm_scale(optimizers_lib.all_reduce_sum(grads),
                                                     clip_norm)
            grads = [g * tf.cast(scale, g.dtype) for g in grads]
        self.apply_if_finite(optimizer, grads, variables)

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        self.train_loss.update_state(self._loss(x, y, y_pred))
        self._update_compiled_metrics(y, y_pred)
        return self.get_metrics_result()

