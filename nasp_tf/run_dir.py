"""Who may write into a run directory, decided before anything is written.

A run directory belongs to the flags that made it (its `flags.txt`). A
command may write into it only if it is new or empty, if it repeats those
flags (an exact resume), or if the user says `--overwrite`; then the old run
is moved aside to `DIR.old-N`, never deleted. Every invocation that goes on
to run is appended to `flags_history.txt`, so the directory always says how
each part of it was made. No TensorFlow here for local directories: a
refusal costs a fraction of a second. A URL (`gs://bucket/run`, any file
system TensorFlow knows) is read and written through `nasp_tf.fs`.
"""

import datetime
import os
import re
import shlex
import sys

from nasp_tf import atomic
from nasp_tf import fs
from nasp_tf.errors import UserError

FLAGS_FILE = "flags.txt"
HISTORY_FILE = "flags_history.txt"
# Flags that change how a run is shown or started, never what it computes.
VOLATILE = ("verbose", "resume", "overwrite", "export_only", "export", "dry_run", "json", "on_nan",
            "checkpoint_every")
# Kernel file systems: writes there fail or do something else than storing a file.
SPECIAL_ROOTS = ("/proc", "/sys", "/dev")

NEW, RESUME, OVERWRITE = "new", "resume", "overwrite"

_SECONDS = {"s": 1, "m": 60, "h": 3600}


def checkpoint_interval(text):
    """(steps, seconds) of a --checkpoint_every value: `N` steps, `Ns`, `Nm` or
    `Nh` of wall-clock time, or 0 (only at epoch ends). ValueError if it is
    none of these."""
    match = re.fullmatch(r"\s*(\d+)\s*([smh]?)\s*", str(text))
    if not match:
        raise ValueError("--checkpoint_every takes N (steps), Ns, Nm or Nh (time) or 0 (epoch "
                         f"ends only). Received: {text!r}")
    number, unit = int(match.group(1)), match.group(2)
    return (0, float(number * _SECONDS[unit])) if unit else (number, 0.0)


def flag_name(line):
    """The flag a flagfile line sets ("--noexport" sets export)."""
    name = line.lstrip("-").split("=", 1)[0]
    return name[2:] if name.startswith("no") and "=" not in line else name


def significant_flags(flags_text):
    """{flag name: its line} of a flags record, without the volatile flags."""
    table = {}
    for line in (line.strip() for line in flags_text.splitlines()):
        if line.startswith("--"):
            name = flag_name(line)
            if name not in VOLATILE:
                table[name] = line
    return table


def differences(recorded, requested):
    """The flags that differ between two records, as "--x=1 there, --x=2 here"."""
    old, new = significant_flags(recorded), significant_flags(requested)
    found = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            found.append(f"{old.get(name, f'--{name} unset')} there, "
                         f"{new.get(name, f'--{name} unset')} here")
    return found


def aside_name(path):
    """The first free `path.old-N`."""
    n = 1
    while fs.exists(f"{path}.old-{n}"):
        n += 1
    return f"{path}.old-{n}"


def _check_url(output_dir, what):
    from nasp_tf import native_logs

    # A URL's file system is TensorFlow's; its start-up lines and a failed
    # credential lookup are printed by native code.
    with native_logs.quiet_native_stderr():
        import tensorflow as tf
        try:
            is_file = tf.io.gfile.exists(output_dir) and not tf.io.gfile.isdir(output_dir)
            reason = None
        except tf.errors.OpError as e:
            reason = " ".join(str(e.message).split())
    if reason:
        raise UserError(f"{what}={output_dir}: TensorFlow cannot use this location ({reason}): "
                        "check the URL's scheme and your credentials, or choose a local path")
    if is_file and what == "--output_dir":
        raise UserError(f"--output_dir={output_dir} is a file, not a directory: choose "
                        "another --output_dir")


