"""mtl.io: file modes follow the umask, folders are checked before work, completion markers."""

from __future__ import annotations

import json
import os
import stat

import pytest

from mtl import io

CONFIG = {"study": "demo", "n": 1}


def test_result_files_get_the_mode_the_umask_gives(tmp_path):
    old = os.umask(0o027)
    try:
        path = io.atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    old = os.umask(0o002)
    try:
        path = io.atomic_write_text(tmp_path / "b.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o664


def test_a_file_as_output_folder_is_refused_and_nothing_is_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    with pytest.raises(ValueError, match="is a file; pass a folder"):
        io.check_output_dir(blocker, CONFIG)
    with pytest.raises(ValueError, match=r"cannot be created: .*file' is a file"):
        io.prepare_output_dir(blocker / "sub" / "deeper", CONFIG)
    assert blocker.read_text() == "mine"


def test_check_output_dir_writes_nothing(tmp_path):
    io.check_output_dir(tmp_path / "new", CONFIG)
    assert not (tmp_path / "new").exists()


def test_a_folder_without_write_permission_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # root may write anywhere
    with pytest.raises(ValueError, match="cannot be created: no write permission in"):
        io.check_output_dir(tmp_path / "new", CONFIG)


def test_completing_marks_the_folder_only_when_the_work_returns(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError), io.completing(out, CONFIG) as folder:
        io.atomic_write_text(folder / "a.csv", "1\n")
        raise RuntimeError("work failed")
    assert not io.is_complete(out, CONFIG) and not (out / io.COMPLETE_NAME).exists()
    with io.completing(out, CONFIG) as folder:
        io.atomic_write_text(folder / "a.csv", "1\n")
    marker = json.loads((out / io.COMPLETE_NAME).read_text())
    assert marker == {"config_hash": io.config_hash(CONFIG), "files": ["a.csv", "config.json"]}
    assert io.is_complete(out, CONFIG)
    assert not io.is_complete(out, {**CONFIG, "n": 2})
    (out / "a.csv").unlink()
    assert not io.is_complete(out, CONFIG)  # a listed file went missing


def test_an_interruption_carries_the_unfinished_folder(tmp_path):
    out = tmp_path / "run"
    io.prepare_output_dir(out, CONFIG)
    io.mark_complete(out, CONFIG)
    with pytest.raises(KeyboardInterrupt) as caught, io.completing(out, CONFIG):
        raise KeyboardInterrupt
    assert caught.value.incomplete_folder == out
    assert not io.is_complete(out, CONFIG)  # the old marker went on entry


def test_config_hash_ignores_key_order():
    assert io.config_hash({"a": 1, "b": 2}) == io.config_hash({"b": 2, "a": 1})
    assert io.config_hash({"a": 1}) != io.config_hash({"a": 2})
