"""Retrained runs side by side (their results.json, written by bin/train.py):
test top-1 of image networks, perplexities of language models."""

import json
import os

from nasp_tf.errors import CompareError

# What each kind of run's results.json must hold.
REQUIRED = {"images": {"genotype", "parameters", "test_top1"},
            "text": {"genotype", "parameters", "valid_ppl", "test_ppl"}}


def read_results(run_dir):
    """(kind, results) of a retraining run: kind "images" or "text"."""
    if not os.path.isdir(run_dir):
        raise CompareError(f"{run_dir} does not exist or is not a directory: give run "
                           "directories of bin/train.py")
    path = os.path.join(run_dir, "results.json")
    try:
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
    except FileNotFoundError:
        raise CompareError(f"{path} does not exist: retrain with bin/train.py first") from None
    except (OSError, json.JSONDecodeError) as e:
        raise CompareError(f"cannot read {path}: {e}") from None
    if not isinstance(results, dict) or not ({"test_top1", "test_ppl"} & set(results)):
        raise CompareError(f"{path} has neither test_top1 (an image run) nor test_ppl "
                           "(a text run)")
    kind = "images" if "test_top1" in results else "text"
    missing = REQUIRED[kind] - set(results)
    if missing:
        raise CompareError(f"{path} lacks {sorted(missing)}")
    return kind, results


def genotype_name(genotype):
    """A published name as it is; a searched genotype's file by its run directory."""
    genotype = str(genotype)
    if genotype.endswith(".json"):
        return os.path.basename(os.path.dirname(os.path.abspath(genotype))) or genotype
    return genotype


def table(run_dirs):
    """The lines of the comparison: a table of the image runs (run, genotype,
    parameters, test top-1), then, after a blank line, one of the text runs
    (run, genotype, parameters, valid and test perplexity); each in the
    order given, a table only when it has runs.

    Args:
      run_dirs: directories of bin/train.py runs, image and text alike.
    """
    rows = [(d, *read_results(d)) for d in run_dirs]
    width = max([len("run")] + [len(d) for d in run_dirs])
    head = f"{'run':<{width}}  {'genotype':<20} {'parameters':>11}"
    sections = []
    images = [(d, r) for d, kind, r in rows if kind == "images"]
    if images:
        sections.append([f"{head} {'test top-1':>10}"] + [
            f"{d:<{width}}  {genotype_name(r['genotype']):<20.20} {r['parameters']:>11,d} "
            f"{r['test_top1']:>10.4f}" for d, r in images])
    text = [(d, r) for d, kind, r in rows if kind == "text"]
    if text:
        sections.append([f"{head} {'valid ppl':>10} {'test ppl':>10}"] + [
            f"{d:<{width}}  {genotype_name(r['genotype']):<20.20} {r['parameters']:>11,d} "
            f"{r['valid_ppl']:>10.2f} {r['test_ppl']:>10.2f}" for d, r in text])
    lines = sections[0]
    for section in sections[1:]:
        lines = lines + [""] + section
    return lines
