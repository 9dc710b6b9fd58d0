"""Search spaces of your own, three examples: an MLP on scikit-learn's breast-cancer
table, a small conv net on its 8x8 digits, and a 1-D conv / recurrent net on a
synthetic sequence task; each chosen by NASP (or DARTS, or at random).

    python examples/custom_spaces.py --space=tabular|digits|sequence
        [--searcher=nasp|darts1|random] [--seed=0] [--epochs=20] [--retrain_epochs=60]
        [--output_dir=DIR]
    python examples/custom_spaces.py --space=digits --seeds=5   # every searcher: a table
    python examples/custom_spaces.py --space=tabular --seeds=3 --etas=0,0.3,1,3   # sizes
    python examples/custom_spaces.py --space=tabular --write_data=tabular.npz   # for bin/

The data are split once (seed 0) into rows that train the weights, rows that
train the architecture, and test rows that only the reported accuracy reads,
after the chosen architecture has been retrained from scratch on the first two.
The last line is JSON. With --seeds=N each searcher runs with seeds 0..N-1 and a
table compares each with the random choices of the same seeds: mean test
accuracy, a 95 % bootstrap interval, and the one-sided p-value of an exact
sign-flip test of the paired differences (searcher better than random).
"""

import argparse
import itertools
import json
import os
import tempfile

import keras
import numpy as np

import nasp_tf


def mlp_block(width, activation):
    return keras.Sequential([keras.layers.Dense(width, activation=activation),
                             keras.layers.Dense(32)])


def tabular_space():
    """Two blocks chosen among widths and activations, and whether the second
    one is used at all."""
    inputs = keras.Input((30,))
    h = keras.layers.Dense(32, activation="relu")(inputs)
    h1 = nasp_tf.Choice({"relu16": mlp_block(16, "relu"), "relu128": mlp_block(128, "relu"),
                         "tanh16": mlp_block(16, "tanh")}, name="block1")(h)
    h2 = nasp_tf.Choice({"relu16": mlp_block(16, "relu"), "tanh64": mlp_block(64, "tanh"),
                         "identity": keras.layers.Identity()}, name="block2")(h1)
    depth = nasp_tf.InputChoice(1, name="depth")([h1, h2])
    return keras.Model(inputs, keras.layers.Dense(2)(depth))


def tabular_data():
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(x))
    x, y = x[order], y[order]
    # Normalised with the search rows' statistics only.
    mean, std = x[:450].mean(0), x[:450].std(0) + 1e-8
    x = ((x - mean) / std).astype(np.float32)
    return (x[:300], y[:300]), (x[300:450], y[300:450]), (x[450:], y[450:])


def digits_space():
    """The first convolution's kind and size, the pooling, and a skip around
    the second convolution."""
    inputs = keras.Input((8, 8, 1))
    h = nasp_tf.Choice({
        "conv3": keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        "conv5": keras.layers.Conv2D(16, 5, padding="same", activation="relu"),
        "sep3": keras.layers.SeparableConv2D(16, 3, padding="same", activation="relu"),
    }, name="conv")(inputs)
    h = nasp_tf.Choice({"max": keras.layers.MaxPooling2D(2),
                        "avg": keras.layers.AveragePooling2D(2)}, name="pool")(h)
    deeper = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(h)
    h = nasp_tf.InputChoice(1, name="skip")([deeper, h])
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, keras.layers.Dense(10)(h))


def digits_data():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(x))
    x = (x[order] / 16.0).reshape(-1, 8, 8, 1).astype(np.float32)
    y = y[order]
    return (x[:600], y[:600]), (x[600:1200], y[600:1200]), (x[1200:], y[1200:])


def sequence_space():
    """How the sequence is read (short or wide convolution, or a GRU) and
    how it is pooled."""
    inputs = keras.Input((SEQUENCE_LENGTH,), dtype="int32")
    h = keras.layers.Embedding(10, 8)(inputs)
    h = nasp_tf.Choice({
        "conv3": keras.layers.Conv1D(16, 3, padding="same", activation="relu"),
        "conv9": keras.layers.Conv1D(16, 9, padding="same", activation="relu"),
        "gru": keras.layers.GRU(16, return_sequences=True),
    }, name="reader")(h)
    h = nasp_tf.Choice({"max": keras.layers.GlobalMaxPooling1D(),
                        "avg": keras.layers.GlobalAveragePooling1D()}, name="pool")(h)
    return keras.Model(inputs, keras.layers.Dense(2)(h))


SEQUENCE_LENGTH = 20


