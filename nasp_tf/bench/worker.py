"""`python -m nasp_tf.bench.worker SPEC`: one measurement of a benchmark in
this fresh process (`jobs.in_subprocess`), its result printed as one JSON
line after `jobs.RESULT`."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from nasp_tf.bench import convergence, jobs, speed  # noqa: E402

WORKERS = {"step": speed.step_worker, "text_step": speed.text_step_worker,
           "pipeline": speed.pipeline_worker, "convergence": convergence.convergence_worker}


def main(spec_text):
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    spec = json.loads(spec_text)
    print(jobs.RESULT + json.dumps(WORKERS[spec["task"]](spec)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
