"""The Python API's helpers: a searcher by name on a fresh supernet (a CNN
cell, or the recurrent cell of a language model), and the (train,
validation) pairs a searcher's `fit` takes, from arrays or token ids."""

import numpy as np

from nasp_tf import config as config_lib
from nasp_tf import spaces
from nasp_tf.cnn import search_model
from nasp_tf.search import registry

_TEXT = config_lib.SearchConfig  # the recurrent model's defaults: DARTS's train_search.py


def build_searcher(name="nasp", space="darts7", image_shape=(32, 32, 3), num_classes=10,
                   channels=16, cells=8, nodes=4, **kwargs):
    """A CNN searcher by registry name, on a new supernet of `space`.

    Args:
      name: a searcher of `nasp_tf.search.registry.SEARCHERS` ("nasp", "darts1",
        "darts2", "pa", "pa_lazy").
      space: "darts7", "nasp12" or "s2" (DARTS searchers add `none` themselves).
      image_shape, num_classes: the data.
      channels, cells, nodes: the supernet (C, layers, intermediate nodes).
      **kwargs: the searcher's own arguments (e.g. eta=0.1 for NASP; order
        is set by the name for DARTS).
    Returns:
      The searcher (a keras.Model, not compiled). Its layers are named
      `supernet` and `searcher`, the names checkpoints of bin/search.py use.
    """
    entry = registry.get(name)
    searcher_class = entry.load("images")
    if searcher_class.searches_none:
        kwargs.setdefault("genotype_space", space)  # DARTS returns cells of `space`
    supernet = search_model.SearchNetwork(
        searcher_class.searched_space(spaces.get_cnn_space(space)), num_classes, channels,
        cells, nodes, tuple(image_shape), name="supernet")
    return searcher_class(supernet, name="searcher", **dict(entry.options), **kwargs)


def search_pairs(x_train, y_train, x_val, y_val, batch_size=64, seed=0, start_step=0):
    """An endless tf.data.Dataset of ((x_train, y_train), (x_val, y_val)) batch
    pairs, each half reshuffled every pass: what a searcher's `fit` takes
    (pass `steps_per_epoch`). `x` are float arrays, [N, H, W, C] images for a
    cell searcher or whatever a `SpaceSearcher`'s model takes (normalised as
    you like); `y` class ids (int64) or, for a regression, float targets
    (float32). `start_step` starts the stream at that pair (a resumed run)."""
    import tensorflow as tf

    from nasp_tf.data import passes

    def half(x, y, offset):
        y = np.asarray(y)
        y = y.astype(np.float32 if y.dtype.kind == "f" else np.int64)
        data = tf.data.Dataset.from_tensor_slices((np.asarray(x, np.float32), y))
        return passes.permuted_passes(data, len(x), seed + offset,
                                      start_step * batch_size).batch(
            batch_size, drop_remainder=True)

    return tf.data.Dataset.zip((half(x_train, y_train, 0), half(x_val, y_val, 1))) \
        .prefetch(tf.data.AUTOTUNE)


def build_text_searcher(name="nasp", vocab_size=10000, units=_TEXT.rnn_units,
                        steps=_TEXT.rnn_steps, dropout=_TEXT.dropout, dropouth=_TEXT.dropouth,
                        dropoutx=_TEXT.dropoutx, dropouti=_TEXT.dropouti,
                        dropoute=_TEXT.dropoute, batch_size=_TEXT.batch_size,
                        bptt=_TEXT.bptt, eval_batch_size=_TEXT.eval_batch_size, seed=0,
                        layer_name=None, **kwargs):
    """A recurrent-cell searcher by registry name, on a new search language model.

    Args:
      name: a searcher of `nasp_tf.search.registry.SEARCHERS` with a text
        version ("nasp", "darts1", "darts2").
      vocab_size: the vocabulary (token ids 0..vocab_size-1).
      units: embedding size = hidden size of the cell.
      steps: intermediate nodes of the cell.
      dropout, dropouth, dropoutx, dropouti, dropoute: DARTS's dropouts (the
        defaults of bin/search.py).
      batch_size, bptt: those of the training pairs (`text_search_pairs`: the
        searcher carries one hidden state per stream).
      eval_batch_size: the streams of `evaluate`'s data.
      seed: seed of the dropout masks and the initial A.
      layer_name: the searcher's Keras name (None: its class's); checkpoints
        key the weights by it.
      **kwargs: the searcher's own arguments (e.g. tar_beta=1e-3, eta for
        NASP; see its class).
    Returns:
      The searcher (a keras.Model, not compiled). Fit it on `text_search_pairs`
      with `nasp_tf.callbacks.ResetStates()` among the callbacks (each epoch
      starts from zero hidden states, as the reference's).
    """
    from nasp_tf.rnn import search_model as rnn_search_model

    entry = registry.get(name)
    searcher_class = entry.load("text")
    model = rnn_search_model.search_language_model(
        vocab_size, units, searcher_class.op_names, steps, dropout, dropouth, dropoutx,
        dropouti, dropoute, seed=seed, batch_norm=searcher_class.cell_batch_norm,
        name="rnn_search_model")
    streams = {"batch_size": batch_size, "search_batch_size": batch_size,
               "eval_batch_size": eval_batch_size, "bptt": bptt}
    if layer_name:
        kwargs["name"] = layer_name
    return searcher_class(model, **dict(entry.options), **{**streams, **kwargs})


def text_search_pairs(train_ids, valid_ids, batch_size=_TEXT.batch_size, bptt=_TEXT.bptt,
                      epochs=1, seed=0):
    """(train chunk, validation chunk) pairs of token ids for a text searcher's
    `fit`, and the steps per epoch: `train_ids` train the weights, `valid_ids`
    the architecture; each is cut into `batch_size` parallel streams, read in
    BPTT chunks of about `bptt` tokens (the search's lengths, drawn from
    (seed, epoch)). Returns (dataset of `epochs` epochs, steps per epoch):
    pass both to `fit(pairs, epochs=epochs, steps_per_epoch=steps)`."""
    from nasp_tf.data import text

    train = text.batchify(np.asarray(train_ids), batch_size)
    search = text.batchify(np.asarray(valid_ids), batch_size)
    steps = text.steps_per_epoch(train, bptt)
    return text.search_pairs(train, search, bptt, steps, 0, epochs, seed), steps