def check_path(output_dir, what="--output_dir", remote=True):
    """A one-line UserError if `output_dir` cannot hold a run directory (or,
    with another `what`, be written as a file). A URL (`gs://...`) must be on
    a file system TensorFlow can reach; with `remote=False` URLs are refused."""
    if fs.is_remote(output_dir):
        if not remote:
            raise UserError(f"{what}={output_dir}: this writes local files only: choose a "
                            "path on disk")
        _check_url(output_dir, what)
        return
    real = os.path.realpath(output_dir)
    for root in SPECIAL_ROOTS:
        if real == root or real.startswith(root + os.sep):
            raise UserError(f"{what}={output_dir} is on the kernel's {root} file "
                            "system, which cannot hold files: choose a path on disk")
    if what == "--output_dir" and os.path.exists(real) and not os.path.isdir(real):
        raise UserError(f"--output_dir={output_dir} is a file, not a directory: choose "
                        "another --output_dir")
    probe = real
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{what}={output_dir}: {probe} is not writable: choose a "
                        "path you can write to")


def usable_path(path, what="--output_dir", remote=True):
    """Whether `check_path` accepts `path` (for absl flag validators). A URL
    is accepted here and checked by `plan`, which says why it is refused:
    reaching its file system takes TensorFlow."""
    if fs.is_remote(path):
        return remote
    try:
        check_path(path, what, remote)
    except UserError:
        return False
    return True


def resumes(resume, export_only=False):
    """Whether a command continues the run in its --output_dir: --resume, or
    retraining's --export_only (which exports the run's last checkpoint)."""
    return resume or export_only


def plan(output_dir, flags_text, resume=True, overwrite=False):
    """What this command may do with `output_dir`: NEW, RESUME or OVERWRITE.

    Raises a one-line UserError when it may do nothing: a directory made by
    other flags, or a restart (`--noresume`) of an existing run, without
    `--overwrite`.
    """
    check_path(output_dir)
    if not fs.isdir(output_dir) or not fs.listdir(output_dir):
        return NEW
    aside = aside_name(output_dir.rstrip("/" + os.sep))
    keep = f"add --overwrite to start again (the old run is moved to {aside}, not deleted)"
    record = fs.join(output_dir, FLAGS_FILE)
    if not fs.exists(record):
        if overwrite:
            return OVERWRITE
        raise UserError(f"--output_dir={output_dir} exists and is not a nasp_tf run "
                        f"directory (no {FLAGS_FILE}): choose another --output_dir or {keep}")
    try:
        recorded = fs.read_text(record)
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {record} ({e}): choose another --output_dir or "
                        f"{keep}") from None
    changed = differences(recorded, flags_text)
    if overwrite:
        return OVERWRITE
    if not resume:
        raise UserError(f"--noresume would restart the run in {output_dir}: drop --noresume "
                        f"to resume it, or {keep}")
    if changed:
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        raise UserError(f"{output_dir} holds a run made with other flags ({changed[0]}{more}): "
                        f"resume it with --flagfile={record}, choose another --output_dir, "
                        f"or {keep}")
    return RESUME


def commit(output_dir, decision, flags_text, program, argv=None):
    """Carries out `decision` once the inputs are validated: moves an old run
    aside (OVERWRITE), writes flags.txt atomically and appends this command to
    the flags history. Returns the directory the old run went to, or None."""
    moved = None
    if decision == OVERWRITE:
        moved = aside_name(output_dir.rstrip("/" + os.sep))
        fs.move(output_dir, moved)
    fs.makedirs(output_dir)
    if decision != RESUME:
        atomic.write_text(fs.join(output_dir, FLAGS_FILE), flags_text)
    argv = sys.argv if argv is None else argv
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    atomic.append_text(fs.join(output_dir, HISTORY_FILE),
                       f"# {stamp} {program} ({decision}"
                       + (f", old run moved to {moved}" if moved else "") + ")\n"
                       + " ".join(shlex.quote(a) for a in argv) + "\n")
    return moved
