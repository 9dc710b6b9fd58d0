"""A search space of your own: an MLP on scikit-learn's breast-cancer table whose
blocks (width, activation) and depth are chosen by NASP.

    python examples/custom_space_tabular.py [--searcher=nasp|darts1|random] [--seed=0]
        [--epochs=20] [--retrain_epochs=60] [--output_dir=DIR]
    python examples/custom_space_tabular.py --seeds=10   # every searcher, seeds 0..9: a table

Rows are split once (seed 0): 300 train the weights, 150 the architecture, the
other 119 are only ever used for the reported test accuracy, after the chosen
architecture has been retrained from scratch on the 450. The last line is JSON.
With --seeds=N each searcher runs with seeds 0..N-1 and a table compares each with
the random choices of the same seeds: mean test accuracy, a 95 % bootstrap
interval, and the one-sided p-value of an exact sign-flip test of the paired
differences (searcher better than random).
"""

import argparse
import itertools
import json
import os
import tempfile

import keras
import numpy as np
from sklearn.datasets import load_breast_cancer

import nasp_tf


def block(width, activation):
    return keras.Sequential([keras.layers.Dense(width, activation=activation),
                             keras.layers.Dense(32)])


def build():
    """The space: two blocks chosen among widths and activations, and whether
    the second one is used at all."""
    inputs = keras.Input((30,))
    h = keras.layers.Dense(32, activation="relu")(inputs)
    h1 = nasp_tf.Choice({"relu16": block(16, "relu"), "relu128": block(128, "relu"),
                         "tanh16": block(16, "tanh")}, name="block1")(h)
    h2 = nasp_tf.Choice({"relu16": block(16, "relu"), "tanh64": block(64, "tanh"),
                         "identity": keras.layers.Identity()}, name="block2")(h1)
    depth = nasp_tf.InputChoice(1, name="depth")([h1, h2])
    return keras.Model(inputs, keras.layers.Dense(2)(depth))


def data():
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(x))
    x, y = x[order], y[order]
    # Normalised with the search rows' statistics only.
    mean, std = x[:450].mean(0), x[:450].std(0) + 1e-8
    x = ((x - mean) / std).astype(np.float32)
    return (x[:300], y[:300]), (x[300:450], y[300:450]), (x[450:], y[450:])


def loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def run(searcher_name, seed, epochs, retrain_epochs, out):
    """One search, the retraining of its choices, the test accuracy."""
    os.makedirs(out, exist_ok=True)
    keras.backend.clear_session()  # every run starts alike, in one process or many
    keras.utils.set_random_seed(seed)
    (x_w, y_w), (x_a, y_a), (x_test, y_test) = data()
    searcher = nasp_tf.SpaceSearcher(build(), searcher=searcher_name, seed=seed)
    searcher.compile(weight_optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                     arch_optimizer=keras.optimizers.Adam(3e-3), loss=loss(),
                     metrics=["accuracy"])
    pairs = nasp_tf.search_pairs(x_w, y_w, x_a, y_a, batch_size=30, seed=seed)
    searcher.fit(pairs, epochs=epochs, steps_per_epoch=10, verbose=0)
    choices = searcher.choices()
    searcher.write_choices(os.path.join(out, "choices.json"))
    searcher.export_model().save(os.path.join(out, "supernet_choice.keras"))

    # Retrain the chosen architecture from scratch on all 450 search rows.
    model = nasp_tf.fix_choices(build, choices)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss(), metrics=["accuracy"])
    model.fit(np.concatenate([x_w, x_a]), np.concatenate([y_w, y_a]), batch_size=30,
              epochs=retrain_epochs, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    model.save(os.path.join(out, "retrained.keras"))
    return {"searcher": searcher_name, "seed": seed, "choices": choices,
            "parameters": model.count_params(), "test_accuracy": accuracy}


def sign_flip_p(differences):
    """P(mean of randomly signed |differences| >= the observed mean): exact."""
    observed = np.mean(differences)
    flips = [np.mean([s * abs(d) for s, d in zip(signs, differences)])
             for signs in itertools.product((1, -1), repeat=len(differences))]
    return float(np.mean([f >= observed - 1e-12 for f in flips]))


def table(results):
    rng = np.random.RandomState(0)
    rows = ["| searcher | n | mean test accuracy | 95 % bootstrap interval | mean parameters "
            "| p (better than random) |", "|---|---|---|---|---|---|"]
    by = {name: [r for r in results if r["searcher"] == name]
          for name in ("nasp", "darts1", "random")}
    for name, runs in by.items():
        acc = np.array([r["test_accuracy"] for r in runs])
        means = [rng.choice(acc, len(acc)).mean() for _ in range(10000)]
        low, high = np.percentile(means, [2.5, 97.5])
        paired = acc - np.array([r["test_accuracy"] for r in by["random"]])
        p = "" if name == "random" else f"{sign_flip_p(paired):.2f}"
        rows.append(f"| {name} | {len(acc)} | {acc.mean():.4f} | {low:.4f}–{high:.4f} | "
                    f"{np.mean([r['parameters'] for r in runs]):,.0f} | {p} |")
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searcher", default="nasp", choices=["nasp", "darts1", "random"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--retrain_epochs", type=int, default=60)
    parser.add_argument("--output_dir", default=None)
    args = parser.parse_args()
    out = args.output_dir or tempfile.mkdtemp(prefix="custom_space_")
    if not args.seeds:
        print(json.dumps(run(args.searcher, args.seed, args.epochs, args.retrain_epochs, out)))
        return
    results = []
    for seed, name in itertools.product(range(args.seeds), ("nasp", "darts1", "random")):
        results.append(run(name, seed, args.epochs, args.retrain_epochs,
                           os.path.join(out, f"{name}_{seed}")))
        print(json.dumps(results[-1]), flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
