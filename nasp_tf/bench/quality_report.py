"""The cell-quality benchmark's report: per group of cells, n, the mean, a
95 % bootstrap interval and the comparison with the random cells; the
metric's own sampling error next to the random cells' spread; quality.csv,
quality.md and quality.png.

The unit of every comparison is a cell (a genotype): its score is the mean
of its retraining runs, so a searcher's spread is search-to-search, and one
cell's retraining noise is reported apart.
"""

import csv
import datetime
import math
import os
import statistics

import numpy as np

from nasp_tf.bench import stats

ALPHA = 0.05


def cells_of(rows, task):
    """{group: {cell: [its runs' rows]}} of one task, groups in first-seen order."""
    groups = {}
    for r in rows:
        if r["task"] == task:
            groups.setdefault(r["group"], {}).setdefault(r["cell"], []).append(r)
    return groups


def cell_scores(cells):
    """{cell: mean metric of its runs}."""
    return {cell: statistics.mean(r["metric"] for r in runs) for cell, runs in cells.items()}


def verdict(scores, random_scores, higher_is_better):
    """(p-value of "better than random", P(a cell of the group beats a random
    cell), the verdict's words)."""
    sign = 1.0 if higher_is_better else -1.0
    x, y = [sign * s for s in scores], [sign * s for s in random_scores]
    better = stats.mann_whitney_greater(x, y)
    worse = stats.mann_whitney_greater(y, x)
    beats = stats.probability_of_superiority(x, y)
    if better < ALPHA:
        words = f"better (p = {better:.3g})"
    elif worse < ALPHA:
        words = f"worse (p = {worse:.3g} for worse)"
    else:
        words = f"not distinguishable (p = {better:.3g})"
    return better, beats, words


def retraining_noise(groups):
    """The standard deviation of one cell's runs on the same data split
    (retraining seeds), pooled over every cell with two or more: the noise
    of retraining, apart from the cells' differences."""
    squares, dof = 0.0, 0
    for cells in groups.values():
        for runs in cells.values():
            by_fold = {}
            for r in runs:
                by_fold.setdefault(r["fold"], []).append(r["metric"])
            for values in by_fold.values():
                if len(values) > 1:
                    squares += float(np.var(values, ddof=1)) * (len(values) - 1)
                    dof += len(values) - 1
    return math.sqrt(squares / dof) if dof else float("nan")


def sampling_error(groups, task):
    """The standard error of one cell's score that comes from the finite test
    data alone. Images: binomial, over the distinct test images of all its
    splits. Text: the spread of the per-chunk test losses over the chunks,
    carried to the perplexity (exp), divided by sqrt(runs)."""
    errors = []
    for cells in groups.values():
        for runs in cells.values():
            if task == "images":
                p = statistics.mean(r["metric"] for r in runs)
                images = sum({r["fold"]: r["test_examples"] for r in runs}.values())
                errors.append(math.sqrt(max(p * (1 - p), 1e-12) / images))
            else:
                per_run = []
                for r in runs:
                    losses = r.get("chunk_losses") or []
                    if len(losses) > 1:
                        se = statistics.stdev(losses) / math.sqrt(len(losses))
                        per_run.append(r["metric"] * se)
                if per_run:
                    errors.append(statistics.mean(per_run) / math.sqrt(len(per_run)))
    return statistics.median(errors) if errors else float("nan")


def image_sampling_error(groups):
    """The standard error of one cell's score that comes from which images
    are in the test folds, measured from the networks' per-image results
    (rows with `correct`, from test_predictions.json): or None.

    A network's result on image i is the image's difficulty for the cell
    plus the network's own randomness. Only the first part is sampling error
    of the test data (the second is retraining noise, reported apart), and
    it is what two networks of the same cell on the same fold share: the
    covariance across images of their results estimates its variance. A
    cell's score averages its F folds of n images each, so its sampling
    variance is sum_f cov_f / (F**2 n_f); pooled (mean variance) over cells.
    The binomial p(1 - p) / images counts both parts: an upper bound."""
    variances = []
    for cells in groups.values():
        for runs in cells.values():
            by_fold = {}
            for r in runs:
                if r.get("correct") is not None:
                    by_fold.setdefault(r["fold"], []).append(np.asarray(r["correct"], float))
            folds = [v for v in by_fold.values() if len(v) > 1]
            if not folds or len(folds) != len({r["fold"] for r in runs}):
                continue
            variance = 0.0
            for vectors in folds:
                pairs = [float(np.cov(a, b)[0, 1]) for i, a in enumerate(vectors)
                         for b in vectors[i + 1:]]
                variance += statistics.mean(pairs) / len(vectors[0])
            variances.append(variance / len(folds) ** 2)
    if not variances:
        return None
    return math.sqrt(max(statistics.mean(variances), 0.0))


def _mean_or_blank(values, fmt):
    values = [v for v in values if v not in ("", None) and not (
        isinstance(v, float) and math.isnan(v))]
    return fmt.format(statistics.mean(values)) if values else "—"


