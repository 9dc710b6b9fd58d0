"""Training a final network: main + auxiliary loss, label smoothing, clipping."""

import keras
import tensorflow as tf

from nasp_tf import distribute
from nasp_tf import optimizers as optimizers_lib
from nasp_tf import precision


class FinalTrainer(precision.LossScaling, distribute.StrategyModel):
    """Trains a `FinalNetwork` as the reference does.

    loss = CE(logits) + aux_weight * CE(aux_logits), both with label smoothing
    in training; the gradient is summed over replicas, clipped by its global
    norm, then applied by the optimizer given to `compile` (PyTorch-style SGD).
    Evaluation uses plain cross-entropy. Metrics: loss, top-1, top-5.

    Args:
      network: the `FinalNetwork`.
      aux_weight: weight of the auxiliary loss.
      label_smoothing: epsilon of the smoothed targets (ImageNet: 0.1).
      grad_clip: global-norm clip (0 disables it).
    """

    def __init__(self, network, aux_weight=0.4, label_smoothing=0.0, grad_clip=5.0, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.aux_weight = float(aux_weight)
        self.label_smoothing = float(label_smoothing)
        self.grad_clip = float(grad_clip)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.top1 = keras.metrics.SparseTopKCategoricalAccuracy(1, name="top1")
        self.top5 = keras.metrics.SparseTopKCategoricalAccuracy(
            min(5, network.num_classes), name="top5")
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.top1, self.top5]

    def call(self, images, training=False):
        return self.network(images, training=training)

    def _per_example(self, labels, logits, smoothing):
        onehot = tf.one_hot(tf.cast(labels, tf.int32), self.network.num_classes)
        if smoothing:
            onehot = onehot * (1.0 - smoothing) + smoothing / self.network.num_classes
        return tf.nn.softmax_cross_entropy_with_logits(onehot, logits)

    def train_step(self, data):
        images, labels = data
        weights = self.network.trainable_weights
        with tf.GradientTape() as tape:
            logits, aux_logits = self.network.forward(images, training=True)
            per_example = self._per_example(labels, logits, self.label_smoothing)
            if aux_logits is not None and self.aux_weight:
                per_example += self.aux_weight * self._per_example(labels, aux_logits,
                                                                   self.label_smoothing)
            loss = tf.nn.compute_average_loss(per_example)
        grads = optimizers_lib.global_gradients(self.gradients(tape, loss, weights), weights,
                                                self.grad_clip)
        self.apply_if_finite(self.optimizer, grads, weights)
        self.loss_tracker.update_state(per_example)
        self.top1.update_state(labels, logits)
        self.top5.update_state(labels, logits)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        images, labels = data
        logits = self.network(images, training=False)
        self.loss_tracker.update_state(self._per_example(labels, logits, 0.0))
        self.top1.update_state(labels, logits)
        self.top5.update_state(labels, logits)
        return {m.name: m.result() for m in self.metrics}
