"""What a benchmark records of the machine and the process: the CPU model and
the vector extensions that change timings, TensorFlow's build, the peak
resident memory; and the line plot the benchmarks share."""

import os
import platform
import sys


def cpu_info():
    """The CPU model and the vector-extension flags that change timings (avx2,
    avx512*, amx*), from /proc/cpuinfo where there is one."""
    model, extensions = platform.processor() or "unknown", []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    extensions = sorted(flag for flag in value.split()
                                        if flag == "avx2" or flag.startswith(("avx512", "amx")))
                    break
    except OSError:  # no /proc/cpuinfo (not Linux): the platform's name alone
        return model, extensions
    return model, extensions


def tf_build():
    """What this process's TensorFlow was built with, as far as it says: the
    version, compiler, CUDA build and whether oneDNN kernels are on (they
    change CPU timings; TF_ENABLE_ONEDNN_OPTS=0 turns them off)."""
    import tensorflow as tf

    info = dict(tf.sysconfig.get_build_info())
    build = {"version": tf.__version__, "cpu_compiler": info.get("cpu_compiler"),
             "is_cuda_build": bool(info.get("is_cuda_build")),
             "onednn_env": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}
    try:  # private, but the only switch TF exposes for it
        from tensorflow.python.util import _pywrap_util_port

        build["onednn"] = bool(_pywrap_util_port.IsMklEnabled()) and \
            build["onednn_env"] not in ("0", "false", "False")
    except (ImportError, AttributeError):
        build["onednn"] = None
    return build


def machine():
    """The machine and the command, for a report."""
    model, extensions = cpu_info()
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "cpu_model": model,
            "cpu_flags": extensions, "platform": platform.platform(),
            "command": " ".join(sys.argv)}


def cores():
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def peak_rss_gb():
    """This process's peak resident memory in GB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def plot_lines(path, series, xlabel, ylabel, title):
    """A PNG of {label: (xs, ys)} lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", markersize=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
