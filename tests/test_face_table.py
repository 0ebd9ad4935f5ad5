"""Per-frame face tables (``detect --csv``, the corpus's CSV files): rows worked out by hand, and the CLI's
table against its own ``--json`` results on a video with face-less frames and a two-face image."""

from __future__ import annotations

import csv
import json
import os
import shutil

import cv2
import numpy as np
import pytest

from mtcnn_lab.io.face_table import COLUMNS, face_csv, face_rows

from .test_cli import HOPPER, make_frames, run, write_video


def _face(x, conf):
    return {"bbox": [x, 2.5, 30.0, 40.0], "confidence": conf,
            "landmarks": [[x + k, 10.0 + k] for k in range(5)]}


def test_rows_by_hand():
    entries = [
        {"image": "a.jpg", "frame": None, "width": 90, "height": 90, "faces": [_face(1.0, 0.9), _face(50.0, 0.8)]},
        {"image": "v.mp4", "frame": 0, "width": 90, "height": 90, "faces": []},
        {"image": "v.mp4", "frame": 3, "width": 90, "height": 90, "faces": [_face(7.25, 0.99)]},
        {"image": "bad.png", "frame": None, "error": "bad.png: not an image"},
    ]
    rows = face_rows(entries, {"v.mp4": 25.0})
    assert [(r["path"], r["frame"], r["timestamp_s"], r["face"]) for r in rows] == [
        ("a.jpg", "", "", 0), ("a.jpg", "", "", 1), ("v.mp4", 0, 0.0, ""), ("v.mp4", 3, 0.12, 0),
        ("bad.png", "", "", "")]
    assert [rows[1][k] for k in ("confidence", "x", "y", "w", "h")] == [0.8, 50.0, 2.5, 30.0, 40.0]
    assert [rows[3][f"lm{k}_{a}"] for k in range(1, 6) for a in "xy"] == [7.25, 10, 8.25, 11, 9.25, 12, 10.25, 13,
                                                                          11.25, 14]
    assert rows[2]["confidence"] == "" and rows[4]["error"] == "bad.png: not an image"
    assert face_rows(entries[1:3])[1]["timestamp_s"] == ""  # no frame rate known: no time stamp
    text = face_csv(rows).decode()
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert text.splitlines()[3] == "v.mp4,0,0.0" + "," * 17  # 20 columns, 17 of them empty
    assert len(COLUMNS) == 20


def _read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _expected_rows(results: list[dict]) -> list[tuple]:
    """From the --json results, independently of the table code: (path, frame, face, floats...)."""
    rows = []
    for entry in results:
        frame = "" if entry.get("frame") is None else str(entry["frame"])
        if not entry.get("faces"):
            rows.append((entry["image"], frame, ""))
        for i, face in enumerate(entry.get("faces", [])):
            rows.append((entry["image"], frame, str(i), face["confidence"], *face["bbox"],
                         *[v for point in face["landmarks"] for v in point]))
    return rows


def _table_rows(table: list[dict]) -> list[tuple]:
    out = []
    for row in table:
        if row["face"] == "":
            out.append((row["path"], row["frame"], ""))
        else:
            values = [float(row[c]) for c in COLUMNS[4:19]]
            out.append((row["path"], row["frame"], row["face"], *values))
    return out


def test_detect_csv_on_a_video_with_face_less_frames(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frames = make_frames(4)
    frames[1][:] = 90  # two frames without a face
    frames[3][:] = 200
    write_video(tmp_path / "clip.avi", frames)  # 10 fps
    code, out, err = run(capsys, "detect", "clip.avi", "--every", "1", "--workers", "1", "--backend", "numpy",
                         "--json", "r.json", "--csv", "r.csv", "-q")
    assert code == 0, err
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    table = _read(tmp_path / "r.csv")
    assert [len(e["faces"]) for e in results] == [1, 0, 1, 0]
    assert _table_rows(table) == _expected_rows(results)
    assert [r["timestamp_s"] for r in table] == ["0.0", "0.1", "0.2", "0.3"]  # frame / 10 fps
    code, _, err = run(capsys, "detect", "clip.avi", "--backend", "numpy", "--csv", "r.csv", "-q")
    assert code == 2 and "r.csv already exists; pass --force to replace it or choose another --csv path" in err


def test_detect_csv_on_a_two_face_image(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    face = cv2.imread(str(HOPPER))
    cv2.imwrite(str(tmp_path / "two.png"), np.concatenate([face, face[:, ::-1]], axis=1))
    shutil.copyfile(HOPPER, tmp_path / "one.jpg")
    code, _, err = run(capsys, "detect", "two.png", "one.jpg", "--backend", "numpy", "--json", "r.json",
                       "--csv", "r.csv", "-q")
    assert code == 0, err
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    table = _read(tmp_path / "r.csv")
    assert [len(e["faces"]) for e in results] == [2, 1]
    assert [(r["path"], r["face"], r["frame"], r["timestamp_s"]) for r in table] == [
        ("two.png", "0", "", ""), ("two.png", "1", "", ""), ("one.jpg", "0", "", "")]
    assert _table_rows(table) == _expected_rows(results)


@pytest.mark.parametrize("target", ["folder", "taken"])
def test_csv_path_problems_are_one_line_errors_before_the_run(capsys, tmp_path, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(HOPPER, tmp_path / "one.jpg")
    (tmp_path / "out").mkdir()
    (tmp_path / "taken.csv").write_text("mine\n")
    path = "out" if target == "folder" else "taken.csv"
    code, out, err = run(capsys, "detect", "one.jpg", "--backend", "numpy", "--csv", path)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert ("is a directory; give a file path for --csv" if target == "folder" else "already exists") in err
    assert (tmp_path / "taken.csv").read_text() == "mine\n"


def test_a_file_name_that_is_not_utf8_is_one_error_row_not_a_crash(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    image, video = os.fsdecode(b"bad\xff.jpg"), os.fsdecode(b"clip\xfe.avi")
    shutil.copyfile(HOPPER, image)
    os.rename(write_video(tmp_path / "clip.avi", make_frames(2)), video)  # OpenCV cannot write that name itself
    code, _, err = run(capsys, "detect", image, video, "--every", "1", "--backend", "numpy", "--json", "r.json",
                       "--csv", "r.csv", "-q")
    assert code == 1  # every input failed, each in one line
    assert err.count("the file name is not valid UTF-8, which OpenCV cannot open; rename the file") == 2
    assert "Traceback" not in err
    rows = (tmp_path / "r.csv").read_bytes().split(b"\n")
    assert rows[1].startswith(b"bad\xff.jpg,") and rows[2].startswith(b"clip\xfe.avi,")  # the names as on disk
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    assert [e["image"] for e in results] == [image, video] and all("error" in e for e in results)