def task_lines(rows, task, spec):
    """The markdown table and the noise lines of one task (`spec`: its
    `quality.Task`)."""
    groups = cells_of(rows, task)
    if not groups:
        return []
    random_scores = list(cell_scores(groups.get("random", {})).values())
    direction = "higher" if spec.higher_is_better else "lower"
    lines = [f"### {task}: {spec.metric} ({direction} is better)", "",
             "| group | cells | runs | mean | 95 % interval | sd over cells | P(beats random) "
             "| vs random (one-sided Mann–Whitney) | Ā changes per step, last epoch "
             "| parameters | search s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    digits = 4 if spec.higher_is_better else 1
    for group, cells in groups.items():
        scores = list(cell_scores(cells).values())
        runs = [r for c in cells.values() for r in c]
        low, high = stats.bootstrap_interval(scores)
        spread = f"{statistics.stdev(scores):.{digits}f}" if len(scores) > 1 else "—"
        if group == "random" or not random_scores:
            beats, words = "—", "—"
        else:
            _, p_beat, words = verdict(scores, random_scores, spec.higher_is_better)
            beats = f"{p_beat:.2f}"
        changes = _mean_or_blank([r["abar_changes_last_epoch"] for r in runs], "{:.2f}")
        seconds = _mean_or_blank([r["search_seconds"] for r in runs], "{:.0f}")
        params = statistics.mean(r["parameters"] for r in runs)
        lines.append(f"| {group} | {len(scores)} | {len(runs)} | "
                     f"{statistics.mean(scores):.{digits}f} | "
                     f"[{low:.{digits}f}, {high:.{digits}f}] | {spread} | {beats} | {words} | "
                     f"{changes} | {params:,.0f} | {seconds} |")
    lines += paired_with_start(groups, spec.higher_is_better, digits)
    noted = sorted({(r["cell"], r["notes"]) for cells in groups.values()
                    for runs in cells.values() for r in runs if r.get("notes")})
    if noted:
        lines += [""] + [f"- {cell}: {note}" for cell, note in noted]
    spread = statistics.stdev(random_scores) if len(random_scores) > 1 else float("nan")
    noise = retraining_noise(groups)
    error = sampling_error(groups, task)
    measured = image_sampling_error(groups) if task == "images" else None
    bound = ""
    if measured is not None:
        bound = (f"; measured from the networks' per-image results, without the binomial "
                 f"bound's network noise; the binomial bound: {error:.{digits + 1}f}")
        error = measured
    lines += ["", f"- the random cells' spread (sd of their scores): {spread:.{digits + 1}f}",
              f"- one cell's retraining noise (sd of its runs on the same data, pooled): "
              f"{noise:.{digits + 1}f}",
              f"- the sampling error of one cell's score from the finite test data: "
              f"{error:.{digits + 1}f} ({error / spread:.2f} × the random cells' spread{bound})"
              if spread == spread and spread > 0 else
              f"- the sampling error of one cell's score: {error:.{digits + 1}f}", ""]
    return lines


def paired_with_start(groups, higher_is_better, digits):
    """A line comparing each NASP cell with the cell its own search started
    from (the `initial` group), paired by search: the wins and a one-sided
    sign test."""
    if "nasp" not in groups or "initial" not in groups:
        return []
    start_score = {runs[0]["genotype"]: statistics.mean(r["metric"] for r in runs)
                   for runs in groups["initial"].values()}
    sign = 1.0 if higher_is_better else -1.0
    differences = []
    for runs in groups["nasp"].values():
        start = start_score.get(runs[0]["initial_genotype"])
        if start is not None:
            differences.append(sign * (statistics.mean(r["metric"] for r in runs) - start))
    if not differences:
        return []
    wins = sum(d > 0 for d in differences)
    n = len(differences)
    p = sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n
    return ["", f"NASP's cells against the cells their searches started from (paired by "
                f"search): better in {wins} of {n}, mean change "
                f"{sign * statistics.mean(differences):+.{digits}f}; one-sided sign test "
                f"p = {p:.3g}"]


def write_csv(rows, path, columns):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "metric": f"{r['metric']:.6f}"})


def plot(rows, path, tasks):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = {t: spec.metric for t, spec in tasks.items()}
    tasks = [t for t in tasks if any(r["task"] == t for r in rows)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), dpi=110,
                             squeeze=False)
    for ax, task in zip(axes[0], tasks):
        groups = cells_of(rows, task)
        for x, (group, cells) in enumerate(groups.items()):
            scores = list(cell_scores(cells).values())
            low, high = stats.bootstrap_interval(scores)
            mean = statistics.mean(scores)
            ax.scatter([x] * len(scores), scores, color="tab:gray", s=14, zorder=2)
            ax.errorbar([x], [mean], yerr=[[mean - low], [high - mean]], fmt="o", capsize=4,
                        color="tab:red" if group == "random" else "tab:blue", zorder=3)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(list(groups), rotation=30, ha="right")
        ax.set_ylabel(metrics[task])
        ax.set_title(f"{task}: cells (points) and group means with 95 % intervals")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write(rows, out_dir, command, commit, tasks, columns):
    """Writes quality.csv (`columns`), quality.md (the tables of `tasks`,
    {name: `quality.Task`}, with the commit, the date and the command) and
    quality.png; returns their paths."""
    paths = {"csv": os.path.join(out_dir, "quality.csv"),
             "md": os.path.join(out_dir, "quality.md"),
             "png": os.path.join(out_dir, "quality.png")}
    write_csv(rows, paths["csv"], columns)
    commits = sorted({r["commit"] for r in rows})
    lines = [f"Cell quality, {datetime.date.today().isoformat()}, nasp_tf commit {commit} "
             f"(runs made at {', '.join(commits)}): `{command}`", ""]
    for task, spec in tasks.items():
        lines += task_lines(rows, task, spec)
    with open(paths["md"], "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    if rows:
        plot(rows, paths["png"], tasks)
    else:
        del paths["png"]
    return paths
