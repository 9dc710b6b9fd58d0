"""Language-model losses, the weight update's gradient and perplexity, shared by
recurrent search and retraining."""

import math

import keras
import tensorflow as tf

from nasp_tf import optimizers


def token_losses(targets, logits):
    """Per-token negative log-likelihood of `targets` [batch, time] under `logits`."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(targets, tf.int32), logits=logits)


def training_loss(targets, logits, raw, dropped, ar_alpha=0.0, tar_beta=0.0):
    """(per-token NLL, the loss a weight step differentiates): the mean NLL plus
    AR on the dropped outputs and TAR on the raw ones (DARTS's rnn/ code),
    divided by the replica count, so that the replicas' gradients sum to the
    gradient of the global mean."""
    losses = token_losses(targets, logits)
    loss = tf.reduce_mean(losses)
    if ar_alpha > 0:
        loss += ar_alpha * tf.reduce_mean(tf.square(dropped))
    if tar_beta > 0:
        loss += tar_beta * tf.reduce_mean(tf.square(raw[:, 1:] - raw[:, :-1]))
    return losses, loss / tf.distribute.get_strategy().num_replicas_in_sync


def step_gradients(grads, variables, grad_clip, weight_decay, seq_len, bptt):
    """DARTS's rnn/ weight update before SGD: the gradient summed over the
    replicas and clipped by global norm, the coupled weight decay added, and
    the whole scaled by seq_len / bptt (the reference scales the learning
    rate by the chunk's length)."""
    grads = optimizers.global_gradients(grads, variables, grad_clip)
    scale = tf.cast(seq_len, tf.float32) / bptt
    return [(g + weight_decay * v) * scale for g, v in zip(grads, variables)]


class Perplexity(keras.metrics.Mean):
    """exp of the token-weighted mean NLL (Σ chunk loss · length / Σ length, as
    DARTS's rnn/ code evaluates)."""

    def result(self):
        return tf.exp(tf.minimum(super().result(), 50.0))


def perplexity(loss):
    """exp(loss) on the host, capped to stay finite."""
    return math.exp(min(float(loss), 50.0))
