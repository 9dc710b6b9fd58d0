"""Flags shaped by the program: a flag that does nothing for the chosen data family
or searcher is refused in one line (exit 2, before TensorFlow loads), and flags.txt
records only the flags that apply."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(binary, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "bin", binary), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("binary,args,message", [
    ("search.py", ["--dataset=ptb_sample", "--space=nasp12"], "--space does not apply to text"),
    ("search.py", ["--dataset=ptb_sample", "--penalize=all"], "--penalize does not apply"),
    ("search.py", ["--dataset=digits", "--bptt=20"], "--bptt does not apply to images"),
    ("search.py", ["--searcher=darts1", "--derive=softmax"], "not read by --searcher=darts1"),
    ("search.py", ["--searcher=darts2", "--eta=1"], "--eta is not read by --searcher=darts2"),
    ("search.py", ["--searcher=nasp", "--pa_order=1"], "--pa_order is not read"),
    ("search.py", ["--dataset=ptb_sample", "--searcher=pa"], "does not search text datasets"),
    ("search.py", ["--cpu_devices=2"], "add --strategy=mirrored"),
    ("train.py", ["--genotype=NASP", "--cpu_devices=2"], "add --strategy=mirrored"),
    ("train.py", ["--genotype=DARTS_V2", "--dataset=ptb_sample", "--cutout=3"],
     "--cutout does not apply to text"),
    ("train.py", ["--genotype=NASP", "--dataset=digits", "--nonmono=3"],
     "--nonmono does not apply to images"),
])
def test_flags_that_do_nothing_are_refused(binary, args, message):
    result = run(binary, *args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"{binary}: error: "), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_flags_record_holds_only_what_applies(tmp_path):
    # A dry run writes nothing; parse the record through the flag set directly.
    code = f"""
import sys
sys.path.insert(0, {ROOT!r})
from absl import flags
from nasp_tf.cli import search_flags
search_flags.define_flags()
search_flags.parse_or_exit(["x", "--dataset=ptb_sample", "--searcher=darts1"], "search.py")
print(search_flags.serialize())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    names = {line.split("=")[0].lstrip("-").removeprefix("no") for line in out.stdout.split()}
    assert {"dataset", "searcher", "bptt", "rnn_units", "arch_learning_rate"} <= names
    assert not names & {"space", "cutout", "eta", "derive", "prox_value", "pa_order", "layers"}
    # The record is a valid flagfile for a rerun: every flag in it applies.
    record = tmp_path / "flags.txt"
    record.write_text(out.stdout)
    rerun = run("search.py", f"--flagfile={record}", "--epochs=0")
    assert "does not apply" not in rerun.stderr and "not read" not in rerun.stderr
    assert "--epochs=0" in rerun.stderr  # the only complaint: the bound of --epochs


@pytest.mark.parametrize("binary", ["search.py", "train.py"])
def test_help_lists_the_binarys_own_flags_grouped(binary):
    result = run(binary, "--help")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"usage: {binary}")
    for group in ("flags for every run:", "flags images only:", "flags text only:"):
        assert group in out
    assert "--dataset (default 'cifar10')" in out and "--bptt (default '35')" in out
    images_part = out.split("flags images only:")[1].split("flags text only:")[0]
    assert "--cutout" in images_part and "--bptt" not in images_part
    assert "--alsologtostderr" not in out  # absl's own flags are for --helpfull


@pytest.mark.parametrize("program,flag", [("search.py", "--searcher"), ("train.py", "--genotype"),
                                          ("bench.py", "--quality"), ("compare.py", "RUN_DIR"),
                                          ("launch.py", "--workers")])
def test_help_of_every_binary_exits_0_and_lists_its_flags(run_bin, program, flag):
    result = run_bin(program, "--help")
    assert result.returncode == 0 and flag in result.stdout, result.stderr[-2000:]
