"""What a search will cost, measured before it runs (`bin/search.py --dry_run`).

The recipe builds the supernet and the searcher as the search would, then
this module runs a few steps on the real input pipeline, a few validation
batches and one epoch end (checkpoint, genotype, pictures, TensorBoard) into
a temporary directory, and predicts the search from them: seconds per step,
per epoch and for the whole command (start-up and compilation included), and
the process's peak memory. Nothing is written into --output_dir.
"""

import json
import os
import resource
import statistics
import tempfile
import time

import tensorflow as tf
from absl import logging

from nasp_tf import atomic
from nasp_tf import callbacks as callbacks_lib
from nasp_tf import checkpoints
from nasp_tf import counting

WARMUP, TIMED, VALIDATION_BATCHES = 2, 5, 3


def process_seconds():
    """Seconds since this process started (from /proc where there is one)."""
    try:
        with open("/proc/self/stat", encoding="utf-8") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="utf-8") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.process_time()


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def machine_memory_gb():
    """The machine's memory in GB, or None where /proc/meminfo is missing."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except (OSError, ValueError):
        return None
    return None


def timed(fn, count):
    """The seconds of `count` calls of `fn`, one by one."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def measure(searcher, network, pairs, validation, steps_per_epoch, validation_batches,
            config, history_class=callbacks_lib.SearchHistory):
    """Runs the search's first steps, validation and one epoch end, and
    returns the estimate of the whole search (a dict) after printing it.

    Args:
      searcher: the compiled searcher.
      network: the supernet or language model (its parameters are counted).
      pairs: the (train, search) batch pairs of the search, from its start.
      validation: the epoch-end validation dataset.
      steps_per_epoch, validation_batches: per epoch.
      config: the `SearchConfig` (epochs, json, output_dir).
      history_class: the epoch-end callback of the search (an
        `callbacks.EpochRecord`), run once into a temporary directory.
    """
    step = tf.function(searcher.train_step)
    test = tf.function(searcher.test_step)
    batches = iter(pairs)
    first_step_at = None
    for n in range(WARMUP):
        float(step(next(batches))["loss"])  # waits for the step to finish
        if n == 0:
            first_step_at = process_seconds()
    step_times = timed(lambda: float(step(next(batches))["loss"]), TIMED)
    checks = iter(validation.repeat())
    float(test(next(checks))["loss"])  # compiles
    validation_times = timed(lambda: float(test(next(checks))["loss"]), VALIDATION_BATCHES)
    with tempfile.TemporaryDirectory(prefix="nasp_tf_dry_run_") as scratch:
        checkpoint = checkpoints.make_checkpoint(searcher)
        manager = checkpoints.manager_for(checkpoint, scratch)
        history = history_class(scratch, lambda epochs: manager.save(), 1)
        history.set_model(searcher)
        verbosity = logging.get_verbosity()
        logging.set_verbosity(logging.WARNING)  # its epoch line would look like a search's
        try:
            start = time.perf_counter()
            history.on_epoch_end(0, {"loss": 1.0})
            epoch_end = time.perf_counter() - start
        finally:
            logging.set_verbosity(verbosity)
    per_step = statistics.median(step_times)
    per_epoch = (steps_per_epoch * per_step + validation_batches *
                 statistics.median(validation_times) + epoch_end)
    total_steps = config.epochs * steps_per_epoch
    # The whole command: what it took to the end of its first step, then the
    # remaining steps, validations and epoch ends.
    total = first_step_at + per_epoch * config.epochs - per_step
    estimate = {"parameters": counting.parameter_count(network),
                "steps_per_epoch": steps_per_epoch, "epochs": config.epochs,
                "total_steps": total_steps, "seconds_per_step": per_step,
                "seconds_to_first_step": first_step_at,
                "seconds_per_validation_batch": statistics.median(validation_times),
                "seconds_per_epoch_end": epoch_end, "seconds_per_epoch": per_epoch,
                "seconds_total": total, "peak_rss_gb": peak_rss_gb(),
                "machine_memory_gb": machine_memory_gb()}
    report(estimate, config)
    return estimate


def report(estimate, config):
    """Prints the estimate (and writes --json); warns in one line when the
    memory it needs exceeds the machine's."""
    e = estimate
    print(f"supernet parameters: {e['parameters']:,}")
    print(f"steps per epoch: {e['steps_per_epoch']} x {e['epochs']} epochs "
          f"= {e['total_steps']:,} steps")
    print(f"seconds per step: {e['seconds_per_step']:.3f} (median of {TIMED})")
    print(f"seconds per epoch: {e['seconds_per_epoch']:.1f} (validation and epoch end "
          "included)")
    print(f"seconds for the whole search: {e['seconds_total']:.0f} "
          f"({e['seconds_total'] / 3600:.2f} h; start-up and compilation "
          f"{e['seconds_to_first_step']:.0f} s)")
    print(f"peak memory: {e['peak_rss_gb']:.2f} GB"
          + (f" of the machine's {e['machine_memory_gb']:.1f} GB"
             if e["machine_memory_gb"] else ""))
    if e["machine_memory_gb"] and e["peak_rss_gb"] > e["machine_memory_gb"]:
        logging.warning("this search needs about %.1f GB, more than the machine's %.1f GB: "
                        "lower --batch_size or the size of the network",
                        e["peak_rss_gb"], e["machine_memory_gb"])
    if config.json:
        atomic.write_text(config.json, json.dumps(e, indent=1))
        print(f"wrote {config.json}")
