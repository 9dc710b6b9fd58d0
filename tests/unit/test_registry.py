"""Every searcher of the registry loads for every data family it names, takes
its settings from a SearchConfig and builds its architecture optimizer."""

import pytest

from nasp_tf import config
from nasp_tf.search import registry

ENTRIES = [(name, family) for name, entry in registry.SEARCHERS.items()
           for family in entry.families()]


@pytest.mark.parametrize("name,family", ENTRIES, ids=[f"{n}-{f}" for n, f in ENTRIES])
def test_every_entry_loads_and_reads_a_search_config(name, family):
    entry = registry.get(name)
    searcher_class = entry.load(family)
    settings = searcher_class.settings(config.SearchConfig(searcher=name))
    assert isinstance(settings, dict) and settings
    optimizer = searcher_class.arch_optimizer_for(config.SearchConfig(searcher=name), 10)
    assert float(optimizer.learning_rate) > 0
    # The flags only some searchers read are its config's settings with help.
    for flag in entry.flags:
        assert flag in registry.SEARCHER_FLAGS


def test_the_registry_covers_both_families_and_refuses_what_is_missing():
    assert {f for _, f in ENTRIES} == {"images", "text", "space"}
    # The searchers of a space of your own are those SpaceSearcher runs.
    from nasp_tf.search import space
    assert tuple(n for n, f in ENTRIES if f == "space") == space.ALGORITHMS
    with pytest.raises(ValueError, match="no text version"):
        registry.get("pa").load("text")
    with pytest.raises(ValueError, match="Unknown searcher"):
        registry.get("nope")
