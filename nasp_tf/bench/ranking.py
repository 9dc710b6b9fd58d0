"""Does the supernet rank cells as retraining does? (`nasp-bench --ranking`)

A weight-sharing search can only find a better cell if its supernet, with Ā
pinned to a cell, scores cells in the order they score after retraining from
scratch. This check takes the image searches of a finished `--quality` run
(its --output_dir), restores each search's final supernet, pins Ā to every
cell the benchmark retrained (the random cells, the published ones, the
initial cell, every searched cell) and measures the supernet's loss and
accuracy on the search's architecture half (the data its A was stepped on;
batch normalisation uses the statistics of that whole half, since the
running statistics were gathered under other cells). It then compares the
two orders over the random cells:

  - Spearman's rank correlation between the supernet's score (minus its
    loss: what the search minimises) and the cells' retrained scores, with a
    one-sided permutation p-value of "positively correlated";
  - where the searched cell of that search stands in the supernet's order
    among the random cells, and where it stands after retraining.

A search that finds the best cell of its supernet while the supernet's order
is unrelated to the retrained order cannot beat random cells; one whose
supernet orders cells well but that does not find that order's best cell
needs a better search. The report tells the two apart.
"""

import csv
import json
import os

import numpy as np

from nasp_tf.bench import quality_report, stats

# Permutations of the random cells' scores for the rank correlation's p-value.
PERMUTATIONS = 20000


def retrained_cells(output_dir):
    """{cell: (group, genotype: a JSON object or a published name, mean
    retrained score)} of the images task of a --quality run."""
    path = os.path.join(output_dir, "quality.csv")
    if not os.path.exists(path):
        raise RuntimeError(f"--ranking reads {path}, written by a finished "
                                "`bench.py --quality` run; run it first with this --output_dir")
    with open(path, encoding="utf-8") as f:
        rows = [dict(row, metric=float(row["metric"])) for row in csv.DictReader(f)]
    cells = {}
    for group, members in quality_report.cells_of(rows, "images").items():
        for cell, score in quality_report.cell_scores(members).items():
            genotype = members[cell][0]["genotype"]
            cells[cell] = (group, json.loads(genotype) if genotype.startswith("{") else genotype,
                           score)
    return cells


def supernet_scores(search_dir, genotypes):
    """{name: (loss, accuracy)} of the search in `search_dir`'s final
    supernet with Ā pinned to each of `genotypes` ({name: genotype}) that is a
    cell of its space, on the search's architecture half in one batch."""
    import tensorflow as tf

    from nasp_tf import checkpoints, config, proximal, spaces
    from nasp_tf import genotype as genotype_lib
    from nasp_tf.data import images
    from nasp_tf.pipelines import image_search

    settings = config.from_flagfile(config.SearchConfig, os.path.join(search_dir, "flags.txt"))
    source = images.get_source(settings.dataset, settings.data_dir, download=False)
    data = images.search_data(source, settings.batch_size, settings.seed,
                              settings.train_portion, 0, settings.max_examples)
    val_images, val_labels = [], []
    for x, y in data.validation:
        val_images.append(x)
        val_labels.append(y)
    val_images, val_labels = tf.concat(val_images, 0), tf.concat(val_labels, 0)
    searcher, _ = image_search.build_searcher(settings, source.image_shape, source.num_classes,
                                              data.steps_per_epoch)
    checkpoint = checkpoints.make_checkpoint(
        searcher, weight_optimizer=searcher.weight_optimizer,
        arch_optimizer=searcher.arch_optimizer)
    epoch, _, restored = checkpoints.restore_latest(checkpoint, search_dir)
    if restored is None or epoch < settings.epochs:
        raise RuntimeError(f"{search_dir} holds no finished search (epoch {epoch} of "
                           f"{settings.epochs}); finish it with `bench.py --quality` first")
    supernet = searcher.supernet
    sizes = spaces.edges_per_node(supernet.num_nodes)

    @tf.function
    def evaluate(normal, reduce):
        arch = {"normal": proximal.prox_c1(normal, sizes),
                "reduce": proximal.prox_c1(reduce, sizes)}
        # training=True: batch statistics of the whole half (see the module's note).
        logits = supernet(val_images, arch, mode="discrete", training=True)
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
            val_labels, logits, from_logits=True))
        correct = tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                           tf.cast(val_labels, tf.int32))
        return loss, tf.reduce_mean(tf.cast(correct, tf.float32))

    # Batch normalisation's running statistics change under training=True;
    # put them back after every cell so the cells are scored alike.
    state = [(v, v.numpy()) for v in supernet.non_trainable_weights]
    results = {}
    for name, genotype in genotypes.items():
        cell = (genotype_lib.cnn_genotype_from_json(genotype) if isinstance(genotype, dict)
                else genotype_lib.load_cnn_genotype(genotype))
        try:
            matrices = genotype_lib.arch_matrices_of(cell, supernet.space, supernet.num_nodes)
        except genotype_lib.GenotypeError:
            continue  # a cell of another space (the published NASP cell: 12 ops)
        loss, accuracy = evaluate(tf.constant(matrices["normal"]),
                                  tf.constant(matrices["reduce"]))
        results[name] = (float(loss), float(accuracy))
        for variable, value in state:
            variable.assign(value)
    return results


