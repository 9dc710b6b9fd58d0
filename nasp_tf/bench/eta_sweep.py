"""Size control (`nasp-bench --eta_sweep=0,1,4,16`, the NASP paper's Fig. 2):
NASP searches digits for each eta (configs/quickstart.flags), each genotype
is retrained briefly on digits (configs/quickstart_train.flags), and the
table gives the parameters of its CIFAR-10 network (configs/cifar10_train.flags)
and of its digits network, and the digits test accuracy. With
`--budget_sweep=0.25,0.5,0.75` the same is done with size budgets
(`--max_params`) of those fractions of the eta = 0 cell (of what its ops
add to the smallest digits network of the space), in the same table. The searches and retrainings are runs under
--output_dir, reused when run again."""

import csv
import json
import os
import sys
import time

from nasp_tf import shipped
from nasp_tf.bench import jobs, machine


def _parameters(genotype_path, flagfile):
    out = jobs.run_program("train", [jobs.config_flag(flagfile), f"--genotype={genotype_path}",
                                     "--dry_run"])
    return int(out.split("parameters:")[1].split()[0])


def run_eta_sweep(config):
    """The sweep of a `BenchConfig`: CSV, PNG and a table in --output_dir."""
    out_dir = os.path.abspath(config.output_dir)
    os.makedirs(out_dir, exist_ok=True)
    rows = [_search_and_retrain(config, os.path.join(out_dir, f"eta_{eta:g}"),
                                [f"--eta={eta}"], {"eta": eta, "max_params": 0})
            for eta in (float(v) for v in config.eta_sweep)]
    if config.budget_sweep:
        # A cell's size is what its ops add to the network: the budgets are
        # fractions of the way from the smallest network of the space (no op
        # with parameters) to the eta = 0 cell's.
        unconstrained = next(r for r in rows if r["eta"] == 0)["digits_parameters"]
        smallest = _smallest_digits_network()
        for fraction in (float(v) for v in config.budget_sweep):
            budget = int(smallest + fraction * (unconstrained - smallest))
            rows.append(_search_and_retrain(
                config, os.path.join(out_dir, f"budget_{fraction:g}"),
                [f"--max_params={budget}",
                 "--train_flagfile=" + shipped.config_path("quickstart_train.flags")],
                {"eta": None, "max_params": budget, "budget_fraction": fraction}))
    csv_path = os.path.join(out_dir, "eta_sweep.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["eta", "max_params", "cifar10_parameters", "digits_parameters",
                         "test_accuracy", "final_eta", "normal_ops", "reduce_ops"])
        for r in rows:
            writer.writerow(["" if r["eta"] is None else r["eta"], r["max_params"],
                             r["cifar10_parameters"], r["digits_parameters"],
                             f"{r['test_accuracy']:.4f}",
                             "" if r["final_eta"] is None else f"{r['final_eta']:.3f}",
                             " ".join(r["normal_ops"]), " ".join(r["reduce_ops"])])
    png_path = os.path.join(out_dir, "eta_sweep.png")
    _plot(png_path, [r for r in rows if r["eta"] is not None])
    print("| η | --max_params (digits net) | parameters (CIFAR-10 net, C=36, 20 cells) | "
          "parameters (digits net) | digits test accuracy | normal cell ops |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        eta = (f"{r['eta']:g}" if r["eta"] is not None
               else f"adapted (ends at {r['final_eta']:.2f})")
        budget = (f"{r['max_params'] / 1e3:.1f} k ({r['budget_fraction']:.0%} of the η = 0 "
                  "cell)" if r["max_params"] else "—")
        print(f"| {eta} | {budget} | {r['cifar10_parameters'] / 1e6:.2f} M | "
              f"{r['digits_parameters'] / 1e3:.1f} k | {r['test_accuracy']:.4f} | "
              f"{', '.join(r['normal_ops'])} |")
    print(f"wrote {csv_path} and {png_path}")
    return {"kind": "eta_sweep", "machine": machine.machine(), "rows": rows}


def _smallest_digits_network():
    """The fewest parameters a darts7 cell's digits network can have
    (configs/quickstart.flags' space, quickstart_train.flags' network)."""
    from nasp_tf import config as config_lib
    from nasp_tf import native_logs

    with native_logs.quiet_native_stderr():
        from nasp_tf import spaces
        from nasp_tf.cnn import final_size

    search = config_lib.from_flagfile(config_lib.SearchConfig,
                                      shipped.config_path("quickstart.flags"))
    train = config_lib.from_flagfile(config_lib.TrainConfig,
                                     shipped.config_path("quickstart_train.flags"))
    table = final_size.size_table(spaces.get_cnn_space(search.space), search.nodes, 10,
                                  train.init_channels, train.layers, (8, 8, 3))
    return table.minimum()


def _search_and_retrain(config, run_dir, search_flags, row):
    """One row of the sweep: NASP's search on digits with `search_flags`, the
    genotype retrained briefly, its sizes and accuracy."""
    print(f"{' '.join(search_flags)}: search and retraining in {run_dir} ...",
          file=sys.stderr, flush=True)
    start = time.perf_counter()
    jobs.run("search", [jobs.config_flag("quickstart.flags"), *search_flags,
                        f"--epochs={config.sweep_epochs}", "--deterministic",
                        f"--seed={config.seed}", "--verbose=0"],
             os.path.join(run_dir, "search"), done="genotype.json")
    genotype = os.path.join(run_dir, "search", "genotype.json")
    jobs.run("train", [jobs.config_flag("quickstart_train.flags"), f"--genotype={genotype}",
                       f"--epochs={config.train_epochs}", f"--seed={config.seed}",
                       "--noexport", "--verbose=0"],
             os.path.join(run_dir, "train"), done="results.json")
    with open(os.path.join(run_dir, "train", "results.json"), encoding="utf-8") as f:
        accuracy = json.load(f)["test_top1"]
    with open(genotype, encoding="utf-8") as f:
        cells = json.load(f)
    budget_path = os.path.join(run_dir, "search", "budget.json")
    final_eta = None
    if os.path.exists(budget_path):
        with open(budget_path, encoding="utf-8") as f:
            final_eta = json.load(f)["eta"]
    return {**row, "test_accuracy": accuracy, "final_eta": final_eta,
            "digits_parameters": _parameters(genotype, "quickstart_train.flags"),
            "cifar10_parameters": _parameters(genotype, "cifar10_train.flags"),
            "normal_ops": [op for op, _ in cells["normal"]],
            "reduce_ops": [op for op, _ in cells["reduce"]],
            "seconds": time.perf_counter() - start}


def _plot(path, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    etas = [r["eta"] for r in rows]
    fig, left = plt.subplots(figsize=(6, 4), dpi=120)
    left.plot(etas, [r["cifar10_parameters"] / 1e6 for r in rows], "o-", color="tab:blue")
    left.set_xlabel("eta (weight of the complexity penalty R)")
    left.set_ylabel("parameters of the CIFAR-10 network (M)", color="tab:blue")
    right = left.twinx()
    right.plot(etas, [100 * r["test_accuracy"] for r in rows], "s--", color="tab:red")
    right.set_ylabel("digits test accuracy (%)", color="tab:red")
    left.set_title("Size control by eta (cf. NASP Fig. 2)")
    if len(etas) > 1 and min(etas) > 0:
        left.set_xscale("log")
    left.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
