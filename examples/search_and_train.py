"""nasp_tf from Python: search a cell on scikit-learn's digits with NASP, read its
genotype, train the final network on numpy arrays and export it.

    python examples/search_and_train.py [output_dir]

The sizes are tiny so that it runs in about a minute on a CPU; grow `channels`,
`cells`, the epochs and the steps for a real search.
"""

import os
import sys
import tempfile

import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits

import nasp_tf


def digits():
    data = load_digits()
    images = np.repeat(data.images[..., None], 3, axis=-1) / 16.0  # [N, 8, 8, 3] in [0, 1]
    order = np.random.default_rng(0).permutation(len(images))
    return images[order].astype(np.float32), data.target[order]


def main(output_dir):
    x, y = digits()
    x_train, y_train, x_test, y_test = x[:1500], y[:1500], x[1500:], y[1500:]

    # 1. Search: NASP on a small supernet; half of the training images train the
    #    weights, the other half the architecture.
    searcher = nasp_tf.build_searcher("nasp", space="darts7", image_shape=(8, 8, 3),
                                      num_classes=10, channels=4, cells=3, nodes=1)
    searcher.compile(weight_optimizer=nasp_tf.TorchSGD(0.05, momentum=0.9, l2=3e-4),
                     arch_optimizer=nasp_tf.TorchAdam(3e-3))
    pairs = nasp_tf.search_pairs(x_train[:750], y_train[:750], x_train[750:], y_train[750:],
                                 batch_size=32)
    searcher.fit(pairs, epochs=2, steps_per_epoch=10, verbose=0)
    genotype = searcher.genotype()
    print("genotype:", genotype.to_json())
    nasp_tf.write_json(genotype, os.path.join(output_dir, "genotype.json"))

    # 2. Retrain: the final network of the genotype, from scratch, with fit on arrays.
    network = nasp_tf.network_cifar(genotype, num_classes=10, channels=8, layers=3,
                                    auxiliary=False, image_shape=(8, 8, 3))
    trainer = nasp_tf.FinalTrainer(network, grad_clip=5.0)
    trainer.compile(optimizer=nasp_tf.TorchSGD(0.05, momentum=0.9, l2=3e-4))
    trainer.fit(x_train, y_train, batch_size=32, epochs=3, verbose=0)
    results = trainer.evaluate(x_test, y_test, batch_size=64, verbose=0, return_dict=True)
    print(f"test top-1: {results['top1']:.4f}")

    # 3. Export: a SavedModel that takes uint8 images in [0, 255] or float images
    #    in [0, 1], as these are (normalisation inside).
    path = os.path.join(output_dir, "saved_model")
    nasp_tf.export_classifier(network, path, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    served = tf.saved_model.load(path)
    probabilities = served.serve(x_test[:4])["probabilities"].numpy()
    print("served probabilities sum to", probabilities.sum(axis=1).round(4).tolist())
    return genotype, results


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="nasp_tf_example_"))
