"""nasp_tf.fs, atomic writes and run-directory decisions on a TensorFlow file
system (the in-memory ram://, as gs:// or s3:// would be): checked through
tf.io.gfile, and nothing may appear on the local disk instead."""

import os
import uuid

import pytest
import tensorflow as tf

from nasp_tf import atomic
from nasp_tf import fs
from nasp_tf import run_dir
from nasp_tf.errors import UserError


@pytest.fixture
def url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a URL taken for a local path would land here
    yield f"ram://test-{uuid.uuid4().hex[:8]}/run"
    assert os.listdir(tmp_path) == []


def read(path):
    with tf.io.gfile.GFile(path) as f:
        return f.read()


def test_text_files_are_written_replaced_and_appended(url):
    atomic.write_text(f"{url}/a.json", "one")
    atomic.write_text(f"{url}/a.json", "two")
    atomic.append_text(f"{url}/log.txt", "x\n")
    atomic.append_text(f"{url}/log.txt", "y\n")
    assert read(f"{url}/a.json") == "two" and read(f"{url}/log.txt") == "x\ny\n"
    assert sorted(tf.io.gfile.listdir(url)) == ["a.json", "log.txt"]  # no temporaries left


def test_a_directory_is_replaced_whole_and_a_failed_write_changes_nothing(url):
    for files in ({"old.txt": "1", "sub/deep.txt": "2"}, {"new.txt": "3"}):
        with atomic.writing(f"{url}/export") as tmp:
            for name, text in files.items():
                os.makedirs(os.path.dirname(os.path.join(tmp, name)), exist_ok=True)
                with open(os.path.join(tmp, name), "w") as f:
                    f.write(text)
    assert fs.files_under(f"{url}/export") == ["new.txt"] and read(f"{url}/export/new.txt") == "3"
    with pytest.raises(RuntimeError):
        with atomic.writing(f"{url}/export") as tmp:
            os.makedirs(tmp)
            raise RuntimeError("the writer failed")
    assert fs.files_under(f"{url}/export") == ["new.txt"]
    assert fs.listdir(url) == ["export"]  # no temporaries left


def test_a_run_directory_is_claimed_resumed_refused_and_moved_aside(url):
    assert run_dir.plan(url, "--epochs=1\n") == run_dir.NEW
    run_dir.commit(url, run_dir.NEW, "--epochs=1\n", "search.py", argv=["search.py"])
    assert read(f"{url}/flags.txt") == "--epochs=1\n"
    assert run_dir.plan(url, "--epochs=1\n--verbose=2\n") == run_dir.RESUME
    with pytest.raises(UserError, match="other flags .--epochs=1 there, --epochs=2 here"):
        run_dir.plan(url, "--epochs=2\n")
    decision = run_dir.plan(url, "--epochs=2\n", overwrite=True)
    moved = run_dir.commit(url, decision, "--epochs=2\n", "search.py", argv=["search.py"])
    assert moved == f"{url}.old-1" and read(f"{moved}/flags.txt") == "--epochs=1\n"
    assert read(f"{url}/flags.txt") == "--epochs=2\n"
    assert read(f"{url}/flags_history.txt").count("search.py (") == 1


def test_an_unknown_file_system_is_refused_in_one_line():
    assert run_dir.usable_path("nofs://bucket/run")  # decided by plan, which says why
    with pytest.raises(UserError) as refused:
        run_dir.plan("nofs://bucket/run", "")
    assert "nofs" in str(refused.value) and "\n" not in str(refused.value)
    assert not run_dir.usable_path("ram://x/bench", remote=False)
