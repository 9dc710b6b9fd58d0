"""Inference latency of final image networks (`bin/bench.py --latency`):
milliseconds per image at batch 1 on this machine's CPU, for the SavedModel
bin/train.py exports and its TensorFlow Lite files (float32 and int8
dynamic-range), one row per cell.

The networks are built with fresh weights: latency does not depend on what
the weights are, only on the ops the cell selects and the network's size
(the preset). Every model runs on the same threads: TensorFlow's intra-op
pool, and as many TensorFlow Lite threads.
"""

import os
import statistics
import tempfile

from nasp_tf.bench import machine

# Final networks (channels C, cells) on CIFAR-sized images (32x32x3, 10
# classes): paper is DARTS's and NASP's CIFAR-10 retraining network.
PRESETS = {"paper": (36, 20), "small": (16, 8), "tiny": (4, 3)}
# Calls timed per model: `steps` x this (after `warmup` untimed calls).
CALLS_PER_STEP = 10


def _milliseconds(fn, warmup, calls):
    from nasp_tf.pipelines import estimate

    estimate.timed(fn, warmup)
    return 1000 * statistics.median(estimate.timed(fn, calls))


def _directory_bytes(path):
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


def time_cell(cell, preset, warmup, calls, seed):
    """One row: the cell's final network as a SavedModel and as TensorFlow
    Lite (float32, int8 dynamic range), ms per image at batch 1."""
    import numpy as np
    import tensorflow as tf

    from nasp_tf import counting, export
    from nasp_tf.cnn import model as model_lib
    from nasp_tf.genotype import cnn

    channels, layers = PRESETS[preset]
    genotype = cnn.load_cnn_genotype(cell)
    tf.keras.utils.set_random_seed(seed)
    network = model_lib.network_cifar(genotype, num_classes=10, channels=channels,
                                      layers=layers, auxiliary=False, image_shape=(32, 32, 3))
    image = np.random.default_rng(seed).random((1, 32, 32, 3), dtype=np.float32)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    row = {"cell": cell, "parameters": counting.parameter_count(network)}
    with tempfile.TemporaryDirectory(prefix="nasp_tf_latency_") as scratch:
        path = export.export_classifier(network, os.path.join(scratch, "saved_model"), mean, std)
        loaded = tf.saved_model.load(path)
        batch = tf.constant(image)
        row["saved_model_ms"] = _milliseconds(lambda: loaded.serve_float(batch)["probabilities"]
                                              .numpy(), warmup, calls)
        row["saved_model_bytes"] = _directory_bytes(path)
        expected = loaded.serve_float(batch)["probabilities"].numpy()
        for kind, key in (("float32", "tflite"), ("int8_dynamic_range", "tflite_int8")):
            content = export.tflite_classifier(network, mean, std, kind)
            interpreter = export.tflite_interpreter(content=content, num_threads=threads)
            row[f"{key}_ms"] = _milliseconds(lambda: export.tflite_predict(interpreter, image),
                                             warmup, calls)
            row[f"{key}_bytes"] = len(content)
            row[f"{key}_max_abs_difference"] = float(
                np.max(np.abs(export.tflite_predict(interpreter, image) - expected)))
    row["threads"] = threads
    return row


def latency_table(rows):
    lines = ["| cell | parameters | SavedModel ms | TFLite float32 ms | TFLite int8 ms | "
             "SavedModel MB | TFLite float32 MB | TFLite int8 MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['cell']} | {r['parameters']:,} | {r['saved_model_ms']:.2f} | "
            f"{r['tflite_ms']:.2f} | {r['tflite_int8_ms']:.2f} | "
            f"{r['saved_model_bytes'] / 1e6:.2f} | {r['tflite_bytes'] / 1e6:.2f} | "
            f"{r['tflite_int8_bytes'] / 1e6:.2f} |")
    return "\n".join(lines)


def run_latency(config):
    """The latency benchmark of a `BenchConfig` (--latency=CELL,...): prints
    the table; returns the report."""
    from nasp_tf.bench import jobs

    from absl import logging

    from nasp_tf import native_logs

    with native_logs.quiet_native_stderr():
        import tensorflow  # noqa: F401  (its start-up lines hidden)
    calls = config.steps * CALLS_PER_STEP
    logging.set_verbosity(logging.WARNING)  # the exports' and converter's INFO lines
    rows = []
    for cell in config.latency:
        print(f"latency: {cell} ({config.preset}) ...", flush=True)
        rows.append(time_cell(cell, config.preset, config.warmup, calls, config.seed))
    channels, layers = PRESETS[config.preset]
    model, extensions = machine.cpu_info()
    print(f"preset {config.preset}: final network C={channels}, {layers} cells, 32x32x3 "
          f"images, 10 classes, no auxiliary head; batch 1; median of {calls} calls after "
          f"{config.warmup} warm-up; {rows[0]['threads']} thread(s) each")
    print(f"machine: {model}, {os.cpu_count()} cores, {' '.join(extensions) or 'no avx2'}; "
          f"commit {jobs.commit()}")
    print(latency_table(rows))
    return {"kind": "latency", "machine": machine.machine(), "preset": config.preset,
            "commit": jobs.commit(), "results": rows}
