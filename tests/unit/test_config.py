"""The typed settings (nasp_tf.config): every flag of a program is a field of
its config with the flag's default, and a shipped flagfile reads into one."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from nasp_tf import config, shipped

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CODE = """
import dataclasses, json, sys
from absl import flags
from nasp_tf import config
module = __import__("nasp_tf.cli." + sys.argv[1] + "_flags", fromlist=["x"])
module.define_flags()
cls = {"search": config.SearchConfig, "train": config.TrainConfig,
       "bench": config.BenchConfig}[sys.argv[1]]
out = {}
for field in dataclasses.fields(cls):
    default = flags.FLAGS[field.name].default
    out[field.name] = [list(default) if isinstance(default, (list, tuple)) else default,
                       list(field.default) if isinstance(field.default, tuple) else field.default]
print(json.dumps(out))
"""


@pytest.mark.parametrize("program", ["search", "train", "bench"])
def test_every_flag_default_is_its_config_fields(program):
    result = subprocess.run([sys.executable, "-c", CODE, program], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    for name, (flag, field) in json.loads(result.stdout).items():
        assert flag == field, name


def test_a_shipped_flagfile_reads_into_a_config():
    path = shipped.config_path("quickstart.flags")
    lines = [line.strip()[2:].split("=", 1) for line in open(path)
             if line.startswith("--")]
    read = config.from_flagfile(config.SearchConfig, path, epochs=3)
    for name, value in lines:
        if name == "epochs":
            assert read.epochs == 3
        else:
            field = type(getattr(config.SearchConfig(), name))
            assert getattr(read, name) == field(value), name
    assert read.searcher == "nasp"  # not in the file: the default
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.epochs = 4
