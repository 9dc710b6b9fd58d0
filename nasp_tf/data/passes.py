"""Endless streams of whole passes over a dataset, each a fresh permutation."""

import tensorflow as tf


def permuted_passes(dataset, num_examples, seed, start=0):
    """`dataset` repeated without end, pass number p permuted by the seeds
    (`seed`, p) alone, from element `start` of that stream on (whole passes
    before it are not read at all).

    `dataset.shuffle(reshuffle_each_iteration=True).repeat()` draws every
    pass's order from a seed generator that all iterators of the dataset
    share: the second iterator made on it reads other batches than the
    first. Keras makes one iterator to build a model under a distribution
    strategy before the one that trains, and what the first has drawn when
    it goes is not fixed, so the batches a run trained on could differ
    between two identical runs, and between an uninterrupted run and a
    resumed one. Here every iterator reads the same stream.

    The whole dataset is held as one tensor per component and every pass
    gathers it in a stateless random order (as much memory as the cache of
    the dataset, and one pass more while a pass is read).

    Args:
      dataset: a finite dataset of `num_examples` elements.
      num_examples: its size.
      seed: an int.
      start: the position in the stream to begin at.
    """
    whole = dataset.batch(num_examples).cache()
    seed = tf.constant(seed, tf.int64)

    def one_pass(number):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(num_examples, dtype=tf.int64), tf.stack([seed, number]))

        def sliced(*components):
            element = components[0] if len(components) == 1 else components
            size = tf.shape(tf.nest.flatten(element)[0], out_type=tf.int64)[0]
            # Fewer examples than said would make an endless stream of empty passes.
            with tf.control_dependencies([tf.debugging.assert_equal(
                    size, tf.constant(num_examples, tf.int64),
                    message="permuted_passes: the dataset's size is not num_examples")]):
                order_checked = tf.identity(order)
            return tf.data.Dataset.from_tensor_slices(
                tf.nest.map_structure(lambda c: tf.gather(c, order_checked), element))

        return whole.flat_map(sliced)

    skipped_passes, rest = divmod(start, num_examples)
    return tf.data.Dataset.range(skipped_passes, 2 ** 62).flat_map(one_pass).skip(rest)
