"""``detect --every`` under faults: its hidden per-frame file whatever the outputs, resume only with the same output
format, tampered or foreign per-frame files, a worker killed mid-video, a full disk and SIGTERM.

Interruptions are simulated in-process (a frame's detection raises KeyboardInterrupt, as Ctrl-C would), a full
disk by a per-frame file whose flush fails with ENOSPC; the dead worker is a real worker process killed with
SIGKILL, and SIGTERM goes to a real ``mtcnn-lab detect`` process.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from mtcnn_lab import MTCNN
from mtcnn_lab.cli import main
from mtcnn_lab.errors import StaleResults
from mtcnn_lab.video import stream
from mtcnn_lab.video import workers as frame_workers
from mtcnn_lab.video.stream import detect_video

from .test_real_faults import _session_processes

N_FRAMES = 12
COMMON = ["--backend", "numpy", "--weights", "zhang2016", "--workers", "1", "--threads", "1"]
HASH = "pixels_bgr_sha256"


def write_clip(path: Path, frames: int) -> Path:
    """A 320x240 MJPG clip with Grace Hopper's face drifting across."""
    face = cv2.resize(cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), (150, 176))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for k in range(frames):
        canvas = np.full((240, 320, 3), 60, np.uint8)
        canvas[30:206, 10 + 8 * k % 160:160 + 8 * k % 160] = face
        writer.write(canvas)
    writer.release()
    return path


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.avi", N_FRAMES)


@pytest.fixture
def clip(tmp_path, clip_file, monkeypatch) -> str:
    """The clip copied into the test's own working folder; its relative path."""
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(clip_file, tmp_path / "clip.avi")
    return "clip.avi"


def hidden(folder: Path) -> list[Path]:
    """The hidden per-frame files (and their settings files) of ``detect`` in ``folder``."""
    return sorted(p for p in folder.iterdir() if p.name.startswith("."))


def frames_in(jsonl: Path) -> list[int]:
    return [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()]


def interrupt_at(monkeypatch, frame: int) -> None:
    """Ctrl-C while frame ``frame`` is being detected (in the caller: ``--workers 1``)."""
    original = stream.frame_entry

    def entry(detector, image, index, *args):
        if index == frame:
            raise KeyboardInterrupt
        return original(detector, image, index, *args)

    monkeypatch.setattr(stream, "frame_entry", entry)


def count_detections(monkeypatch) -> list[int]:
    """The frames detected from now on (in the caller), in order."""
    detected: list[int] = []
    original = stream.frame_entry

    def entry(detector, image, index, *args):
        detected.append(index)
        return original(detector, image, index, *args)

    monkeypatch.setattr(stream, "frame_entry", entry)
    return detected


def test_a_csv_only_run_keeps_its_per_frame_file_and_resumes(clip, tmp_path, monkeypatch, capsys):
    argv = ["detect", clip, "--every", "1", *COMMON]
    with monkeypatch.context() as patch:
        interrupt_at(patch, 6)
        assert main([*argv, "--csv", "f.csv"]) == 130
    jsonl = [p for p in hidden(tmp_path) if p.name.endswith(".frames.jsonl")]
    assert len(jsonl) == 1 and jsonl[0].name.startswith(".f.csv.clip.avi.")  # hidden, beside the CSV
    assert frames_in(jsonl[0]) == list(range(6)) and not (tmp_path / "f.csv").exists()
    capsys.readouterr()

    detected = count_detections(monkeypatch)
    assert main([*argv, "--csv", "f.csv"]) == 0
    assert "resuming after 6 frame(s) of an interrupted run" in capsys.readouterr().err
    assert detected == list(range(6, N_FRAMES))
    assert hidden(tmp_path) == []  # the CSV holds everything now
    assert main([*argv, "--csv", "fresh.csv", "-q"]) == 0
    assert (tmp_path / "f.csv").read_text() == (tmp_path / "fresh.csv").read_text()


@pytest.mark.parametrize("first_hashes", [True, False])
def test_a_resume_never_mixes_entries_with_and_without_frame_hashes(clip, tmp_path, monkeypatch, capsys,
                                                                    first_hashes):
    argv = ["detect", clip, "--every", "1", *COMMON, "--json", "r.json"]
    with monkeypatch.context() as patch:
        interrupt_at(patch, 6)
        assert main([*argv, *(["--frame-hashes"] if first_hashes else [])]) == 130
    capsys.readouterr()
    assert main([*argv, *([] if first_hashes else ["--frame-hashes"])]) == 0
    assert "6 frame(s) of an earlier run that this one cannot resume (other settings) discarded" in \
        capsys.readouterr().err
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    assert [e["frame"] for e in results] == list(range(N_FRAMES))
    assert [HASH in e for e in results] == [not first_hashes] * N_FRAMES


