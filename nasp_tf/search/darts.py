"""DARTS, first and second order, over the same supernet (Liu et al., ICLR 2019)."""

import tensorflow as tf

from nasp_tf import genotype as genotype_lib
from nasp_tf import optimizers as optimizers_lib
from nasp_tf import proximal
from nasp_tf.search import base


class DARTSSearcher(base.CNNSearcher):
    """DARTS: every edge mixes all its ops with softmax(A) (`none` included).

    One `train_step` on a (train batch, validation batch) pair:
      1. an Adam step on A along the gradient of the validation loss: at the
         current w (`order=1`), or through one unrolled SGD step
         w' = w - xi * (momentum * m + grad L_train(w) + l2 * w), with the
         finite-difference Hessian-vector product of the DARTS code
         (`order=2`, docs/reference.md §4.3; xi is the weight learning rate);
      2. an SGD step on w through the whole mixture.
    The discrete architecture (validated, returned as the genotype) is DARTS's
    rule: per node the two edges with the largest non-`none` probability,
    each with its most probable non-`none` op.

    Second order runs the unrolled passes at substituted weights
    (`base.weights_at`), so it runs on any number of replicas.

    Args:
      supernet: a `SearchNetwork` whose space has `none` as column 0
        (`spaces.with_none`).
      order: 1 or 2.
      genotype_space: the space name written in genotypes (the space without
        `none`; defaults to the supernet's).
      **kwargs: `CNNSearcher` arguments (grad_clip).
    Reference: Liu, Simonyan, Yang, "DARTS: Differentiable Architecture
      Search", ICLR 2019.
    """

    # 1e-3 * N(0, 1), as DARTS. A config, not an instance: each searcher gets a
    # new initializer, whose seed comes from the run's --seed (an instance made
    # at import draws its seed before the seed is set, so A differed between
    # processes).
    arch_initializer = {"class_name": "RandomNormal", "config": {"stddev": 1e-3}}
    arch_is_logits = True
    searches_none = True

    @classmethod
    def settings(cls, config):
        # DARTS derives its genotype its own way: no `derive`.
        return {"genotype_space": config.space, "grad_clip": config.grad_clip}

    def __init__(self, supernet, order=1, genotype_space=None, **kwargs):
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2. Received: order={order}")
        for kind in base.CELL_KINDS:
            if supernet.space.ops(kind)[0] != "none":
                raise ValueError("DARTS needs `none` as the first op of both cells (use "
                                 f"spaces.with_none). Received: space={supernet.space.name}")
        super().__init__(supernet, **kwargs)
        self.order = order
        self.genotype_space = genotype_space or supernet.space.name

    def mixture(self, arch_matrices=None):
        """{kind: (softmax(A), argmax)}, the weights of the dense supernet."""
        arch_matrices = arch_matrices or self.arch_vars
        return {kind: (tf.nn.softmax(a, axis=-1), tf.argmax(a, axis=-1, output_type=tf.int32))
                for kind, a in arch_matrices.items()}

    def discrete_arch(self):
        # DARTS's genotype rule is prox_c1's edge ranking applied to the
        # probabilities with `none` masked out. A kept op gets weight 1, as in
        # the network the genotype describes: the mixture sum_k p_k op_k is on
        # the scale of one op, so p_k alone would shrink every edge ~8-fold.
        arch = {}
        for kind, var in self.arch_vars.items():
            probs = tf.nn.softmax(var, axis=-1)
            usable = tf.concat([tf.zeros_like(probs[:, :1]), probs[:, 1:]], axis=1)
            arch[kind] = proximal.prox_c1(usable, self.supernet.node_sizes, 2)
        return arch

    def network_loss(self, images, labels, arch_matrices=None):
        logits = self.supernet(images, self.mixture(arch_matrices), mode="dense", training=True)
        return self.mean_loss(labels, logits), logits

    def arch_gradient(self, images, labels):
        """dL_val(w, softmax(A)) / dA at the current weights, and the logits."""
        matrices = {k: tf.convert_to_tensor(v) for k, v in self.arch_vars.items()}
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(list(matrices.values()))
            loss, logits = self.network_loss(images, labels, matrices)
        return self.gradients(tape, loss, [matrices[k] for k in base.CELL_KINDS]), logits

    def second_order_gradient(self, train, val):
        """DARTS's unrolled gradient with respect to A (`unrolled_arch_gradient`
        through the softmax mixture), and the validation logits."""
        matrices = [tf.convert_to_tensor(self.arch_vars[k]) for k in base.CELL_KINDS]

        def loss_at(batch, inputs):
            return self.network_loss(*batch, dict(zip(base.CELL_KINDS, inputs)))

        return self.unrolled_arch_gradient(train, val, matrices, loss_at)

    def update_arch(self, train, val):
        if self.order == 1:
            grads, logits = self.arch_gradient(*val)
        else:
            grads, logits = self.second_order_gradient(train, val)
        grads = optimizers_lib.all_reduce_sum(grads)
        self.apply_if_finite(self.arch_optimizer, grads,
                             [self.arch_vars[k] for k in base.CELL_KINDS])
        self.arch_loss.update_state(base.per_example_loss(val[1], logits))
        self.arch_accuracy.update_state(val[1], logits)

    def update_weights(self, images, labels):
        self.weight_step(images, labels, self.mixture(), mode="dense")

    def genotype(self):
        arch = {kind: (a, None) for kind, (a, _) in self.arch_numpy().items()}
        found = genotype_lib.derive_cnn_genotype(
            self.supernet.space, arch, self.supernet.num_nodes, "softmax")
        return genotype_lib.CNNGenotype(self.genotype_space, found.normal, found.normal_concat,
                                        found.reduce, found.reduce_concat)
