"""The documentation says what the code does: the README stays short, no page
speaks of anything but the software, the flag tables of docs/usage.md are
the programs' flags with their defaults, and every command shown in the
README and docs/ parses as written (those with --dry_run also run)."""

import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGES = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
PROGRAMS = {"search.py": "search", "train.py": "train", "bench.py": "bench",
            "compare.py": "compare", "launch.py": "launch", "nasp-search": "search",
            "nasp-train": "train", "nasp-bench": "bench", "nasp-compare": "compare",
            "nasp-launch": "launch"}
# Stand-ins for the user's own paths in the examples.
PLACEHOLDER_DIRS = ("my_pictures", "DIR_WITH_ILSVRC2012_TARS", "data/penn", "data/wikitext-2")
PLACEHOLDER_FILES = ("my_pictures.npz", "tabular.npz", "runs/tabular_search/choices.json")


def test_the_readme_is_a_front_door():
    with open(PAGES[0], encoding="utf-8") as f:
        assert len(f.read().splitlines()) <= 250


@pytest.mark.parametrize("page", PAGES, ids=os.path.basename)
def test_pages_speak_of_the_software_only(page):
    text = open(page, encoding="utf-8").read().lower()
    for words in ("this session", "previous session", "last session", "this hour",
                  "the issue"):
        assert words not in text, (page, words)


def shell_blocks(text):
    """The code blocks of a page that name no language (its shell commands),
    fence by fence: a ```python block is not one, nor the prose between two
    blocks."""
    blocks, lines, language = [], None, None
    for line in text.splitlines():
        if line.startswith("```"):
            if lines is None:
                lines, language = [], line[3:].strip()
            else:
                if not language:
                    blocks.append("\n".join(lines))
                lines = None
        elif lines is not None:
            lines.append(line)
    return blocks


def commands():
    """Every shell command of a code block in the README and docs/:
    (page, program, arguments)."""
    found = []
    for page in PAGES:
        text = open(page, encoding="utf-8").read()
        for block in shell_blocks(text):
            for line in block.splitlines():
                line = line.split("  #")[0].strip()
                if "bin/" not in line and "nasp-" not in line:
                    continue
                words = shlex.split(line)
                if "&&" in words:
                    words = words[words.index("&&") + 1:]
                if len(words) > 1 and words[0] == "python" and words[1].startswith("bin/"):
                    words = words[1:]
                if words and os.path.basename(words[0]) in PROGRAMS:
                    found.append((os.path.basename(page), os.path.basename(words[0]),
                                  words[1:]))
    return found


COMMANDS = commands()
PARSE = """
import json, sys
from nasp_tf.cli import flags_common
program, args = sys.argv[1], json.loads(sys.argv[2])
module = {"search": "search_flags", "train": "train_flags", "bench": "bench_flags"}[program]
flags = __import__("nasp_tf.cli." + module, fromlist=["x"])
flags.define_flags()
flags.parse_or_exit([program + ".py", *args], program + ".py")
"""


# What bin/launch.py gives each worker (a cluster's commands are checked with it).
TF_CONFIG = json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
                        "task": {"type": "worker", "index": 0}})


def parse(program, args, cwd):
    return subprocess.run([sys.executable, "-c", PARSE, program, json.dumps(args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ROOT, "TF_CONFIG": TF_CONFIG})


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A directory holding the example paths the commands name."""
    work = tmp_path_factory.mktemp("docs")
    for name in PLACEHOLDER_DIRS:
        (work / name).mkdir(parents=True)
    for name in PLACEHOLDER_FILES:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(b"")
    # The user's data is checked when the flags are parsed: a folder of class
    # folders (file names are what is checked) and archives with their keys.
    for cls in ("cat", "dog"):
        (work / "my_pictures" / cls).mkdir()
        (work / "my_pictures" / cls / "1.png").write_bytes(b"")
    for name in ("my_pictures.npz", "tabular.npz"):
        np.savez(work / name, x_train=np.zeros((4, 8, 8, 3)), y_train=np.arange(4) % 2)
    # Genotypes of runs the pages made earlier (a search's output, read by the next command).
    from nasp_tf import genotype as genotype_lib

    for run in ("quickstart", "budget"):
        (work / "runs" / run).mkdir(parents=True, exist_ok=True)
        genotype_lib.write_json(genotype_lib.PUBLISHED["DARTS_V2"],
                                str(work / "runs" / run / "genotype.json"))
    shutil.copytree(os.path.join(ROOT, "examples"), work / "examples")  # --space=examples/...
    return work


def test_the_pages_show_commands_of_every_program():
    assert len(COMMANDS) > 30
    assert {PROGRAMS[c[1]] for c in COMMANDS} >= {"search", "train", "bench", "compare",
                                                  "launch"}


@pytest.mark.parametrize("page,program,args", COMMANDS,
                         ids=[f"{c[0]}:{c[1]}:{i}" for i, c in enumerate(COMMANDS)])
def test_every_command_in_the_docs_parses_as_written(page, program, args, workspace):
    program = PROGRAMS[program]
    if program == "launch":
        # bin/launch.py [--workers=N] -- bin/search.py ...: the launched command's flags.
        assert "--" in args and args[0].startswith("--workers="), args
        program, args = PROGRAMS[os.path.basename(args[args.index("--") + 1])], \
            args[args.index("--") + 2:] + ["--strategy=multi_worker"]
    if program == "compare":
        assert args and not args[0].startswith("-"), args
        return
    result = parse(program, args, workspace)
    assert result.returncode == 0, (page, args, result.stderr[-1500:])


# Retraining's dry runs build the network on no data; a search's needs the dataset.
DRY_RUNS = [c for c in COMMANDS if "--dry_run" in c[2] and PROGRAMS[c[1]] == "train"]


@pytest.mark.slow
@pytest.mark.parametrize("page,program,args", DRY_RUNS,
                         ids=[f"{c[0]}:{i}" for i, c in enumerate(DRY_RUNS)])
def test_dry_runs_in_the_docs_print_what_they_say(page, program, args, workspace, run_script):
    text = open(os.path.join(ROOT, "README.md" if page == "README.md" else f"docs/{page}"),
                encoding="utf-8").read()
    result = run_script(os.path.join(ROOT, "bin", "train.py"), *args, cwd=workspace,
                        timeout=300)
    count = result.stdout.split("parameters:")[1].split()[0]
    assert int(count) > 0
    line = next(line for line in text.splitlines() if " ".join(args) in line)
    if "# parameters:" in line:
        assert line.split("# parameters:")[1].split()[0] == count


def flag_defaults(program):
    """{flag: default as absl prints it} of a program, from its flag module."""
    code = f"""
import json
from absl import flags
from nasp_tf.cli import {program}_flags as m
m.define_flags()
print(json.dumps({{n: (flags.FLAGS[n].default_as_str or "").strip("'") for n in m.FLAG_SET.names()}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": ROOT}, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("program", ["search", "train", "bench"])
def test_the_flag_tables_of_usage_md_are_the_programs_flags(program):
    text = open(os.path.join(ROOT, "docs", "usage.md"), encoding="utf-8").read()
    section = text.split(f"## bin/{program}.py\n")[1].split("\n## ")[0]
    table = {}
    for row in re.findall(r"^\| `--(\w+)` \| `([^`]*)` \|", section, re.M):
        table[row[0]] = "" if row[1] == "—" else row[1]
    assert table == flag_defaults(program)
