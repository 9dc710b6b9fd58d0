"""Retraining a recurrent language model: DARTS's rnn/train.py as a keras.Model,
with the averaged-SGD switch."""

import keras
import tensorflow as tf

from nasp_tf import distribute
from nasp_tf import precision
from nasp_tf.rnn import losses as losses_lib
from nasp_tf.rnn import model as model_lib


class LMTrainer(precision.LossScaling, distribute.StrategyModel):
    """Trains an `RNNModel` on BPTT chunks, carrying the hidden state.

    Each step: NLL + TAR (+ AR) on the chunk, the gradient clipped by global
    norm, the coupled weight decay added, the step scaled by seq_len / bptt
    (DARTS's learning-rate scaling), plain SGD. Once `start_averaging()` has
    been called (the ASGD switch; PyTorch's ASGD with t0 = 0, lambd = 0 is
    exactly this SGD plus a running average of the iterates), every step also
    updates `averages`, the mean of the weights from the switch on; swap them
    in with `swap_averages()` to evaluate or save them.

    Args:
      model: the `RNNModel`.
      batch_size, eval_batch_size: global batch sizes (split across replicas).
      bptt: base sequence length.
      grad_clip: global-norm clip of the gradient.
      weight_decay: coupled L2.
      tar_beta: temporal activation regularisation β (raw outputs).
      ar_alpha: activation regularisation α (dropped outputs).
    Reference: Liu et al., "DARTS", ICLR 2019, rnn/train.py; Merity et al.,
      "Regularizing and Optimizing LSTM Language Models", ICLR 2018 (NT-ASGD).
    """

    def __init__(self, model, batch_size, eval_batch_size, bptt=35, grad_clip=0.25,
                 weight_decay=8e-7, tar_beta=1e-3, ar_alpha=0.0, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.bptt = int(bptt)
        self.grad_clip = float(grad_clip)
        self.weight_decay = float(weight_decay)
        self.tar_beta = float(tar_beta)
        self.ar_alpha = float(ar_alpha)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for name, size in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if size % replicas:
                raise ValueError(f"{name} must be a multiple of the {replicas} replicas. "
                                 f"Received: {name}={size}")
        state = model.cell.state_size
        self.train_hidden = model_lib.replica_state(batch_size // replicas, state, "train_hidden")
        self.eval_hidden = model_lib.replica_state(eval_batch_size // replicas, state,
                                                  "eval_hidden")
        self.averages = [
            self.add_weight(name=f"average_{i}", shape=w.shape, initializer="zeros",
                            trainable=False, aggregation="only_first_replica")
            for i, w in enumerate(model.trainable_weights)]
        self.averaging = self.add_weight(name="averaging", shape=(), initializer="zeros",
                                         trainable=False, aggregation="only_first_replica")
        self.average_count = self.add_weight(name="average_count", shape=(),
                                             initializer="zeros", trainable=False,
                                             aggregation="only_first_replica")
        self.train_loss = keras.metrics.Mean(name="loss")
        self.train_ppl = losses_lib.Perplexity(name="ppl")
        self.built = True

    def compile(self, optimizer, build_optimizer=True, **kwargs):
        kwargs.setdefault("jit_compile", False)
        super().compile(optimizer=optimizer, **kwargs)
        if build_optimizer:  # an evaluation-only trainer needs no slots
            self.optimizer.build(self.model.trainable_weights)

    @property
    def metrics(self):
        return [self.train_loss, self.train_ppl]

    def call(self, tokens, training=False):
        logits, _, _, _ = self.model(tokens, self.model.zero_state(tf.shape(tokens)[0]),
                                     training=training)
        return logits

    def reset_states(self):
        self.train_hidden.assign(tf.zeros(self.train_hidden.shape))

    def carried_states(self):
        """The hidden state carried from one training chunk to the next (checkpointed)."""
        return {"train_hidden": self.train_hidden}

    def evaluate(self, *args, **kwargs):
        self.eval_hidden.assign(tf.zeros(self.eval_hidden.shape))
        return super().evaluate(*args, **kwargs)

    def train_step(self, data):
        inputs, targets = data
        variables = self.model.trainable_weights
        with tf.GradientTape() as tape:
            logits, last, raw, dropped = self.model(inputs, self.train_hidden, training=True)
            losses, loss = losses_lib.training_loss(targets, logits, raw, dropped,
                                                    self.ar_alpha, self.tar_beta)
        grads = losses_lib.step_gradients(self.gradients(tape, loss, variables), variables,
                                          self.grad_clip, self.weight_decay,
                                          tf.shape(inputs)[1], self.bptt)
        self.apply_if_finite(self.optimizer, grads, variables)
        self.train_hidden.assign(tf.stop_gradient(last))
        # ASGD's running mean of the iterates, ax += (w - ax) / steps since the
        # switch; a no-op (rate 0) before it.
        count = self.average_count.assign_add(self.averaging)
        rate = self.averaging / tf.maximum(count, 1.0)
        for average, weight in zip(self.averages, variables):
            average.assign_add(rate * (weight - average))
        self.train_loss.update_state(losses)
        self.train_ppl.update_state(losses)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        inputs, targets = data
        logits, last, _, _ = self.model(inputs, self.eval_hidden, training=False)
        self.eval_hidden.assign(last)
        losses = losses_lib.token_losses(targets, logits)
        self.train_loss.update_state(losses)
        self.train_ppl.update_state(losses)
        return {m.name: m.result() for m in self.metrics}

    @property
    def is_averaging(self):
        return bool(self.averaging.numpy() > 0)

    def start_averaging(self):
        """The ASGD switch: from the next step on, keep the mean of the iterates."""
        self.averaging.assign(1.0)
        self.average_count.assign(0.0)

    def swap_averages(self):
        """Exchanges the weights and their averages (call twice to undo)."""
        for average, weight in zip(self.averages, self.model.trainable_weights):
            current = weight.numpy()
            weight.assign(average.numpy())
            average.assign(current)
