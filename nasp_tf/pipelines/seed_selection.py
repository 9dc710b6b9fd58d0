"""Several seeds, one cell (bin/search.py --search_seeds=K).

Differentiable searches depend on their seed; DARTS's authors ran four and
kept the cell whose short retraining scored best. This does that selection
as a program, and keeps everything it looked at:

    DIR/seed_S/          the search of seed S (an ordinary search run directory)
    DIR/seed_S/select/   its selection retraining (an ordinary retraining run
                         directory, `--select_split`: trained on the training
                         set less its last fraction, scored on that fraction)
    DIR/selection.json   every seed's genotype, parameters and scores
    DIR/selection.md     the same as a table
    DIR/genotype.json    the chosen cell (highest selection top-1, then lowest
                         selection loss), with its pictures

The test set is never read: reported numbers come from retraining the chosen
cell with bin/train.py afterwards. Every part is a run directory of its own,
so the same command again resumes where it stopped (finished parts only
rewrite their outputs).
"""

import json
import os

from absl import logging

from nasp_tf import atomic
from nasp_tf import config as config_lib
from nasp_tf import fs
from nasp_tf import genotype as genotype_lib
from nasp_tf import run_dir
from nasp_tf import shipped
from nasp_tf.pipelines import common
from nasp_tf.pipelines import image_search
from nasp_tf.pipelines import image_train

# Flags of the whole selection, not of its searches.
_SELECTION_FLAGS = ("search_seeds", "select_epochs", "select_split", "output_dir", "seed")
# What a selection retraining takes from the search command (the rest from
# --train_flagfile or bin/train.py's defaults).
_SHARED_SETTINGS = ("dataset", "data_dir", "image_size", "download", "deterministic",
                    "strategy", "cpu_devices", "mixed_precision", "on_nan",
                    "checkpoint_every", "verbose")


def search_flags_text(flags_text, seed, output_dir):
    """The flags of one seed's search: the command's, its seed and directory."""
    lines = [line for line in flags_text.splitlines()
             if line.startswith("--") and run_dir.flag_name(line) not in _SELECTION_FLAGS]
    return "\n".join(lines + [f"--seed={seed}", f"--output_dir={output_dir}"]) + "\n"


def selection_config(config, seed, genotype_path, output_dir):
    """The `TrainConfig` of one seed's selection retraining."""
    base = (config_lib.from_flagfile(config_lib.TrainConfig,
                                     shipped.resolve_flagfile(config.train_flagfile))
            if config.train_flagfile else config_lib.TrainConfig())
    return base.replace(
        **{name: getattr(config, name) for name in _SHARED_SETTINGS}, seed=seed,
        genotype=genotype_path, output_dir=output_dir, epochs=config.select_epochs,
        select_split=config.select_split, export=False, export_tflite=False,
        save_predictions=False, export_only=False, resume=config.resume, overwrite=False)


def config_flags_text(config):
    """A flags record of a config (`--name=value` lines, every field)."""
    lines = []
    for name in sorted(config.fields()):
        value = getattr(config, name)
        if value is None:
            continue
        lines.append(f"--{name}" if value is True else f"--no{name}" if value is False
                     else f"--{name}={value}")
    return "\n".join(lines) + "\n"


def run(config, flags_text=""):
    decision = run_dir.plan(config.output_dir, flags_text, config.resume, config.overwrite)
    moved = run_dir.commit(config.output_dir, decision, flags_text, "search.py")
    if moved:
        logging.info("--overwrite: the earlier run in %s is now in %s", config.output_dir,
                     moved)
    rows = []
    for seed in range(config.seed, config.seed + config.search_seeds):
        search_dir = fs.join(config.output_dir, f"seed_{seed}")
        common.log_to(fs.join(config.output_dir, "log.txt"))
        logging.info("--search_seeds: search %d of %d (seed %d) in %s", seed - config.seed + 1,
                     config.search_seeds, seed, search_dir)
        search_config = config.replace(seed=seed, output_dir=search_dir, search_seeds=1,
                                       overwrite=False)
        genotype = image_search.run(search_config,
                                    search_flags_text(flags_text, seed, search_dir))
        genotype_path = fs.join(search_dir, "genotype.json")
        train_config = selection_config(config, seed, genotype_path,
                                        fs.join(search_dir, "select"))
        scores = image_train.run(train_config, config_flags_text(train_config))
        history = json.loads(fs.read_text(fs.join(search_dir, "history.json")))
        rows.append({"seed": seed, "genotype": genotype.to_json(),
                     "search_val_accuracy": history[-1].get("val_accuracy"),
                     "parameters": json.loads(fs.read_text(fs.join(
                         search_dir, "select", "results.json")))["parameters"],
                     "selection_top1": float(scores["top1"]),
                     "selection_loss": float(scores["loss"])})
    common.log_to(fs.join(config.output_dir, "log.txt"))
    best = max(rows, key=selection_key)
    chosen = genotype_lib.load_cnn_genotype(
        fs.join(config.output_dir, f"seed_{best['seed']}", "genotype.json"))
    report = {"chosen_seed": best["seed"], "select_epochs": config.select_epochs,
              "select_split": config.select_split, "train_flagfile": config.train_flagfile,
              "seeds": rows}
    atomic.write_text(fs.join(config.output_dir, "selection.json"),
                      json.dumps(report, indent=1))
    table = selection_table(report)
    atomic.write_text(fs.join(config.output_dir, "selection.md"), table)
    genotype_lib.write_json(chosen, fs.join(config.output_dir, "genotype.json"))
    genotype_lib.write_cell_pictures(chosen, config.output_dir)
    logging.info("--search_seeds: chose seed %d (selection top-1 %.4f of %s)", best["seed"],
                 best["selection_top1"], ", ".join(f"{r['selection_top1']:.4f}" for r in rows))
    print(table, end="")
    print(f"chosen: seed {best['seed']} (selection top-1 {best['selection_top1']:.4f}); "
          f"genotype in {os.path.join(config.output_dir, 'genotype.json')}")
    return chosen


def selection_key(row):
    """The order of the cells: selection top-1, then (short retrainings of
    easy data often tie at 1.0) the lower selection loss, then the lower seed."""
    return row["selection_top1"], -row["selection_loss"], -row["seed"]


def selection_table(report):
    """selection.md: one row per seed, the chosen one marked."""
    lines = [f"Selection of {len(report['seeds'])} searches: each cell retrained for "
             f"{report['select_epochs']} epoch{'s' if report['select_epochs'] != 1 else ''} on the "
             f"training set less its last "
             f"{report['select_split']:g}, scored on that part (the test set not read).", "",
             "| seed | selection top-1 | selection loss | search val accuracy | parameters "
             "| chosen |", "|---|---|---|---|---|---|"]
    for row in report["seeds"]:
        val = row["search_val_accuracy"]
        lines.append(f"| {row['seed']} | {row['selection_top1']:.4f} | "
                     f"{row['selection_loss']:.4f} | "
                     f"{'—' if val is None else f'{val:.4f}'} | {row['parameters']:,} | "
                     f"{'yes' if row['seed'] == report['chosen_seed'] else ''} |")
    return "\n".join(lines) + "\n"