def spearman(x, y):
    """Spearman's rank correlation of `x` and `y` (average ranks on ties)."""
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt(np.sum(rx ** 2) * np.sum(ry ** 2))
    return float(np.sum(rx * ry) / denominator) if denominator else 0.0


def _ranks(values):
    values = np.asarray(values, np.float64)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(1, values.size + 1)
    for value in np.unique(values):  # ties: their average rank
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman_greater(x, y, seed=0, permutations=PERMUTATIONS):
    """The one-sided permutation p-value of "x and y are positively rank
    correlated": the share of random pairings of y with x whose correlation
    is at least the observed one (the observed pairing counted once)."""
    observed = spearman(x, y)
    rng = np.random.default_rng(seed)
    y = np.asarray(y, np.float64)
    at_least = sum(spearman(x, rng.permutation(y)) >= observed - 1e-12
                   for _ in range(permutations))
    return (at_least + 1) / (permutations + 1)


def _position(value, others):
    """1 + the number of `others` strictly above `value`."""
    return 1 + int(np.sum(np.asarray(others) > value))


def rank_searches(output_dir, higher_is_better=True):
    """Scores every retrained cell in the supernet of every finished image
    search of a --quality run; returns (rows, text of the table)."""
    cells = retrained_cells(output_dir)
    search_root = os.path.join(output_dir, "images", "search")
    searches = sorted(d for d in os.listdir(search_root)
                      if os.path.exists(os.path.join(search_root, d, "genotype.json")))
    genotypes = {cell: genotype for cell, (_, genotype, _) in cells.items()}
    sign = 1.0 if higher_is_better else -1.0
    random_names = [c for c, (group, _, _) in cells.items() if group == "random"]
    retrained_random = [sign * cells[c][2] for c in random_names]
    rows = []
    for search in searches:
        # The cell the search returned, retrained or not (the benchmark names
        # a searched cell after its search).
        with open(os.path.join(search_root, search, "genotype.json"), encoding="utf-8") as f:
            found = json.load(f)
        scored = supernet_scores(os.path.join(search_root, search),
                                 {**genotypes, search: genotypes.get(search, found)})
        supernet_random = [-scored[c][0] for c in random_names]
        searched = search
        row = {"search": search,
               "searched_supernet_loss": scored[searched][0],
               "random_supernet_loss_median": float(np.median([scored[c][0]
                                                               for c in random_names])),
               "rho_loss": spearman(supernet_random, retrained_random),
               "p_loss": spearman_greater(supernet_random, retrained_random),
               "rho_accuracy": spearman([scored[c][1] for c in random_names],
                                        retrained_random),
               "supernet_loss": {c: scored[c][0] for c in scored},
               "supernet_accuracy": {c: scored[c][1] for c in scored}}
        row["searched_supernet_place"] = _position(-scored[searched][0], supernet_random)
        if searched in cells:
            row["searched_retrained_place"] = _position(sign * cells[searched][2],
                                                        retrained_random)
        rows.append(row)
    return rows, table(rows, len(random_names))


def table(rows, random_count):
    """The report's Markdown table."""
    lines = [
        f"| search | Spearman ρ, supernet −loss vs retrained ({random_count} random cells) "
        "| one-sided p (permutation) | ρ with supernet accuracy | supernet loss: the searched "
        "cell | the random cells (median) | the searched cell's place among the random "
        "cells: in the supernet | after retraining |",
        "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        retrained = r.get("searched_retrained_place")
        lines.append(
            f"| {r['search']} | {r['rho_loss']:+.2f} | {r['p_loss']:.3g} | "
            f"{r['rho_accuracy']:+.2f} | {r['searched_supernet_loss']:.3f} | "
            f"{r['random_supernet_loss_median']:.3f} | {r['searched_supernet_place']} of "
            f"{random_count + 1} | "
            f"{f'{retrained} of {random_count + 1}' if retrained else 'not retrained'} |")
    rhos = [r["rho_loss"] for r in rows]
    if rhos:
        low, high = stats.bootstrap_interval(rhos)
        lines.append("")
        lines.append(f"Mean ρ over the {len(rhos)} searches: {np.mean(rhos):+.2f} "
                     f"(95 % bootstrap interval [{low:+.2f}, {high:+.2f}])")
    return "\n".join(lines)


def run_ranking(config):
    """--ranking: prints and writes ranking.md / ranking.json in --output_dir."""
    rows, text = rank_searches(os.path.abspath(config.output_dir))
    print(text)
    with open(os.path.join(config.output_dir, "ranking.md"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    report = {"kind": "ranking", "rows": rows}
    with open(os.path.join(config.output_dir, "ranking.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    return report