def test_detect_video_refuses_a_per_frame_file_written_with_the_other_hash_setting(clip, tmp_path):
    detector = MTCNN(backend="numpy", weights="zhang2016")
    jsonl = tmp_path / "clip.frames.jsonl"
    run = detect_video(detector, clip, jsonl=jsonl, progress=False, frame_hashes=True)
    [next(run) for _ in range(3)]
    run.close()
    before = jsonl.read_bytes()
    with pytest.raises(StaleResults, match=r"made with frame_hashes True \(now False\); delete it"):
        next(detect_video(detector, clip, jsonl=jsonl, progress=False))
    assert jsonl.read_bytes() == before


def interrupted_partial(clip: str, tmp_path: Path, monkeypatch, capsys) -> Path:
    """The hidden per-frame file of a ``--json r.json`` run stopped after frames 0-5."""
    with monkeypatch.context() as patch:
        interrupt_at(patch, 6)
        assert main(["detect", clip, "--every", "1", *COMMON, "--json", "r.json"]) == 130
    capsys.readouterr()
    return next(p for p in hidden(tmp_path) if p.name.endswith(".frames.jsonl"))


def other_clip_entries(tmp_path: Path) -> list[dict]:
    """Per-frame entries of another (8x8) video, as its own run wrote them."""
    small = tmp_path / "small.avi"
    writer = cv2.VideoWriter(str(small), cv2.VideoWriter_fourcc(*"MJPG"), 10, (8, 8))
    for _ in range(6):
        writer.write(np.zeros((8, 8, 3), np.uint8))
    writer.release()
    return list(detect_video(MTCNN(backend="numpy", weights="zhang2016"), small, progress=False))