def sequence_data():
    """Sequences of 20 digits 0-9 (uniform, seed 0); the label says whether a
    7 appears at least twice (about half of them)."""
    rng = np.random.RandomState(0)
    x = rng.randint(0, 10, size=(2000, SEQUENCE_LENGTH)).astype(np.int32)
    y = ((x == 7).sum(1) >= 2).astype(np.int64)
    return (x[:700], y[:700]), (x[700:1400], y[700:1400]), (x[1400:], y[1400:])


# name: (the space's builder, its data, the search's batch size)
SPACES = {"tabular": (tabular_space, tabular_data, 30),
          "digits": (digits_space, digits_data, 50),
          "sequence": (sequence_space, sequence_data, 50)}


def loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def run(space, searcher_name, seed, epochs, retrain_epochs, out, eta=0.0):
    """One search, the retraining of its choices, the test accuracy."""
    build, data, batch_size = SPACES[space]
    os.makedirs(out, exist_ok=True)
    keras.backend.clear_session()  # every run starts alike, in one process or many
    keras.utils.set_random_seed(seed)
    (x_w, y_w), (x_a, y_a), (x_test, y_test) = data()
    searcher = nasp_tf.SpaceSearcher(build(), searcher=searcher_name, seed=seed, eta=eta)
    searcher.compile(weight_optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                     arch_optimizer=keras.optimizers.Adam(3e-3), loss=loss(),
                     metrics=["accuracy"])
    pairs = nasp_tf.search_pairs(x_w, y_w, x_a, y_a, batch_size=batch_size, seed=seed)
    searcher.fit(pairs, epochs=epochs, steps_per_epoch=10, verbose=0)
    choices = searcher.choices()
    searcher.write_choices(os.path.join(out, "choices.json"))
    searcher.export_model().save(os.path.join(out, "supernet_choice.keras"))

    # Retrain the chosen architecture from scratch on all the rows the search saw.
    model = nasp_tf.fix_choices(build, choices)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss(), metrics=["accuracy"])
    model.fit(np.concatenate([x_w, x_a]), np.concatenate([y_w, y_a]), batch_size=batch_size,
              epochs=retrain_epochs, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    model.save(os.path.join(out, "retrained.keras"))
    return {"space": space, "searcher": searcher_name, "seed": seed, "eta": eta,
            "choices": choices,
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
    parser.add_argument("--space", default="tabular", choices=sorted(SPACES))
    parser.add_argument("--searcher", default="nasp", choices=["nasp", "darts1", "random"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=0)
    parser.add_argument("--eta", type=float, default=0.0, help="NASP's size penalty")
    parser.add_argument("--etas", default="",
                        help="comma-separated: NASP at each eta for seeds 0..--seeds-1, a table")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--retrain_epochs", type=int, default=60)
    parser.add_argument("--output_dir", default=None)
    parser.add_argument("--write_data", default=None, metavar="FILE.npz",
                        help="only write the space's data for bin/search.py and bin/train.py: "
                             "x_train/y_train (the weight and architecture rows), x_test/y_test")
    args = parser.parse_args()
    if args.write_data:
        (x_w, y_w), (x_a, y_a), (x_t, y_t) = SPACES[args.space][1]()
        np.savez(args.write_data, x_train=np.concatenate([x_w, x_a]),
                 y_train=np.concatenate([y_w, y_a]), x_test=x_t, y_test=y_t)
        print(f"wrote {args.write_data}")
        return
    out = args.output_dir or tempfile.mkdtemp(prefix="custom_space_")
    if args.etas:
        results = []
        for eta, seed in itertools.product([float(e) for e in args.etas.split(",")],
                                           range(max(args.seeds, 1))):
            results.append(run(args.space, "nasp", seed, args.epochs, args.retrain_epochs,
                               os.path.join(out, f"eta{eta:g}_{seed}"), eta))
            print(json.dumps(results[-1]), flush=True)
        print("| eta | n | mean parameters | min–max parameters | mean test accuracy |")
        print("|---|---|---|---|---|")
        for eta in sorted({r["eta"] for r in results}):
            runs = [r for r in results if r["eta"] == eta]
            sizes = [r["parameters"] for r in runs]
            print(f"| {eta:g} | {len(runs)} | {np.mean(sizes):,.0f} | {min(sizes):,}–"
                  f"{max(sizes):,} | {np.mean([r['test_accuracy'] for r in runs]):.4f} |")
        return
    if not args.seeds:
        print(json.dumps(run(args.space, args.searcher, args.seed, args.epochs,
                             args.retrain_epochs, out, args.eta)))
        return
    results = []
    for seed, name in itertools.product(range(args.seeds), ("nasp", "darts1", "random")):
        results.append(run(args.space, name, seed, args.epochs, args.retrain_epochs,
                           os.path.join(out, f"{name}_{seed}")))
        print(json.dumps(results[-1]), flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
