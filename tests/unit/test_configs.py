"""--flagfile finds the shipped configs from any directory."""

import os

import pytest

from nasp_tf.cli import flags_common


@pytest.mark.parametrize("given", ["configs/quickstart.flags", "quickstart.flags"])
def test_shipped_configs_resolve_from_any_directory(tmp_path, monkeypatch, root, given):
    monkeypatch.chdir(tmp_path)
    path = flags_common.resolve_flagfile(given)
    assert os.path.samefile(path, os.path.join(root, "configs", "quickstart.flags"))
    assert flags_common.resolve_flagfiles(["search.py", f"--flagfile={given}", "--epochs=2"]) \
        == ["search.py", f"--flagfile={path}", "--epochs=2"]
    assert flags_common.resolve_flagfiles(["x", "--flagfile", given]) == ["x", "--flagfile", path]


def test_a_local_file_wins_and_other_paths_stay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "quickstart.flags").write_text("--epochs=1\n")
    assert flags_common.resolve_flagfile("configs/quickstart.flags") == \
        "configs/quickstart.flags"
    # Only a bare name or configs/<name> means a shipped config.
    assert flags_common.resolve_flagfile("/elsewhere/quickstart.flags") == \
        "/elsewhere/quickstart.flags"
    assert flags_common.resolve_flagfile("missing.flags") == "missing.flags"


def test_shipped_configs_name_no_directory_of_ours(root):
    # Their data and output paths are the user's (relative to where the run
    # starts); nothing in them points into the repository.
    names = os.listdir(os.path.join(root, "configs"))
    assert {"quickstart.flags", "ptb_quickstart.flags", "cifar10.flags", "ptb.flags"} <= set(names)
    for name in names:
        text = open(os.path.join(root, "configs", name), encoding="utf-8").read()
        assert "configs/" not in text and "nasp_tf/" not in text, name
