"""Reading and writing genotype JSON files (validated by the cnn and rnn modules)."""

import json

from nasp_tf import atomic
from nasp_tf.errors import GenotypeError


def read_json(path):
    """Reads a JSON file, turning every failure into a one-line GenotypeError."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
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

