"""Reading and writing genotype JSON files (validated by the cnn and rnn modules)."""

import json
import os

from nasp_tf import atomic
from nasp_tf import fs
from nasp_tf.errors import GenotypeError


def read_json(path):
    """Reads a JSON file, turning every failure into a one-line GenotypeError."""
    try:
        if not fs.isfile(path) and not fs.isdir(path):
            raise FileNotFoundError(path)
        return json.loads(fs.read_text(path))
    except FileNotFoundError:
        raise GenotypeError(f"genotype file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GenotypeError(f"cannot read genotype file {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise GenotypeError(f"genotype file {path} is not valid JSON ({e}); "
                            "regenerate it or fix it by hand") from None


def write_json(genotype, path):
    """Writes `genotype` as JSON, atomically: never a half-written genotype."""
    atomic.write_text(path, json.dumps(genotype.to_json(), indent=1) + "\n")



def load(path_or_name, published, from_json, what, elsewhere=()):
    """A genotype by published name (`published`: {name: genotype}) or from a
    JSON file, parsed by `from_json(data, source=path)`; `what` names the
    kind in the error of an unknown name, and `elsewhere` ((names, what they
    are), ...) the published names of the other kind."""
    if path_or_name in published:
        return published[path_or_name]
    for names, kind in elsewhere:
        if path_or_name in names:
            raise GenotypeError(f"{path_or_name} is {kind}: this dataset takes one of "
                                f"{', '.join(sorted(published))} or a {what} JSON file")
    if fs.isdir(path_or_name):
        hint = fs.join(path_or_name, "genotype.json")
        raise GenotypeError(f"{path_or_name} is a directory: give the genotype file in it "
                            f"({hint})" if fs.exists(hint) else
                            f"{path_or_name} is a directory, not a genotype JSON file")
    if not fs.exists(path_or_name) and os.sep not in path_or_name \
            and not path_or_name.endswith(".json"):
        raise GenotypeError(f"unknown {what} {path_or_name!r}: give a JSON file or one of "
                            f"{', '.join(sorted(published))}")
    return from_json(read_json(path_or_name), source=path_or_name)


# Ops without parameters: a cell made mostly of them is the known collapse of
# differentiable search (skip connections win because they train fastest).
PARAMETER_FREE = ("none", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "max_pool_5x5",
                  "max_pool_7x7")


def collapse_note(genotype):
    """One line when `genotype` looks collapsed, else None: a normal cell with
    3 or more parameter-free ops (skips, pools), or a recurrent cell whose
    every node takes the same predecessor (docs/fidelity.md)."""
    if genotype.kind == "cnn":
        free = [op for op, _ in genotype.normal if op in PARAMETER_FREE]
        if len(free) >= 3:
            return (f"the normal cell has {len(free)} parameter-free ops of "
                    f"{len(genotype.normal)} ({', '.join(sorted(set(free)))}): the known "
                    "collapse of differentiable search, expected with a large --eta, else "
                    "search longer or with other seeds (docs/fidelity.md)")
        return None
    predecessors = {source for _, source in genotype.recurrent}
    if len(genotype.recurrent) > 1 and len(predecessors) == 1:
        return (f"every node of the recurrent cell takes state {predecessors.pop()}: a "
                "shallow cell, the known collapse of the recurrent search; search longer or "
                "with other seeds (docs/fidelity.md)")
    return None
