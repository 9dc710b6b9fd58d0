"""nasp_tf: NASP, "Efficient Neural Architecture Search via Proximal Iterations"
(Yao, Xu, Tu, Zhu, AAAI 2020), in TensorFlow/Keras.

The Python API (each name loads TensorFlow on first use, so `import nasp_tf`
itself is instant):

    searcher = nasp_tf.build_searcher("nasp", space="darts7", image_shape=(8, 8, 3),
                                      num_classes=10, channels=8, cells=5)
    searcher.compile(weight_optimizer=nasp_tf.TorchSGD(0.05, 0.9, 3e-4),
                     arch_optimizer=nasp_tf.TorchAdam(3e-3))
    searcher.fit(nasp_tf.search_pairs(x_train, y_train, x_val, y_val, 32),
                 epochs=10, steps_per_epoch=40)
    genotype = searcher.genotype()
    network = nasp_tf.network_cifar(genotype, num_classes=10, channels=16, layers=8,
                                    auxiliary=False, image_shape=(8, 8, 3))

See examples/search_and_train.py and the README's "Python API".

The Keras classes of saved networks (`FinalNetwork`, the language model) are
registered as soon as Keras is imported, before or after nasp_tf, so that
`keras.saving.load_model("model.keras")` works after a plain `import nasp_tf`.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.3.0"

# name -> module that defines it.
_EXPORTS = {
    "build_searcher": "nasp_tf.api",
    "search_pairs": "nasp_tf.api",
    "build_text_searcher": "nasp_tf.api",
    "text_search_pairs": "nasp_tf.api",
    "SearchNetwork": "nasp_tf.cnn.search_model",
    "network_cifar": "nasp_tf.cnn.model",
    "network_imagenet": "nasp_tf.cnn.model",
    "FinalNetwork": "nasp_tf.cnn.model",
    "FinalTrainer": "nasp_tf.cnn.trainer",
    "TorchSGD": "nasp_tf.optimizers",
    "TorchAdam": "nasp_tf.optimizers",
    "EpochCosineDecay": "nasp_tf.optimizers",
    "export_classifier": "nasp_tf.export",
    "save_keras": "nasp_tf.export",
    "prox_c1": "nasp_tf.proximal",
    "prox_c2": "nasp_tf.proximal",
    "complexity_penalty": "nasp_tf.proximal",
    "CNNGenotype": "nasp_tf.genotype",
    "RNNGenotype": "nasp_tf.genotype",
    "load_cnn_genotype": "nasp_tf.genotype",
    "load_rnn_genotype": "nasp_tf.genotype",
    "write_json": "nasp_tf.genotype",
    "PUBLISHED": "nasp_tf.genotype",
    "SEARCHERS": "nasp_tf.search.registry",
    "Choice": "nasp_tf.choice",
    "InputChoice": "nasp_tf.choice",
    "fix_choices": "nasp_tf.choice",
    "read_choices": "nasp_tf.choice",
    "validate_choices": "nasp_tf.choice",
    "SpaceSearcher": "nasp_tf.search.space",
}
__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nasp_tf' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__


# The modules whose classes a .keras file names; keras.saving finds a class
# only once its module has run `keras.saving.register_keras_serializable`.
_SERIALIZABLE_MODULES = ("nasp_tf.cnn.model", "nasp_tf.rnn.model")


def _register_serializables():
    for module in _SERIALIZABLE_MODULES:
        importlib.import_module(module)


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Imports `_SERIALIZABLE_MODULES` right after Keras finishes importing.

    Importing them here would load TensorFlow with `import nasp_tf` (seconds,
    and the binaries validate their flags without it); Keras loads it anyway.
    The regular finders find Keras; the module they load registers ours once
    it has run. (TensorFlow looks Keras up without importing it: the finder
    stays until Keras is really executed.)
    """

    def __init__(self):
        self._finding = False

    def find_spec(self, name, path=None, target=None):
        if name != "keras" or self._finding:
            return None
        self._finding = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._finding = False
        exec_module = getattr(spec.loader, "exec_module", None) if spec else None
        if exec_module is not None:
            def exec_then_register(module):
                exec_module(module)
                if self in sys.meta_path:
                    sys.meta_path.remove(self)
                _register_serializables()

            spec.loader.exec_module = exec_then_register
        return spec


if "keras" in sys.modules:
    _register_serializables()
elif not any(isinstance(finder, _RegisterAfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())
