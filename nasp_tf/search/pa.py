"""The NASP paper's two proximal-algorithm baselines (Yao et al., AAAI 2020, §3.2,
Fig. 5): PA-standard (eq. 10) and PA-lazy (eq. 11).

Both take a plain gradient step (learning rate `--pa_learning_rate`, no
momentum, no L2; by default each its own `default_step`) along the gradient of
eq. (6), F = L_val(w*(A), A) + eta R,
with w*(A) approximated by DARTS's one unrolled weight step: "computation of
second-order approximation is still required". `order=1` takes NASP's
first-order gradient instead. The weight step is NASP's.
"""

import tensorflow as tf

from nasp_tf import optimizers as optimizers_lib
from nasp_tf import proximal
from nasp_tf.search import base, nasp


def prox_c(searcher, arch_matrix):
    """prox_C = prox_C1 ∘ prox_C2 (the paper's Prop. 1), with the searcher's settings."""
    return searcher.project(proximal.prox_c2(arch_matrix))


class _ProximalAlgorithm(nasp.NASPSearcher):
    """What PA-standard and PA-lazy share: the step A' = A - eps * grad F at Ā.

    Args:
      supernet: the `SearchNetwork`.
      order: 2 (default: DARTS's unrolled second-order gradient, as the paper
        says PA needs) or 1 (NASP's gradient at Ā with w fixed).
      **kwargs: `NASPSearcher` arguments.
    """

    def __init__(self, supernet, order=2, **kwargs):
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2. Received: order={order}")
        super().__init__(supernet, **kwargs)
        self.order = int(order)

    @classmethod
    def settings(cls, config):
        return {**super().settings(config), "order": int(config.pa_order)}

    # The step size eps when --pa_learning_rate is not given.
    default_step = 0.1

    @classmethod
    def arch_optimizer_for(cls, config, steps_per_epoch):
        """The plain step of eqs. (10) and (11): A <- A - eps * grad."""
        rate = config.pa_learning_rate
        return optimizers_lib.TorchSGD(cls.default_step if rate is None else rate,
                                       momentum=0.0, l2=0.0)

    def second_order_gradient(self, train, val):
        """The unrolled gradient of L_val with respect to Ā = prox_C(A)
        (`unrolled_arch_gradient` in the supernet's "arch" mode: exact for
        every entry, backpropagated through the selected ops), and the
        validation logits."""
        arch = self.discrete_arch()
        abars = [arch[kind][0] for kind in base.CELL_KINDS]

        def loss_at(batch, inputs):
            images, labels = batch
            feed = {k: (a, arch[k][1]) for k, a in zip(base.CELL_KINDS, inputs)}
            logits = self.supernet(images, feed, mode="arch", training=True)
            return self.mean_loss(labels, logits), logits

        return self.unrolled_arch_gradient(train, val, abars, loss_at)

    def update_arch(self, train, val):
        if self.order == 1:
            return super().update_arch(train, val)
        grads, logits = self.second_order_gradient(train, val)
        # Summed over the replicas before the penalty, which every replica
        # computes whole.
        grads = optimizers_lib.all_reduce_sum(grads)
        if self.eta > 0:
            abars = [self.discrete_arch()[kind][0] for kind in base.CELL_KINDS]
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(abars)
                penalty = self.eta * self.complexity_penalty(dict(zip(base.CELL_KINDS, abars)))
            # None for a cell the penalty leaves out (--penalize=normal).
            grads = [g if p is None else g + p
                     for g, p in zip(grads, tape.gradient(penalty, abars))]
        self.apply_if_finite(self.arch_optimizer, grads,
                             [self.arch_vars[k] for k in base.CELL_KINDS])
        self.arch_loss.update_state(base.per_example_loss(val[1], logits))
        self.arch_accuracy.update_state(val[1], logits)


class PASearcher(_ProximalAlgorithm):
    """PA-standard, the paper's eq. (10): A <- prox_C(A - eps * grad F(A)).

    A itself stays on the discrete set C: the gradient is taken at A (= Ā),
    the plain step leaves C, and prox_C (the variable's constraint) projects
    it back. A row's selection changes only where eps times the difference
    of two gradient entries exceeds 1, so eps sets how far A moves: at the
    default eps = 3 a digits search changes ~20 entries of Ā per step at
    first and ~3 in its last epoch; at 0.1 (the old default) none after the
    first step, at 1 none after the third epoch, at 10 ~20 per step to the
    end (docs/fidelity.md).
    Same arguments as `_ProximalAlgorithm`.
    Reference: Yao, Xu, Tu, Zhu, "Efficient Neural Architecture Search via
      Proximal Iterations", AAAI 2020, eq. (10).
    """

    default_step = 3.0

    def arch_constraint(self, arch_matrix):
        return prox_c(self, arch_matrix)[0]


class LazyPASearcher(_ProximalAlgorithm):
    """PA-lazy, the paper's eq. (11): Ā = prox_C(A), A <- A - eps * grad F(Ā).

    The step is taken on the continuous A, which is never clipped; Ā projects
    it onto C2 and then C1 each time. Ā follows the ranking of the summed
    gradients, whatever eps, as long as A stays inside [0, 1]; at the default
    eps = 0.1 a digits search changes 0.5-4 entries of Ā per step to its end.
    Same arguments as `_ProximalAlgorithm`.
    Reference: Yao, Xu, Tu, Zhu, "Efficient Neural Architecture Search via
      Proximal Iterations", AAAI 2020, eq. (11).
    """

    arch_constraint = None

    def discrete_arch(self):
        return {kind: prox_c(self, var) for kind, var in self.arch_vars.items()}