@pytest.mark.parametrize("tamper", ["error without image", "foreign frames", "not a face"])
def test_tampered_or_foreign_per_frame_entries_are_refused_in_one_line(clip, tmp_path, monkeypatch, capsys, tamper):
    partial = interrupted_partial(clip, tmp_path, monkeypatch, capsys)
    lines = partial.read_text().splitlines()
    if tamper == "error without image":
        lines[3] = json.dumps({"frame": 3, "error": "x"})
        why = "line 4"
    elif tamper == "foreign frames":
        lines = [json.dumps(dict(entry, image=clip)) for entry in other_clip_entries(tmp_path)]
        why = "line 1: a frame of 8x8 pixels, the video's are 320x240"
    else:
        entry = json.loads(lines[2])
        entry["faces"][0]["bbox"] = "somewhere"
        lines[2] = json.dumps(entry)
        why = "line 3"
    partial.write_text("\n".join(lines) + "\n")
    before = partial.read_bytes()
    code = main(["detect", clip, "--every", "1", *COMMON, "--json", "r.json", "--force"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert f"{partial.name} is not a per-frame results file of this video ({why}" in line and "delete" in line
    assert partial.read_bytes() == before  # kept as it is, for the user to look at
    assert json.loads((tmp_path / "r.json").read_text())["results"] == [
        {"image": clip, "frame": None, "error": line.removeprefix("error: ")}]


def test_detect_video_checks_every_resumed_entry_against_the_video(clip, tmp_path):
    detector = MTCNN(backend="numpy", weights="zhang2016")
    jsonl = tmp_path / "clip.frames.jsonl"
    run = detect_video(detector, clip, jsonl=jsonl, progress=False)
    [next(run) for _ in range(3)]
    run.close()
    entries = [json.loads(line) for line in jsonl.read_text().splitlines()]
    for bad in (dict(entries[1], width=8, height=8), {"image": clip, "frame": 1, "error": "x"},
                dict(entries[1], faces=[{"bbox": [1, 2, 3, 4]}])):
        jsonl.write_text("".join(json.dumps(e) + "\n" for e in (entries[0], bad, entries[2])))
        before = jsonl.read_bytes()
        with pytest.raises(StaleResults, match=r"is not a per-frame results file of this video \(line 2"):
            next(detect_video(detector, clip, jsonl=jsonl, progress=False))
        assert jsonl.read_bytes() == before


def test_a_worker_killed_mid_video_is_one_line_and_the_other_inputs_go_on(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    first, second = write_clip(tmp_path / "first.avi", N_FRAMES), write_clip(tmp_path / "second.avi", 6)
    detect = frame_workers.detect_in_workers
    # every frame to the workers, none to the caller's detector while they start
    monkeypatch.setattr(frame_workers, "detect_in_workers", lambda *args, local=None: detect(*args))
    submit, submitted = frame_workers._Worker.submit, []

    def submit_then_kill(worker, index, frame):
        sent = submit(worker, index, frame)
        submitted.append(index)
        if len(submitted) == 5:  # the out-of-memory killer, once
            os.kill(worker.process.pid, signal.SIGKILL)
        return sent

    monkeypatch.setattr(frame_workers._Worker, "submit", submit_then_kill)
    code = main(["detect", first.name, second.name, "--every", "1", "--backend", "numpy", "--weights", "zhang2016",
                 "--workers", "2", "--json", "r.json", "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    [line] = err.splitlines()
    assert line.startswith("error: first.avi: detection worker mtcnn-worker-") and "exited unexpectedly" in line
    assert "fewer --workers" in line
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    assert results[0] == {"image": "first.avi", "frame": None, "error": line.removeprefix("error: ")}
    assert [(e["image"], e["frame"]) for e in results[1:]] == [("second.avi", k) for k in range(6)]
    kept = [p.name for p in hidden(tmp_path)]
    assert len(kept) == 2 and all(name.startswith(".r.json.first.avi.") for name in kept)  # resumable
    assert multiprocessing.active_children() == []


class FillingFile:
    """An open text file on a disk with room for ``room`` more lines: what cannot be flushed stays pending (as
    in a buffered file), so flush() and close() both fail with ENOSPC."""

    def __init__(self, handle, room: int):
        self.handle, self.room, self.pending = handle, room, ""

    def write(self, text: str) -> int:
        self.pending += text
        return len(text)

    def flush(self) -> None:
        if self.pending and self.pending.count("\n") > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.handle.write(self.pending)
        self.handle.flush()
        self.room -= self.pending.count("\n")
        self.pending = ""

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.handle.close()


def test_a_full_disk_while_appending_frames_is_one_line(clip, tmp_path, monkeypatch, capsys):
    shutil.copyfile(clip, tmp_path / "second.avi")
    real_open = Path.open

    def open_(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if mode == "a" and path.name.startswith(".r.json.clip.avi."):
            return FillingFile(handle, 4)  # the per-frame file of clip.avi fills the disk after 4 frames
        return handle

    monkeypatch.setattr(Path, "open", open_)
    code = main(["detect", clip, "second.avi", "--every", "1", *COMMON, "--json", "r.json", "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "Errno" not in err
    [line] = err.splitlines()
    partial = next(p for p in hidden(tmp_path) if p.name.startswith(".r.json.clip.avi.") and p.suffix == ".jsonl")
    assert line.startswith(f"error: cannot write the per-frame results {partial.name} ({os.strerror(errno.ENOSPC)})")
    assert frames_in(partial) == [0, 1, 2, 3]  # kept, to resume once there is room
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    assert results[0] == {"image": clip, "frame": None, "error": line.removeprefix("error: ")}
    assert [e["frame"] for e in results[1:]] == list(range(N_FRAMES))


def test_sigterm_stops_detect_in_one_line_and_keeps_the_frames(tmp_path):
    write_clip(tmp_path / "long.avi", 200)
    command = [sys.executable, "-m", "mtcnn_lab.cli", "detect", "long.avi", "--every", "1", "--workers", "2",
               "--backend", "numpy", "--weights", "zhang2016", "--json", "r.json", "-q"]
    process = subprocess.Popen(command, cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)

    def lines() -> int:
        return sum(len(p.read_text().splitlines()) for p in tmp_path.glob(".r.json.*.frames.jsonl"))

    deadline = time.monotonic() + 120
    while lines() < 3:  # a hang guard, not a timing claim
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "detect never wrote a frame"
        time.sleep(0.05)
    process.terminate()  # SIGTERM to detect alone, as a service manager or `kill` sends it
    _, err = process.communicate(timeout=60)
    assert err.splitlines() == ["terminated"], err
    assert process.returncode == 128 + signal.SIGTERM
    assert lines() >= 3 and not (tmp_path / "r.json").exists()
    deadline = time.monotonic() + 30
    while _session_processes(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _session_processes(process.pid) == []
    assert "Traceback" not in err
