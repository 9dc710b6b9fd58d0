"""Side-by-side perplexities of retrained language models (their results.json)."""

import json
import os

from nasp_tf.errors import CompareError


def read_results(run_dir):
    path = os.path.join(run_dir, "results.json")
    try:
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
    except FileNotFoundError:
        raise CompareError(f"{path} does not exist: retrain with bin/train.py first") from None
    except (OSError, json.JSONDecodeError) as e:
        raise CompareError(f"cannot read {path}: {e}") from None
    missing = {"genotype", "parameters", "valid_ppl", "test_ppl"} - set(results)
    if missing:
        raise CompareError(f"{path} lacks {sorted(missing)}")
    return results


def table(run_dirs):
    """The lines of a table: run, genotype, parameters, valid and test perplexity."""
    rows = [(d, read_results(d)) for d in run_dirs]
    width = max([len("run")] + [len(d) for d, _ in rows])
    lines = [f"{'run':<{width}}  {'genotype':<20} {'parameters':>11} {'valid ppl':>10} "
             f"{'test ppl':>10}"]
    for d, r in rows:
        genotype = str(r["genotype"])
        if genotype.endswith(".json"):
            # A searched genotype: name it by its run directory.
            genotype = os.path.basename(os.path.dirname(os.path.abspath(genotype))) or genotype
        lines.append(f"{d:<{width}}  {genotype:<20.20} {r['parameters']:>11,d} "
                     f"{r['valid_ppl']:>10.2f} {r['test_ppl']:>10.2f}")
    return lines
