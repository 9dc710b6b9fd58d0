"""Language-model losses and perplexity, shared by recurrent search and retraining."""

import math

import keras
import tensorflow as tf


def token_losses(targets, logits):
    """Per-token negative log-likelihood of `targets` [batch, time] under `logits`."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(targets, tf.int32), logits=logits)


class Perplexity(keras.metrics.Mean):
    """exp of the token-weighted mean NLL (Σ chunk loss · length / Σ length, as
    DARTS's rnn/ code evaluates)."""

    def result(self):
        return tf.exp(tf.minimum(super().result(), 50.0))


def perplexity(loss):
    """exp(loss) on the host, capped to stay finite."""
    return math.exp(min(float(loss), 50.0))
