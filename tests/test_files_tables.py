"""Atomic writes (mtcnn_lab.files) and result tables (mtcnn_lab.io.tables), their race branches included,
against expected bytes written out by hand."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from mtcnn_lab.errors import OutputExists, ParameterError
from mtcnn_lab.files import writable_folder, write_atomic, write_json
from mtcnn_lab.io.tables import save_table


def test_write_atomic_writes_creates_folders_and_leaves_no_temp(tmp_path):
    path = write_atomic(tmp_path / "a" / "b.bin", b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01" and os.listdir(tmp_path / "a") == ["b.bin"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_atomic_never_overwrites_unless_asked(tmp_path):
    path = tmp_path / "x.json"
    write_json(path, {"a": 1})
    with pytest.raises(OutputExists, match="x.json: already exists; pass --overwrite"):
        write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    write_json(path, {"a": 3}, overwrite=True)
    assert path.read_text() == '{\n "a": 3\n}\n'
    assert sorted(os.listdir(tmp_path)) == ["x.json"]


def test_a_file_created_meanwhile_is_not_replaced(tmp_path, monkeypatch):
    """The race: another process creates the file between the check and the final move (a hard link)."""
    path = tmp_path / "x.bin"
    real_link = os.link

    def link_after_someone_else(src, dst):
        path.write_bytes(b"theirs")
        return real_link(src, dst)

    monkeypatch.setattr(os, "link", link_after_someone_else)
    with pytest.raises(OutputExists, match="already exists"):
        write_atomic(path, b"ours")
    assert path.read_bytes() == b"theirs" and sorted(os.listdir(tmp_path)) == ["x.bin"]


def test_without_hard_links_the_move_still_refuses_an_existing_file(tmp_path, monkeypatch):
    path = tmp_path / "x.bin"

    def no_links(src, dst):
        raise PermissionError("this file system has no hard links")

    monkeypatch.setattr(os, "link", no_links)
    write_atomic(path, b"first")
    assert path.read_bytes() == b"first"

    def no_links_and_a_rival(src, dst):
        path.write_bytes(b"theirs")
        raise PermissionError("this file system has no hard links")

    monkeypatch.setattr(os, "link", no_links_and_a_rival)
    path.unlink()
    with pytest.raises(OutputExists):
        write_atomic(path, b"ours")
    assert path.read_bytes() == b"theirs" and sorted(os.listdir(tmp_path)) == ["x.bin"]


def test_a_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(tmp_path / "x.bin", b"data")
    assert os.listdir(tmp_path) == []


def test_save_table_bytes_by_hand(tmp_path):
    rows = [{"name": "a", "value": np.float32(0.5), "n": np.int64(3), "list": [1, 2], "bad": float("nan")},
            {"name": "b", "value": 1.25, "n": 4, "list": {"k": np.array([1.5])}, "bad": float("inf")}]
    paths = save_table(rows, "t", tmp_path, meta={"source": "hand", "nan": np.nan})
    assert paths["csv"].read_text() == (
        "name,value,n,list,bad\n"
        'a,0.5,3,"[1, 2]",\n'
        'b,1.25,4,"{""k"": [1.5]}",\n')
    assert json.loads(paths["json"].read_text()) == {
        "meta": {"source": "hand", "nan": None},
        "rows": [{"name": "a", "value": 0.5, "n": 3, "list": [1, 2], "bad": None},
                 {"name": "b", "value": 1.25, "n": 4, "list": {"k": [1.5]}, "bad": None}]}
    again = save_table(rows, "t", tmp_path, meta={"source": "hand", "nan": np.nan})  # same rows, same bytes
    assert again["json"].read_bytes() == paths["json"].read_bytes()


def test_save_table_of_no_rows(tmp_path):
    paths = save_table([], "empty", tmp_path)
    assert paths["csv"].read_text() == "\n" and json.loads(paths["json"].read_text()) == {"meta": {}, "rows": []}


def test_writable_folder_creates_the_folder_or_says_in_one_line_why_it_cannot(tmp_path):
    assert writable_folder(tmp_path / "a" / "b", "fix it") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the probe file is gone
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(ParameterError, match=r"file.jpg is a file, not a folder; choose another --out folder$"):
        writable_folder(tmp_path / "file.jpg" / "out", "choose another --out folder")
    assert (tmp_path / "file.jpg").read_bytes() == b"x"
    with pytest.raises(ParameterError, match=r"cannot write in /proc/mtcnn-lab-test \(.+\); fix it$"):
        writable_folder("/proc/mtcnn-lab-test", "fix it")
