"""The searchers, by name: the one table that flags, recipes, the benchmark and
the help read.

This module imports no TensorFlow, so `bin/search.py` validates `--searcher`
(and the flags each searcher takes) before TensorFlow loads. Each entry names
its classes as "module:Class" (the entry-point convention); `load` imports
one. Adding a searcher is one module under `nasp_tf/search/` and one entry
here.
"""

import dataclasses
import importlib

FAMILIES = ("images", "text", "space")
# Settings (flags) that only some searchers read, defined from their fields in
# nasp_tf.config.SearchConfig. Every other search flag applies to all.
# (The Adam flags of A apply to every searcher's flag set: PA's plain step
# ignores them, so that one flagfile serves every searcher.)
SEARCHER_FLAGS = ("eta", "penalize", "prox_value", "derive", "pa_learning_rate", "pa_order",
                  "max_params")
# Of those, what a space of your own reads (`nasp_tf.search.space.SpaceSearcher`
# has no cells to penalise or derive).
SPACE_FLAGS = ("eta", "prox_value", "pa_learning_rate", "pa_order")


@dataclasses.dataclass(frozen=True)
class SearcherEntry:
    """One searcher.

    Args:
      name: the `--searcher` value.
      label: its name in tables.
      summary: one line for the help and the README.
      images: "module:Class" of the image (CNN cell) searcher, or None.
      text: "module:Class" of the recurrent-cell searcher, or None.
      space: "module:Class" of the searcher of a space of your own
        (--space=module:function), or None; it is given the entry's name.
      flags: which of `SEARCHER_FLAGS` it reads.
      options: ((keyword, value), ...) its classes receive beside `settings(config)`
        (one class can serve several entries, e.g. DARTS's two orders).
    """
    name: str
    label: str
    summary: str
    images: str = None
    text: str = None
    space: str = None
    flags: tuple = ()
    options: tuple = ()

    def families(self):
        return tuple(f for f in FAMILIES if getattr(self, f))

    def load(self, family):
        """The searcher class for a family ("images", "text" or "space")."""
        target = getattr(self, family, None) if family in FAMILIES else None
        if not target:
            raise ValueError(f"--searcher={self.name} has no {family} version. Received: "
                             f"family={family!r}; it supports {', '.join(self.families())}")
        module, _, cls = target.partition(":")
        return getattr(importlib.import_module(module), cls)


_SPACE = "nasp_tf.search.space:SpaceSearcher"
_NASP_FLAGS = ("eta", "penalize", "prox_value", "derive", "max_params")
_PA_FLAGS = ("eta", "penalize", "prox_value", "derive", "pa_learning_rate", "pa_order")
SEARCHERS = {entry.name: entry for entry in (
    SearcherEntry("nasp", "NASP", "NASP: gradient at Ā = prox_C1(A), Adam on A, clip to "
                  "[0, 1], weights through the selected ops only",
                  images="nasp_tf.search.nasp:NASPSearcher",
                  text="nasp_tf.search.nasp_rnn:NASPRNNSearcher",
                  space=_SPACE, flags=_NASP_FLAGS),
    SearcherEntry("darts1", "DARTS-1st", "DARTS first order: softmax mixture of every op "
                  "(`none` added), gradient at the current weights",
                  images="nasp_tf.search.darts:DARTSSearcher",
                  text="nasp_tf.search.darts_rnn:DARTSRNNSearcher", space=_SPACE,
                  options=(("order", 1),)),
    SearcherEntry("darts2", "DARTS-2nd", "DARTS second order: the unrolled step with a "
                  "finite-difference Hessian-vector product",
                  images="nasp_tf.search.darts:DARTSSearcher",
                  text="nasp_tf.search.darts_rnn:DARTSRNNSearcher", space=_SPACE,
                  options=(("order", 2),)),
    SearcherEntry("pa", "PA", "the paper's PA-standard (eq. 10): A itself stays discrete, "
                  "A <- prox_C(A - eps grad F(A)), second-order gradient",
                  images="nasp_tf.search.pa:PASearcher", space=_SPACE, flags=_PA_FLAGS),
    SearcherEntry("pa_lazy", "PA-lazy", "the paper's PA-lazy (eq. 11): a plain step on the "
                  "continuous A along grad F at prox_C(A), second-order gradient",
                  images="nasp_tf.search.pa:LazyPASearcher", space=_SPACE, flags=_PA_FLAGS),
    SearcherEntry("random", "random", "the baseline of a space of your own: a uniformly "
                  "random architecture drawn from --seed, its weights trained as NASP's",
                  space=_SPACE),
)}


def get(name):
    if name not in SEARCHERS:
        raise ValueError(f"Unknown searcher. Received: {name!r}; choose one of "
                         f"{', '.join(SEARCHERS)}")
    return SEARCHERS[name]
