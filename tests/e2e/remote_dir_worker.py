"""Run by test_remote_output.py: a search and a retraining whose --output_dir
is on TensorFlow's in-memory file system (`ram://`, which lives only inside
one process), next to the same search written to a local directory.

    remote_dir_worker.py LOCAL_DIR

In one process: (1) bin/search.py's job into LOCAL_DIR/search; (2) the same
flags into ram://runs/search; (3) that command again (an exact resume of a
finished run); (4) bin/train.py's job on ram://runs/search/genotype.json into
ram://runs/train. Prints one JSON line: the exit codes, every file of the
ram:// run directories, the texts to compare with the local run's, and
whether anything but LOCAL_DIR appeared in the working directory (LOCAL_DIR's
parent).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from absl import flags, logging  # noqa: E402

from nasp_tf import config as config_lib  # noqa: E402
from nasp_tf.cli import main, search_flags  # noqa: E402

TINY = ["--dataset=digits", "--max_examples=128", "--batch_size=16", "--init_channels=4",
        "--layers=3", "--deterministic", "--verbose=0"]
SEARCH = [*TINY, "--epochs=2", "--steps_per_epoch=3", "--nodes=1", "--space=s2"]
TRAIN = dict(dataset="digits", max_examples=128, batch_size=16, init_channels=4, layers=3,
             deterministic=True, verbose=0, epochs=1, steps_per_epoch=2, auxiliary=False,
             cutout=0)


def search(output_dir):
    flags.FLAGS.unparse_flags()
    search_flags.parse_or_exit(["search.py", *SEARCH, f"--output_dir={output_dir}"],
                               "search.py")
    logging.set_verbosity(logging.INFO)  # as under app.run: the epochs reach log.txt
    return main.run_job("search", ["search.py"], search_flags.FLAG_SET,
                        config_lib.SearchConfig)


def train(genotype, output_dir):
    config = config_lib.TrainConfig().replace(genotype=genotype, output_dir=output_dir,
                                              **TRAIN)
    flags_text = "".join(f"--{k}={v}\n" for k, v in sorted(TRAIN.items()))
    flags_text += f"--genotype={genotype}\n"
    logging.set_verbosity(logging.INFO)
    code = main.run_main("train.py", lambda: main.check_inputs("train", config, flags_text))
    return code or main.run_main("train.py",
                                 lambda: main.recipe("train", "images")(config, flags_text),
                                 output_dir)


def tree(url):
    import tensorflow as tf

    return sorted(os.path.join(root, name)[len(url):].lstrip("/")
                  for root, _, names in tf.io.gfile.walk(url) for name in names)


def text(url):
    import tensorflow as tf

    with tf.io.gfile.GFile(url) as f:
        return f.read()


def main_(local_dir):
    os.chdir(os.path.dirname(os.path.abspath(local_dir)))
    before = sorted(os.listdir("."))
    search_flags.define_flags()
    codes = [search(os.path.join(local_dir, "search")), search("ram://runs/search"),
             search("ram://runs/search"),
             train("ram://runs/search/genotype.json", "ram://runs/train")]
    print(json.dumps({
        "codes": codes,
        "search_files": tree("ram://runs/search"),
        "train_files": tree("ram://runs/train"),
        "genotype": text("ram://runs/search/genotype.json"),
        "history": text("ram://runs/search/history.json"),
        "flags_history": text("ram://runs/search/flags_history.txt"),
        "log": text("ram://runs/search/log.txt"),
        "results": json.loads(text("ram://runs/train/results.json")),
        "new_in_cwd": sorted(set(os.listdir(".")) - set(before)),
    }))


if __name__ == "__main__":
    main_(sys.argv[1])
