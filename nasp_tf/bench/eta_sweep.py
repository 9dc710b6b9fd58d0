"""Size control (`nasp-bench --eta_sweep=0,1,4,16`, the NASP paper's Fig. 2):
NASP searches digits for each eta (configs/quickstart.flags), each genotype
is retrained briefly on digits (configs/quickstart_train.flags), and the
table gives the parameters of its CIFAR-10 network (configs/cifar10_train.flags)
and of its digits network, and the digits test accuracy. The searches and
retrainings are runs under --output_dir, reused when run again."""

import csv
import json
import os
import sys
import time

from nasp_tf.bench import jobs, machine


def _parameters(genotype_path, flagfile):
    out = jobs.run_program("train", [jobs.config_flag(flagfile), f"--genotype={genotype_path}",
                                     "--dry_run"])
    return int(out.split("parameters:")[1].split()[0])


def run_eta_sweep(config):
    """The sweep of a `BenchConfig`: CSV, PNG and a table in --output_dir."""
    out_dir = os.path.abspath(config.output_dir)
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for eta in (float(v) for v in config.eta_sweep):
        run_dir = os.path.join(out_dir, f"eta_{eta:g}")
        print(f"eta={eta:g}: search and retraining in {run_dir} ...", file=sys.stderr,
              flush=True)
        start = time.perf_counter()
        jobs.run("search", [jobs.config_flag("quickstart.flags"), f"--eta={eta}",
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
            normal = [op for op, _ in json.load(f)["normal"]]
        rows.append({"eta": eta, "test_accuracy": accuracy,
                     "digits_parameters": _parameters(genotype, "quickstart_train.flags"),
                     "cifar10_parameters": _parameters(genotype, "cifar10_train.flags"),
                     "normal_ops": normal, "seconds": time.perf_counter() - start})
    csv_path = os.path.join(out_dir, "eta_sweep.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["eta", "cifar10_parameters", "digits_parameters", "test_accuracy",
                         "normal_ops"])
        for r in rows:
            writer.writerow([r["eta"], r["cifar10_parameters"], r["digits_parameters"],
                             f"{r['test_accuracy']:.4f}", " ".join(r["normal_ops"])])
    png_path = os.path.join(out_dir, "eta_sweep.png")
    _plot(png_path, rows)
    print("| eta | parameters (CIFAR-10 net, C=36, 20 cells) | parameters (digits net) | "
          "digits test accuracy | normal cell ops |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['eta']:g} | {r['cifar10_parameters'] / 1e6:.2f} M | "
              f"{r['digits_parameters'] / 1e3:.1f} k | {r['test_accuracy']:.4f} | "
              f"{', '.join(r['normal_ops'])} |")
    print(f"wrote {csv_path} and {png_path}")
    return {"kind": "eta_sweep", "machine": machine.machine(), "rows": rows}


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
