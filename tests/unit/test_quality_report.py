"""The cell-quality report from rows made up here: a group far above the
random cells is called better, one inside them not distinguishable, one below
them worse; a NASP cell against the cell its search started from."""

import json

import numpy as np

from nasp_tf.bench import quality, quality_report


def rows_of(group, scores, runs=2, start=None):
    rows = []
    for c, score in enumerate(scores):
        for seed in range(runs):
            rows.append({"task": "images", "group": group, "cell": f"{group}_{c}", "fold": 0,
                         "retrain_seed": seed, "metric": score + 0.001 * seed,
                         "parameters": 1000, "test_examples": 1000,
                         "genotype": json.dumps({"cell": f"{group}_{c}"}),
                         "initial_genotype": json.dumps({"cell": f"initial_{c}"})
                         if start else "", "abar_changes_last_epoch": "",
                         "search_seconds": ""})
    return rows


def test_verdicts_follow_the_tests_against_the_random_cells():
    random = list(np.linspace(0.90, 0.95, 10))
    rows = (rows_of("random", random) + rows_of("nasp", [0.97, 0.98, 0.99, 0.975, 0.985])
            + rows_of("darts1", [0.91, 0.93, 0.94, 0.92, 0.935])
            + rows_of("darts2", [0.85, 0.86, 0.84]))
    lines = quality_report.task_lines(rows, "images", quality.TASKS["images"])
    row = {line.split(" | ")[0][2:]: line for line in lines if line.startswith("| ")}
    # Every NASP cell above every random one: the exact p is 1 / C(15, 5).
    assert "better (p = 0.000333)" in row["nasp"] and "| 1.00 |" in row["nasp"]
    assert "not distinguishable" in row["darts1"]
    assert "worse" in row["darts2"] and "| 0.00 |" in row["darts2"]
    # The mean and its bootstrap interval.
    mean = float(np.mean([0.97, 0.98, 0.99, 0.975, 0.985]) + 0.0005)
    assert f"| {mean:.4f} |" in row["nasp"]
    low, high = row["nasp"].split("[")[1].split("]")[0].split(", ")
    assert float(low) < mean < float(high)
    # The noise lines: retraining noise is the seed-to-seed sd (0.001 apart).
    noise = next(line for line in lines if "retraining noise" in line)
    assert f"{np.std([0.0, 0.001], ddof=1):.5f}" in noise


def test_nasp_cells_are_paired_with_the_cells_they_started_from():
    rows = (rows_of("random", list(np.linspace(0.90, 0.95, 10)))
            + rows_of("nasp", [0.96, 0.97, 0.94], start=True)
            + [dict(r, group="initial", cell=f"initial_{i}",
                    genotype=json.dumps({"cell": f"initial_{i}"}))
               for i, r in enumerate(rows_of("initial", [0.95, 0.95, 0.95], runs=1))])
    lines = quality_report.task_lines(rows, "images", quality.TASKS["images"])
    paired = next(line for line in lines if "started from" in line)
    assert "better in 2 of 3" in paired and "p = 0.5" in paired


def test_image_sampling_error_measures_the_images_part_not_the_networks_noise():
    # Each image i has a true accuracy q_i for the cell; a network gets it
    # right with probability q_i. The test images' part of a cell's score
    # variance is Var(q) / images (folds of equal size averaged); the
    # binomial p(1 - p) / images also holds the networks' own randomness.
    rng = np.random.default_rng(0)
    folds, per_fold, cells = 2, 4000, 6
    rows, exact = [], []
    for c in range(cells):
        q = rng.beta(2.0, 0.3, size=(folds, per_fold))
        exact.append(sum(np.var(q[f]) / per_fold for f in range(folds)) / folds ** 2)
        for f in range(folds):
            for seed in range(2):
                correct = (rng.random(per_fold) < q[f]).astype(int)
                rows.append({"task": "images", "group": "random", "cell": f"c{c}", "fold": f,
                             "retrain_seed": seed, "metric": float(correct.mean()),
                             "correct": list(correct), "test_examples": per_fold})
    groups = quality_report.cells_of(rows, "images")
    measured = quality_report.image_sampling_error(groups)
    assert abs(measured / np.sqrt(np.mean(exact)) - 1) < 0.15
    binomial = quality_report.sampling_error(groups, "images")
    assert measured < 0.8 * binomial
    # Without per-image results (one network per fold, or none): no measurement.
    for r in rows:
        r["correct"] = None
    assert quality_report.image_sampling_error(groups) is None
