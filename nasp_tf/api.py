"""The Python API's helpers: a searcher by name on a fresh supernet, and the
(train, validation) batch pairs a searcher's `fit` takes, from arrays."""

import numpy as np

from nasp_tf import spaces
from nasp_tf.cnn import search_model
from nasp_tf.search import registry


def build_searcher(name="nasp", space="darts7", image_shape=(32, 32, 3), num_classes=10,
                   channels=16, cells=8, nodes=4, **kwargs):
    """A CNN searcher by registry name, on a new supernet of `space`.

    Args:
      name: a searcher of `nasp_tf.search.registry.SEARCHERS` ("nasp", "darts1",
        "darts2", "pa", "pa_lazy").
      space: "darts7" or "nasp12" (DARTS searchers add `none` themselves).
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
